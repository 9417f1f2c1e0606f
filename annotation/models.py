"""The annotation data model: projects, prompts, completions, ranking tasks, leases and rankings.

A ranking's `order` is a list of tie groups, best first, each a list of completion ids:
``[[12], [10, 13], [11]]`` means 12 ≻ 10 = 13 ≻ 11.

A *re-ask* is a task that asks again a comparison another task (its ``origin``) already asked, over the same
prompt: active learning creates them for pairs the reward model is least sure of. No rater ever gets two tasks
over one prompt, so a re-ask always brings a new rater's opinion.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from config.text import show_bidi_controls

DEFAULT_CRITERIA = ["helpful", "harmless", "honest"]


def default_criteria() -> list[str]:
    return list(DEFAULT_CRITERIA)


MAX_CRITERIA = 20


def validate_criteria(value) -> None:
    """A list of distinct non-empty names (compared without case and surrounding spaces): a criterion named twice
    would give a ranking two keys for one column."""
    if not isinstance(value, list) or not all(isinstance(c, str) and c.strip() and "\x00" not in c for c in value):
        raise ValidationError("criteria must be a list of non-empty names")
    if len(value) > MAX_CRITERIA:
        raise ValidationError(f"at most {MAX_CRITERIA} criteria")
    seen: set[str] = set()
    for name in value:
        if len(name) > 100:
            raise ValidationError("a criterion's name has at most 100 characters")
        key = name.strip().casefold()
        if key in seen:
            raise ValidationError(f"criterion {name.strip()!r} is listed twice")
        seen.add(key)


class Project(models.Model):
    # Not unique across the platform: a manager must not learn the names of projects they cannot see from a refused
    # name. A name is unique among the projects its creator can see (annotation.api; the admin checks all).
    name = models.CharField(max_length=200, db_index=True)
    description = models.TextField(blank=True)
    guidelines = models.TextField(blank=True, help_text="Markdown shown to raters beside every task.")
    # Bounds live here, once: the admin's forms and the API (and so its OpenAPI schema) both take them from the model.
    k = models.PositiveSmallIntegerField(default=4, validators=[MinValueValidator(2), MaxValueValidator(9)],
                                         help_text="Completions shown per task (2–9).")
    overlap = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1), MaxValueValidator(1000)],
                                               help_text="Distinct raters per task.")
    criteria = models.JSONField(default=default_criteria, blank=True, validators=[validate_criteria],
                                help_text="Optional per-criterion rankings: distinct names.")
    lease_minutes = models.PositiveIntegerField(default=30, validators=[MinValueValidator(1),
                                                                       MaxValueValidator(7 * 24 * 60)],
                                                help_text="How long a rater holds a task.")
    eval_share = models.FloatField(
        default=0.15,
        validators=[MinValueValidator(0.0), MaxValueValidator(0.5)],
        help_text="While active learning routes tasks: the share of fresh tasks kept as the evaluation stream, a "
        "uniformly random sample served in random order and never routed, whose rankings are the held-out set "
        "that judges versions (annotation.eval_stream). 0 turns it off.",
    )
    reask_share = models.FloatField(
        default=0.25,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of each rater's tasks served from re-asks (comparisons routed back by active learning) "
        "while fresh tasks are open too; 0 serves re-asks only when nothing fresh is left, 1 serves them first.",
    )
    max_prompt_chars = models.PositiveIntegerField(
        default=50_000, validators=[MinValueValidator(1)], help_text="Longest prompt an import accepts (characters).")
    max_completion_chars = models.PositiveIntegerField(
        default=100_000, validators=[MinValueValidator(1)],
        help_text="Longest completion an import accepts (characters); the rate page shows at most 50,000 of each.")
    max_unbroken_run = models.PositiveIntegerField(
        default=5_000, validators=[MinValueValidator(1)],
        help_text="Longest stretch without a space or line break an import accepts in a prompt or completion: a "
        "model stuck repeating one token makes one huge 'word' that no page can wrap.")
    edit_window_s = models.PositiveIntegerField(
        default=600,
        help_text="Seconds after submitting during which a rater may correct a ranking (the old one is kept as a "
        "revision); later, a different ranking for the same task is refused with 409. 0 allows no corrections.",
    )
    # Dynamic overlap and rater quality: annotation stores the settings and serves by them; quality computes.
    min_overlap = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Dynamic overlap: the fewest raters a task gets. Set together with max_overlap (then overlap is "
        "not used); leave both blank for a fixed overlap.")
    max_overlap = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Dynamic overlap: the most raters a task gets while its consensus is not confident.")
    consensus_threshold = models.FloatField(
        default=0.8, validators=[MinValueValidator(0.5), MaxValueValidator(1.0)],
        help_text="A task's consensus is confident when, for every pair of its completions, the probability that "
        "the consensus order is right is at least this (0.5–1); with dynamic overlap it then stops being served.")
    gold_rate = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of each rater's tasks that are gold tasks, served like any other and scored on submission "
        "(0.1 = one in ten). 0 serves gold tasks as ordinary tasks.")
    reliability_threshold = models.FloatField(
        default=0.5, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="A rater whose reliability's 95% interval lies wholly below this (0–1), with enough evidence, is "
        "flagged, gets training weight 0 and, with pause_unreliable, is paused.")
    min_rater_evidence = models.PositiveIntegerField(
        default=20, validators=[MaxValueValidator(1_000_000)],
        help_text="Comparisons (a K-way ranking counts K−1) a rater needs before they can be flagged.")
    pause_unreliable = models.BooleanField(
        default=False, help_text="Pause flagged raters from assignment (every pause and un-pause is recorded).")
    judge_trust = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.5), MaxValueValidator(1.0)],
        help_text="Hybrid routing (dynamic overlap with AI judges): a task an AI judge has ranked needs no human at "
        "all when its consensus is confident and the lower end of that judge's reliability interval is at least "
        "this (0.5–1). Blank: every task gets at least min_overlap people.")
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="projects")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(k__gte=2) & Q(k__lte=9), name="project_k_between_2_and_9"),
            models.CheckConstraint(condition=Q(overlap__gte=1), name="project_overlap_positive"),
            models.CheckConstraint(
                condition=Q(reask_share__gte=0.0) & Q(reask_share__lte=1.0), name="project_reask_share_0_to_1"
            ),
            models.CheckConstraint(
                condition=(Q(min_overlap__isnull=True) & Q(max_overlap__isnull=True))
                | (Q(min_overlap__gte=1) & Q(max_overlap__gte=F("min_overlap"))),
                name="project_overlap_bounds",
            ),
            models.CheckConstraint(condition=Q(gold_rate__gte=0.0) & Q(gold_rate__lte=1.0), name="project_gold_rate"),
        ]

    def __str__(self) -> str:
        return show_bidi_controls(self.name)  # the admin's titles and breadcrumbs (config.text)

    def clean(self) -> None:
        errors = overlap_bounds_errors(self.min_overlap, self.max_overlap)
        if errors:
            raise ValidationError(errors)

    @property
    def dynamic_overlap(self) -> bool:
        return self.max_overlap is not None

    def serves_to_all(self, task: RankingTask) -> bool:
        """With gold injection on, a gold task is shown to every rater once: no overlap caps it."""
        return task.is_gold and self.gold_rate > 0

    def task_target(self, task: RankingTask) -> int:
        """How many rankings this task may have now: the fixed overlap, or its dynamic target."""
        if not self.dynamic_overlap:
            return self.overlap
        return task.target_overlap or self.min_overlap


def overlap_bounds_errors(min_overlap: int | None, max_overlap: int | None) -> dict[str, str]:
    """The rule for min_overlap/max_overlap, shared by the model's clean() and the API's serializer."""
    if (min_overlap is None) != (max_overlap is None):
        missing = "max_overlap" if max_overlap is None else "min_overlap"
        return {missing: "set min_overlap and max_overlap together (or neither, for a fixed overlap)"}
    if min_overlap is not None and max_overlap < min_overlap:
        return {"max_overlap": f"must be at least min_overlap ({min_overlap}), got {max_overlap}"}
    return {}


class Membership(models.Model):
    RATER = "rater"
    MANAGER = "manager"
    ROLES = [(RATER, "Rater"), (MANAGER, "Manager")]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=ROLES, default=RATER)
    paused = models.BooleanField(default=False, help_text="Paused raters get no new tasks in this project.")
    paused_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"


class RaterProfile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rater_profile")
    display_name = models.CharField(max_length=100, blank=True)
    expertise = models.CharField(max_length=200, blank=True)
    is_active_rater = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return show_bidi_controls(self.display_name) or self.user.get_username()


class Prompt(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompts")
    external_id = models.CharField(max_length=200, blank=True)
    text = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"], condition=~Q(external_id=""), name="prompt_external_id_unique"
            )
        ]

    def __str__(self) -> str:
        return show_bidi_controls(self.external_id) or f"prompt {self.pk}"


class Completion(models.Model):
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="completions")
    model_name = models.CharField(max_length=200, blank=True)
    text = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"completion {self.pk} ({show_bidi_controls(self.model_name) or 'unknown model'})"


class RankingTask(models.Model):
    OPEN = "open"
    COMPLETE = "complete"
    STATUSES = [(OPEN, "Open"), (COMPLETE, "Complete")]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="tasks")
    completions = models.ManyToManyField(Completion, related_name="tasks")
    priority = models.IntegerField(default=0, help_text="Higher is served first.")
    status = models.CharField(max_length=16, choices=STATUSES, default=OPEN)
    is_gold = models.BooleanField(default=False, help_text="A task with a known answer, to check raters.")
    gold_order = models.JSONField(null=True, blank=True, help_text="The known order (tie groups) of a gold task.")
    source = models.CharField(max_length=32, default="import", help_text="import, active_learning, …")
    origin = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reasks",
        help_text="Set on a re-ask: the task whose comparison it asks again (of raters who never saw its prompt).",
    )
    submitted_count = models.PositiveIntegerField(default=0)
    eval_key = models.FloatField(
        null=True, blank=True, editable=False,
        help_text="Set on tasks of the evaluation stream (annotation.eval_stream): a uniform random number, the order "
        "they are served in. Their rankings judge versions and are never trained on or routed.")
    # A database default too: the bulk importers (annotation.bulk) write rows column by column and leave it out.
    excluded_from_training = models.BooleanField(
        default=False, db_default=False, help_text="Left out of training and releases (its rankings stay, for quality "
        "and review); set from the data browser.")
    target_overlap = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Dynamic overlap: how many rankings the task may have now (blank: the "
        "project's min_overlap); raised one at a time while its consensus is not confident.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["project", "status", "-priority", "id"], name="task_queue_idx"),
            # The re-ask and gold queues are small slices of a large project: without these, asking whether they
            # hold anything reads every open task (annotation.assignment).
            models.Index(fields=["project", "-priority", "id"], condition=Q(status="open", origin__isnull=False),
                         name="task_reask_queue_idx"),
            models.Index(fields=["project", "-priority", "id"], condition=Q(status="open", is_gold=True),
                         name="task_gold_queue_idx"),
            models.Index(fields=["project", "eval_key"], condition=Q(status="open", eval_key__isnull=False),
                         name="task_eval_queue_idx"),
        ]

    def __str__(self) -> str:
        return f"task {self.pk}"

    @property
    def is_reask(self) -> bool:
        return self.origin_id is not None

    @property
    def in_eval_stream(self) -> bool:
        return self.eval_key is not None


class Assignment(models.Model):
    """A rater's lease on one slot of a task; becomes `submitted` or `skipped`, or lapses at `expires_at`."""

    LEASED = "leased"
    SUBMITTED = "submitted"
    SKIPPED = "skipped"
    JUDGED = "judged"  # an AI judge's vote (feedback app): it holds none of the task's slots for people
    STATUSES = [(LEASED, "Leased"), (SUBMITTED, "Submitted"), (SKIPPED, "Skipped"), (JUDGED, "Judged by an AI judge")]

    task = models.ForeignKey(RankingTask, on_delete=models.CASCADE, related_name="assignments")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    status = models.CharField(max_length=16, choices=STATUSES, default=LEASED)
    leased_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    display_order = models.JSONField(default=list, help_text="Completion ids in the order this rater saw them.")
    skip_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "rater"], name="assignment_task_rater_unique")]
        indexes = [models.Index(fields=["rater", "status"], name="assignment_rater_status_idx")]

    def __str__(self) -> str:
        return f"{self.rater} on {self.task} ({self.status})"

    @property
    def is_live(self) -> bool:
        return self.status == self.LEASED and self.expires_at > timezone.now()


