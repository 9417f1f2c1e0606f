"""What the RL loop leaves behind: per project, whether and how to keep what a policy's trainer scored; the policy runs
that called; the samples kept, grouped as the trainer made them (a GRPO step's completions of one prompt)."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from annotation.models import Project


class CapturePolicy(models.Model):
    """Opt-in, per project: which scored samples are kept (serving.capture), and the Goodhart watch's alarms."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="capture_policy")
    enabled = models.BooleanField(default=False, help_text="Keep a share of what RL trainers score.")
    sample_rate = models.FloatField(default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
                                    help_text="Share of the scored groups kept (drawn per group).")
    daily_cap = models.PositiveIntegerField(default=20_000, help_text="Samples kept per day at most.")
    retention_days = models.PositiveIntegerField(default=30, validators=[MinValueValidator(1)],
                                                 help_text="Samples older than this are deleted (a beat task).")
    groups_per_round = models.PositiveIntegerField(
        default=10, help_text="Captured groups an active-learning round may turn into ranking tasks.")
    # The Goodhart watch (serving.watch): a run is flagged when its latest window crosses one of these.
    alarm_length_correlation = models.FloatField(
        default=0.5, help_text="Spearman correlation of reward and length above which the run is flagged.")
    alarm_far_share = models.FloatField(
        default=0.3, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of samples far from the training data (embedding space) above which the run is flagged.")
    alarm_disagreement = models.FloatField(
        default=0.4, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of ranked captured pairs where raters disagree with the reward model, above which the run "
        "is flagged.")
    webhook_url = models.URLField(blank=True, help_text="POSTed to (JSON) when a run is flagged; blank: admin only.")

    class Meta:
        verbose_name_plural = "capture policies"

    def __str__(self) -> str:
        return f"capture policy of {self.project}"

    @classmethod
    def for_project(cls, project) -> CapturePolicy:
        policy, _ = cls.objects.get_or_create(project=project)
        return policy


class PolicyRun(models.Model):
    """One RL training run that scored through Verdict (named by its client)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="policy_runs")
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)
    last_step = models.BigIntegerField(null=True, blank=True)
    flagged = models.BooleanField(default=False, help_text="The Goodhart watch crossed an alarm.")
    flag_reason = models.TextField(blank=True)
    flagged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="policy_run_unique")]
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return f"run {self.name} of {self.project}"


class CapturedSample(models.Model):
    """One (prompt, completion) a trainer scored and the project kept, with the reward and the version that gave it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="captured_samples")
    run = models.ForeignKey(PolicyRun, on_delete=models.CASCADE, related_name="samples")
    step = models.BigIntegerField(null=True, blank=True)
    group_key = models.CharField(max_length=64, help_text="Samples scored together for one prompt at one step.")
    content_hash = models.CharField(max_length=64, help_text="sha256 of prompt and completion: kept once.")
    prompt = models.TextField()
    completion = models.TextField()
    reward = models.FloatField()
    version = models.ForeignKey("rewardmodel.RewardModelVersion", null=True, on_delete=models.SET_NULL,
                                related_name="+")
    task = models.ForeignKey("annotation.RankingTask", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+", help_text="The ranking task its group became, if it was routed.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "content_hash"], name="captured_content_unique")]
        indexes = [models.Index(fields=["project", "group_key"], name="captured_group_idx"),
                   models.Index(fields=["run", "step"], name="captured_run_step_idx"),
                   models.Index(fields=["project", "created_at"], name="captured_created_idx")]

    def __str__(self) -> str:
        return f"sample {self.pk} of {self.run}"


class WatchWindow(models.Model):
    """The Goodhart watch's figures over one stretch of a run's captured samples (serving.watch), in order."""

    run = models.ForeignKey(PolicyRun, on_delete=models.CASCADE, related_name="windows")
    first_sample = models.BigIntegerField(help_text="Captured sample ids covered: first…last.")
    last_sample = models.BigIntegerField()
    step_min = models.BigIntegerField(null=True, blank=True)
    step_max = models.BigIntegerField(null=True, blank=True)
    samples = models.PositiveIntegerField()
    reward_mean = models.FloatField()
    reward_std = models.FloatField()
    reward_quantiles = models.JSONField(default=list, help_text="Rewards at 10, 25, 50, 75, 90 %.")
    length_correlation = models.FloatField(null=True, blank=True,
                                           help_text="Spearman correlation of reward and completion length.")
    far_share = models.FloatField(null=True, blank=True, help_text="Share of samples farther from the training "
                                  "data (the version's embedding space) than 95 % of training items are.")
    ranked_pairs = models.PositiveIntegerField(default=0, help_text="Pairs raters ranked on this run's captured "
                                               "groups since the previous window.")
    disagreement = models.FloatField(null=True, blank=True,
                                     help_text="Share of those pairs where raters disagree with the reward model.")
    last_ranking = models.BigIntegerField(default=0, help_text="Rankings counted up to this id.")
    alarms = models.JSONField(default=list, help_text="The alarms this window crossed.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "id"]

    def __str__(self) -> str:
        return f"window {self.pk} of {self.run}"
