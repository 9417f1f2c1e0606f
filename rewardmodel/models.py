"""Reward-model registry: versions, training runs, retraining policies and the per-project training lock."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from annotation.models import Project
from config.text import show_bidi_controls
from rewardmodel.gate import DEFAULT_MARGIN, DEFAULT_MIN_HELDOUT_PAIRS, DEFAULT_MIN_TRAIN_RANKINGS


class RewardModelVersion(models.Model):
    TRAINING = "training"
    READY = "ready"
    FAILED = "failed"
    REJECTED = "rejected"
    STATUSES = [(TRAINING, "Training"), (READY, "Ready"), (FAILED, "Failed"),
                (REJECTED, "Not promoted (see its gate reason)")]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="reward_models")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=STATUSES, default=TRAINING)
    is_active = models.BooleanField(default=False)
    path = models.CharField(max_length=500, help_text="Version folder, relative to VERDICT_MODEL_ROOT.")
    base_model = models.CharField(max_length=500)
    config = models.JSONField(default=dict)
    snapshot = models.JSONField(default=dict, help_text="ranking_ids, sha256, n_rankings, n_pairs, split")
    metrics = models.JSONField(default=dict, blank=True)
    gate = models.JSONField(default=dict, blank=True,
                            help_text="The promotion gate's decision: promote, eligible, reason, accuracy delta and "
                                      "its 95% interval against the active version.")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children",
                               help_text="The active version when this one was trained.")
    job_key = models.CharField(max_length=64, unique=True, help_text="Same data + config + project → same version.")
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="rm_version_number_unique"),
            models.UniqueConstraint(fields=["project"], condition=Q(is_active=True), name="rm_one_active_per_project"),
        ]

    def __str__(self) -> str:
        return f"{self.project} v{self.number} ({self.status}{', active' if self.is_active else ''})"

    @property
    def gate_reason(self) -> str:
        return self.gate.get("reason", "")

    @property
    def directory(self):
        from django.conf import settings

        return settings.VERDICT_MODEL_ROOT / self.path


class TrainingRun(models.Model):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    STATUSES = [(QUEUED, "Queued"), (RUNNING, "Running"), (SUCCEEDED, "Succeeded"), (FAILED, "Failed"),
                (SKIPPED, "Skipped")]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_runs")
    celery_task_id = models.CharField(max_length=255, blank=True, db_index=True)
    trigger = models.CharField(max_length=32, default="manual")
    status = models.CharField(max_length=16, choices=STATUSES, default=QUEUED)
    progress = models.FloatField(default=0.0)
    step = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    curve = models.JSONField(default=list, blank=True, help_text="[step, train loss, held-out accuracy] at a bounded "
                             "number of points while training (rewardmodel.trainer.curve_steps).")
    backbone = models.CharField(max_length=500, blank=True, help_text="The backbone asked for at launch, if any.")
    overrides = models.JSONField(null=True, blank=True, help_text="Training options asked for at launch, if any.")
    attempts = models.PositiveIntegerField(default=0, help_text="Deliveries of the job; more than one means a "
                                           "worker was lost mid-run (VERDICT_MAX_DELIVERIES caps them).")
    worker = models.CharField(max_length=255, blank=True, help_text="The Celery worker (node name) that took the "
                              "latest delivery.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    version = models.ForeignKey(RewardModelVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="runs")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"training of {self.project} ({self.status}, {self.progress:.0%})"


class RetrainPolicy(models.Model):
    RANKINGS, CONSENSUS = "rankings", "consensus"
    SOURCES = [(RANKINGS, "Every ranking, weighted by its rater's reliability"),
               (CONSENSUS, "One consensus order per task (its sure pairs only)")]

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="retrain_policy")
    training_source = models.CharField(max_length=16, choices=SOURCES, default=RANKINGS,
                                       help_text="What a version trains on (consensus and weights come from the "
                                       "quality refresh).")
    EXCLUDE, WEIGHTED = "exclude", "weighted"
    JUDGE_RANKINGS = [(EXCLUDE, "Left out: people's rankings only"),
                      (WEIGHTED, "Included, each weighted by its judge's reliability (quality refresh)")]
    judge_rankings = models.CharField(
        max_length=16, choices=JUDGE_RANKINGS, default=EXCLUDE,
        help_text="AI judges' rankings (feedback app) in training. A judge's weight is its fitted reliability, 0 "
        "when flagged unreliable; with training_source=consensus they are already part of each task's consensus.")
    enabled = models.BooleanField(default=True)
    min_new_rankings = models.PositiveIntegerField(default=100, help_text="Retrain after this many new rankings.")
    backbone_path = models.CharField(max_length=500, blank=True, help_text="Local model folder; blank = MiniLM.")
    hyperparameters = models.JSONField(default=dict, blank=True, help_text="TrainConfig fields, e.g. {\"epochs\": 2}.")
    # The promotion gate (rewardmodel.gate): below these sizes a version is neither promoted nor used for routing.
    min_train_rankings = models.PositiveIntegerField(
        default=DEFAULT_MIN_TRAIN_RANKINGS, help_text="Training rankings a version needs before it can be promoted.")
    min_heldout_pairs = models.PositiveIntegerField(
        default=DEFAULT_MIN_HELDOUT_PAIRS, help_text="Held-out pairs a version needs before it can be promoted.")
    promotion_margin = models.FloatField(
        default=DEFAULT_MARGIN, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Reject a new version when the 95% interval of its held-out accuracy minus the active one's lies "
                  "entirely below −margin (0: whenever it is shown to be worse).")

    class Meta:
        verbose_name_plural = "retrain policies"

    def __str__(self) -> str:
        if not self.enabled:  # a disabled policy retrains nothing: its title must not promise a schedule
            return f"retraining of {self.project}: disabled"
        return f"retrain {self.project} every {self.min_new_rankings} new rankings"


class TrainingLock(models.Model):
    """One row per project while a training runs; expires unless its owner heartbeats (a dead worker frees it)."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, primary_key=True, related_name="training_lock")
    owner = models.CharField(max_length=255)
    acquired_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"training lock on {self.project} held by {self.owner}"


class EvalSet(models.Model):
    """Held-out evaluation pairs a project attaches (RewardBench-style, with an optional `subset` per pair): every
    version trained afterwards reports its accuracy on them, per subset, beside the held-out split."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="eval_sets")
    name = models.CharField(max_length=100)
    source = models.CharField(max_length=500, blank=True, help_text="The file it was read from.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="eval_set_name_unique")]
        ordering = ["project", "name"]

    def __str__(self) -> str:
        return f"{show_bidi_controls(self.name)} ({self.project})"


class EvalPair(models.Model):
    eval_set = models.ForeignKey(EvalSet, on_delete=models.CASCADE, related_name="pairs")
    prompt = models.TextField()
    chosen = models.TextField()
    rejected = models.TextField()
    subset = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return f"pair {self.pk} of {show_bidi_controls(self.eval_set.name)}"
