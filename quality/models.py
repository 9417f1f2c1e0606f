"""What the quality app knows: per-rater estimates, per-task consensus, gold scores, pauses and refresh progress."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from annotation.models import Project, Ranking, RankingTask
from quality.agreement import wilson


class RaterQuality(models.Model):
    """One rater in one project, as of the last refresh (``quality.refresh``)."""

    UNRELIABLE = "unreliable"
    POSITION_BIAS = "position bias"
    TOO_FAST = "too fast"
    TOO_SLOW = "too slow"
    GOLD = "fails gold"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rater_quality")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rater_quality")
    rankings = models.PositiveIntegerField(default=0)
    is_judge = models.BooleanField(default=False, help_text="An AI judge (feedback app), fitted like a rater; its "
                                   "agreement is with the people only, and people's figures leave it out.")
    evidence = models.FloatField(default=0.0, help_text="Comparisons the estimate rests on (a K-way ranking: K−1).")
    reliability = models.FloatField(null=True, help_text="Share of the rater's votes explained by the completions.")
    reliability_low = models.FloatField(null=True)
    reliability_high = models.FloatField(null=True)
    tie_propensity = models.FloatField(null=True, help_text="Davidson's ν: how readily the rater calls a tie.")
    noise = models.JSONField(default=list, help_text="The rater's noise distribution over (first shown, second, tie).")
    gold_accuracy = models.FloatField(null=True)
    gold_tasks = models.PositiveIntegerField(default=0)
    loo_agreement = models.FloatField(null=True, help_text="Agreement with the consensus of the task's other raters.")
    loo_pairs = models.PositiveIntegerField(default=0)
    crowd_agreement = models.FloatField(
        null=True, help_text="AI judges: agreement with the plurality of the people on the same pairs, where both call "
        "a winner (quality.agreement.plurality_agreement); the judge's calibration.")
    crowd_pairs = models.PositiveIntegerField(default=0)
    position_bias = models.FloatField(null=True, help_text="How often the completion shown first was ranked top.")
    position_expected = models.FloatField(null=True, help_text="What position_bias would be by chance (≈ 1/K).")
    position_p = models.FloatField(null=True, help_text="Binomial test of position_bias against position_expected.")
    median_time_s = models.FloatField(null=True)
    speed_z = models.FloatField(null=True, help_text="Robust z-score of log median time against the project's raters.")
    training_weight = models.FloatField(default=1.0, help_text="Weight of the rater's rankings in training.")
    flags = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "rater"], name="rater_quality_unique")]
        verbose_name_plural = "rater quality"

    def __str__(self) -> str:
        return f"{self.rater} in {self.project}"

    @property
    def unreliable(self) -> bool:
        return self.UNRELIABLE in (self.flags or [])

    @property
    def crowd_interval(self) -> tuple[float, float] | None:
        """95 % Wilson interval of crowd_agreement."""
        if self.crowd_agreement is None:
            return None
        return wilson(self.crowd_agreement * self.crowd_pairs, self.crowd_pairs)

    def weight_when(self, paused: bool) -> float:
        """The one rule for a rater's training weight: 0 while paused or unreliable, else the reliability (1 while
        there is no estimate yet)."""
        if paused or self.unreliable:
            return 0.0
        return 1.0 if self.reliability is None else self.reliability


class PauseEvent(models.Model):
    """Every pause and un-pause of a rater in a project: automatic (``by`` empty) or by a manager."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="pause_events")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pause_events")
    paused = models.BooleanField(help_text="True: paused; False: un-paused.")
    reason = models.CharField(max_length=300)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                           related_name="+", help_text="Who did it; empty when the quality refresh did.")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{'paused' if self.paused else 'un-paused'} {self.rater} in {self.project}"


class TaskConsensus(models.Model):
    """The consensus of a task's rankings: order, pair probabilities, confidence."""

    task = models.OneToOneField(RankingTask, on_delete=models.CASCADE, primary_key=True, related_name="consensus")
    order = models.JSONField(help_text="Completion ids, best first, by consensus score.")
    scores = models.JSONField(default=dict, help_text="completion id → consensus score.")
    pairs = models.JSONField(default=list, help_text="[better, worse, P(better ≻ worse)] for every pair.")
    confidence = models.FloatField(help_text="The least sure pair's probability (0.5–1).")
    rankings = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "task consensus"
        indexes = [models.Index(fields=["confidence"], name="consensus_confidence_idx")]

    def __str__(self) -> str:
        return f"consensus of task {self.task_id} ({self.confidence:.2f})"


class GoldScore(models.Model):
    """A ranking of a gold task, scored against the known order when it was submitted."""

    ranking = models.OneToOneField(Ranking, on_delete=models.CASCADE, primary_key=True, related_name="gold_score")
    accuracy = models.FloatField(help_text="Share of pairs on which the ranking makes the gold order's call.")
    pairs = models.PositiveIntegerField()
    scored_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"gold score {self.accuracy:.2f} of ranking {self.ranking_id}"


class QualityReport(models.Model):
    """The last quality refresh of a project: its progress while it runs, then its summary."""

    RUNNING, DONE, FAILED = "running", "done", "failed"
    STATUSES = [(RUNNING, "Running"), (DONE, "Done"), (FAILED, "Failed")]
    # A refresh asked for and not yet started by a worker is 'running' at this stage (quality.launch claims the
    # report, so beat's refresh and a second click wait); the API and the admin show it as 'queued'.
    QUEUED_STAGE = "queued"

    project = models.OneToOneField(Project, on_delete=models.CASCADE, primary_key=True, related_name="quality_report")
    status = models.CharField(max_length=16, choices=STATUSES, default=RUNNING)
    progress = models.FloatField(default=0.0)
    stage = models.CharField(max_length=100, blank=True)
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)
    summary = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)
    # The model leaderboard, computed by the refresh (bootstrap fits take seconds): pages and the API read it.
    leaderboard = models.JSONField(default=list, blank=True, help_text="Rows best first (LeaderboardRow.as_dict).")
    leaderboard_reason = models.TextField(blank=True, help_text="Why there is no leaderboard, when there is none.")

    def __str__(self) -> str:
        return f"quality of {self.project} ({self.status})"


class RankingReview(models.Model):
    """A manager's verdict on one ranking (the review page and API): a rejected ranking leaves training
    (``rewardmodel.snapshot.trainable_rankings``) and the consensus (``quality.refresh``); it is kept, with its
    reason."""

    ACCEPTED, REJECTED = "accepted", "rejected"
    DECISIONS = [(ACCEPTED, "Accepted"), (REJECTED, "Rejected")]

    ranking = models.OneToOneField(Ranking, on_delete=models.CASCADE, primary_key=True, related_name="review")
    decision = models.CharField(max_length=16, choices=DECISIONS)
    reason = models.CharField(max_length=500, blank=True, help_text="Required to reject: raters and engineers read it.")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    reviewed_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["decision"], name="review_decision_idx")]
        constraints = [models.CheckConstraint(condition=~models.Q(decision="rejected", reason=""),
                                              name="review_reject_has_reason")]

    def __str__(self) -> str:
        return f"{self.decision} ranking {self.ranking_id}"
