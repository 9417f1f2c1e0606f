"""Active-learning records: per-project policy, cached embeddings, and every selection round with its picks."""

from __future__ import annotations

import numpy as np
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from active_learning.selection import AUTO, POLICIES
from annotation.models import Completion, Project, RankingTask

STRATEGY_CHOICES = [(s, s.replace("_", " + ")) for s in POLICIES]


class ActiveLearningPolicy(models.Model):
    """How rounds run for one project when nobody says otherwise (after each retrain, or on demand)."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="active_learning_policy")
    enabled = models.BooleanField(default=True, help_text="Run a round after every retrain.")
    strategy = models.CharField(
        max_length=32, choices=STRATEGY_CHOICES, default=AUTO,
        help_text="auto: the strategy the project's own audit shows to save labels (active_learning.audit), else "
        "random among fresh tasks; or one strategy always.")
    batch_size = models.PositiveIntegerField(default=20)
    max_asks = models.PositiveIntegerField(default=2, help_text="How often one comparison may be routed back.")
    max_asks_per_prompt = models.PositiveIntegerField(
        default=3, help_text="How often comparisons of one prompt may be routed back, all pairs together."
    )
    contested_share = models.FloatField(
        default=0.3,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=(
            "A comparison with at least two human votes whose losing side has this share of them or more is "
            "contested: the raters disagree, so it is not routed back (more votes would measure their split, not "
            "teach the model). 0.3 sets aside 2–1, 1–1 and 3–2 splits; above 0.5 turns this off."
        ),
    )
    ensemble_size = models.PositiveSmallIntegerField(default=8)
    audit_min_pairs = models.PositiveIntegerField(
        default=150, validators=[MinValueValidator(40)],
        help_text="auto: the evaluation stream's labelled pairs before the audit may pick a strategy (until then: "
        "random among fresh tasks).")
    priority_boost = models.IntegerField(
        default=100, help_text="Priority given to routed tasks (the project's reask_share sets how often they come)."
    )

    class Meta:
        verbose_name_plural = "active-learning policies"

    def __str__(self) -> str:
        return f"policy for {self.project}"

    @classmethod
    def for_project(cls, project: Project) -> ActiveLearningPolicy:
        policy, _ = cls.objects.get_or_create(project=project)
        return policy


class CachedEmbedding(models.Model):
    """Backbone features of one completion under one feature source (a model version or a backbone path)."""

    source_key = models.CharField(max_length=300, help_text="'version:<id>' or 'backbone:<path>'.")
    completion = models.ForeignKey(Completion, on_delete=models.CASCADE, related_name="cached_embeddings")
    dim = models.PositiveIntegerField()
    vector = models.BinaryField(help_text="float32 little-endian bytes.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source_key", "completion"], name="cached_embedding_unique")]

    def __str__(self) -> str:
        return f"{self.source_key} / completion {self.completion_id}"

    def as_array(self) -> np.ndarray:
        return np.frombuffer(bytes(self.vector), dtype="<f4", count=self.dim)


class SelectionRound(models.Model):
    AFTER_TRAINING = "after_training"
    ON_DEMAND = "on_demand"
    SCHEDULE = "schedule"
    TRIGGERS = [(AFTER_TRAINING, "After training"), (ON_DEMAND, "On demand"), (SCHEDULE, "Schedule")]
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    STATUSES = [(QUEUED, "Queued"), (RUNNING, "Running"), (DONE, "Done"), (FAILED, "Failed")]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="selection_rounds")
    strategy = models.CharField(max_length=32, choices=STRATEGY_CHOICES)
    model_version = models.ForeignKey(
        "rewardmodel.RewardModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="selection_rounds",
        help_text="The active reward-model version whose features and scores were used (none: frozen backbone).",
    )
    feature_source = models.CharField(max_length=300, blank=True, help_text="Where the embeddings came from.")
    batch_size = models.PositiveIntegerField()
    params = models.JSONField(default=dict, blank=True)
    trigger = models.CharField(max_length=32, choices=TRIGGERS, default=ON_DEMAND)
    dedupe_key = models.CharField(
        max_length=100, blank=True, help_text="Set for after-training rounds: 'trained:<version id>'."
    )
    status = models.CharField(max_length=16, choices=STATUSES, default=QUEUED)
    progress = models.FloatField(default=0.0, help_text="0 to 1, set by the pipeline at each stage while it runs.")
    stage = models.CharField(max_length=100, blank=True, help_text="What the running round is doing now.")
    summary = models.JSONField(default=dict, blank=True, help_text="Candidate counts and score statistics.")
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="When a worker last started it.")
    attempts = models.PositiveIntegerField(default=0, help_text="Times a worker started it; more than one means a "
                                           "worker was lost mid-round (VERDICT_MAX_DELIVERIES caps them).")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A redelivered after-training message must not route the same training run twice.
            models.UniqueConstraint(
                fields=["project", "dedupe_key"], condition=~Q(dedupe_key=""), name="selection_round_dedupe"
            )
        ]

    def __str__(self) -> str:
        return f"round {self.pk} ({self.strategy}, {self.trigger})"


class SelectedItem(models.Model):
    RAISED = "raised"
    CREATED = "created"
    ACTIONS = [(RAISED, "Priority raised"), (CREATED, "Task created")]

    round = models.ForeignKey(SelectionRound, on_delete=models.CASCADE, related_name="items")
    task = models.ForeignKey(RankingTask, on_delete=models.SET_NULL, null=True, related_name="selections")
    completion_a = models.ForeignKey(Completion, on_delete=models.CASCADE, related_name="+")
    completion_b = models.ForeignKey(Completion, on_delete=models.CASCADE, related_name="+")
    scores = models.JSONField(default=dict, help_text="variance, bald, margin, flip, instability, p_mean.")
    rank = models.PositiveIntegerField(help_text="1 = least stable of the batch.")
    action = models.CharField(max_length=16, choices=ACTIONS)

    class Meta:
        ordering = ["round", "rank"]
        indexes = [models.Index(fields=["completion_a", "completion_b"], name="selected_pair_idx")]

    def __str__(self) -> str:
        return f"#{self.rank} {self.completion_a_id}–{self.completion_b_id} ({self.action})"


class RoutingAudit(models.Model):
    """One audit of a project's routing (active_learning.audit): every strategy replayed against random on the
    evaluation stream with the active version's features, and what policy auto concluded."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="routing_audits")
    model_version = models.ForeignKey("rewardmodel.RewardModelVersion", null=True, blank=True,
                                      on_delete=models.SET_NULL, related_name="routing_audits")
    eval_pairs = models.PositiveIntegerField(help_text="Labelled pairs of the evaluation stream it replayed.")
    results = models.JSONField(default=dict, help_text="Per strategy: AUC gain and budget share, 95 % intervals.")
    chosen = models.CharField(max_length=32, blank=True, help_text="What auto uses; blank: random among fresh tasks.")
    reason = models.TextField(blank=True)
    seconds = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"audit {self.pk} of {self.project}: {self.chosen or 'random'}"