class RankingQuerySet(models.QuerySet):
    def from_raters(self) -> RankingQuerySet:
        """Rankings made in Verdict by its raters: imported datasets carry no rater to judge (quality statistics)."""
        return self.filter(source=Ranking.RATER)

    def from_people(self) -> RankingQuerySet:
        """Human labels, made here or imported: what training, learning curves and the Goodhart watch count.
        AI judges' rankings (feedback app) are machine feedback, kept apart."""
        return self.exclude(source=Ranking.JUDGE)


class Ranking(models.Model):
    FLAG_CHOICES = ["unsafe", "broken", "duplicate", "unsure"]
    RATER = "rater"
    IMPORTED = "imported"
    JUDGE = "judge"
    SOURCES = [(RATER, "A rater in Verdict"), (IMPORTED, "Imported preference data"),
               (JUDGE, "An AI judge (feedback app)")]

    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="ranking")
    task = models.ForeignKey(RankingTask, on_delete=models.CASCADE, related_name="rankings")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="rankings")
    order = models.JSONField(help_text="Tie groups of completion ids, best first.")
    criteria_orders = models.JSONField(default=dict, blank=True, help_text="criterion → tie groups, optional.")
    rationale = models.TextField(blank=True)
    flags = models.JSONField(default=list, blank=True)
    time_spent_ms = models.PositiveIntegerField(default=0)
    display_order = models.JSONField(default=list, help_text="Completion ids in on-screen order.")
    submitted_at = models.DateTimeField(auto_now_add=True)
    revision = models.PositiveIntegerField(default=0, help_text="How often the rater corrected it (0 = never).")
    revised_at = models.DateTimeField(null=True, blank=True)
    weight = models.FloatField(
        default=1.0, help_text="Training weight: its rater's estimated reliability, 0 for an excluded rater (set by "
        "the quality refresh; 1 until the first one).")
    # Provenance: imported rankings belong to their dataset's import account (inactive, never a member), and keep
    # the dataset's own name for the person who made them.
    source = models.CharField(max_length=16, choices=SOURCES, default=RATER)
    dataset = models.CharField(max_length=200, blank=True, help_text="Imported: the dataset it came from.")
    original_rater = models.CharField(max_length=200, blank=True,
                                      help_text="Imported: the rater id the dataset gives, if any.")

    objects = RankingQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["task", "submitted_at"], name="ranking_task_idx")]

    def __str__(self) -> str:
        return f"ranking {self.pk} by {self.rater} on {self.task}"

    CONTENT_FIELDS = ("order", "criteria_orders", "rationale", "flags", "time_spent_ms")


class RankingRevision(models.Model):
    """What a ranking said before its rater corrected it (within the project's edit window)."""

    ranking = models.ForeignKey(Ranking, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField(help_text="1 = the ranking as first submitted.")
    order = models.JSONField()
    criteria_orders = models.JSONField(default=dict, blank=True)
    rationale = models.TextField(blank=True)
    flags = models.JSONField(default=list, blank=True)
    time_spent_ms = models.PositiveIntegerField(default=0)
    submitted_at = models.DateTimeField(help_text="When this version was submitted.")
    replaced_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["ranking", "number"], name="ranking_revision_unique")]
        ordering = ["ranking", "number"]

    def __str__(self) -> str:
        return f"revision {self.number} of ranking {self.ranking_id}"


class ImportRun(models.Model):
    """One import of prompts and completions (API upload or ``manage.py import_jsonl``): who, what, how far, result.

    The import writes in one transaction, invisible until it commits; this row is written outside it, and while it
    runs its progress lives in the cache (``annotation.import_runs``), so another request can watch it.
    """

    QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
    STATUSES = [(QUEUED, "Queued"), (RUNNING, "Running"), (SUCCEEDED, "Succeeded"), (FAILED, "Failed")]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_runs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    source = models.CharField(max_length=300, help_text="The file's name, or 'upload'.")
    size_bytes = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=STATUSES, default=RUNNING)
    phase = models.CharField(max_length=16, blank=True, help_text="checking (every line, nothing written) or writing")
    rows_done = models.PositiveIntegerField(default=0)
    rows_total = models.PositiveIntegerField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="The first errors: [line, message].")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Deliveries of a background import's job.")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["project", "-started_at"], name="import_run_project_idx")]

    def __str__(self) -> str:
        return f"import {self.pk} into {self.project} ({self.status})"


class ImportUpload(models.Model):
    """The bytes of an API upload waiting for its background import (as sent: gzip stays gzip), in the database
    so a worker on any machine can read them; deleted when the import ends."""

    run = models.OneToOneField(ImportRun, on_delete=models.CASCADE, primary_key=True, related_name="upload")
    data = models.BinaryField()


class GuidelinesRevision(models.Model):
    """One version of a project's guidelines: written by annotation.guidelines whenever they change (admin, API,
    project creation, restore), so managers can see who changed what and raters can be told they changed."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="guidelines_revisions")
    number = models.PositiveIntegerField(help_text="1, 2, … in the order the guidelines were written.")
    text = models.TextField(blank=True, help_text="The guidelines (Markdown) as of this revision.")
    edited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=300, blank=True, help_text="Why it changed (e.g. 'restored revision 2').")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="guidelines_revision_unique")]
        ordering = ["project", "-number"]

    def __str__(self) -> str:
        return f"guidelines revision {self.number} of {self.project}"
