"""Validating and storing a rater's ranking: exactly once per assignment, whatever the retries, and corrections.

A repeat of the same submission is idempotent (the stored ranking comes back).  A different, valid one from the same
assignment is a correction: within the project's ``edit_window_s`` the ranking is replaced and its previous content
kept as a :class:`RankingRevision`; after it, :class:`SubmissionConflict` (409) says why.  An invalid body is
always refused, whatever was stored before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from annotation.assignment import holding_slot
from annotation.models import Assignment, Ranking, RankingRevision, RankingTask
from annotation.signals import ranking_submitted

MAX_RATIONALE_CHARS = 10_000
MAX_TIME_SPENT_MS = 24 * 3600 * 1000


class SubmissionError(ValueError):
    """The submission was refused; `errors` maps field names to human-readable messages."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


class SubmissionConflict(SubmissionError):
    """A valid ranking that differs from the one already stored, too late to correct it."""


@dataclass
class RankingPayload:
    order: list[list[int]]
    criteria_orders: dict[str, list[list[int]]] = field(default_factory=dict)
    rationale: str = ""
    flags: list[str] = field(default_factory=list)
    time_spent_ms: int = 0


def validate_order(order, completion_ids: set[int], label: str = "order") -> list[list[int]]:
    """Check that `order` is tie groups (lists of ints) covering every completion exactly once."""
    if not isinstance(order, list) or not order:
        raise SubmissionError({label: "must be a non-empty list of tie groups, best first"})
    seen: list[int] = []
    clean: list[list[int]] = []
    for group in order:
        if isinstance(group, int) and not isinstance(group, bool):
            group = [group]
        if not isinstance(group, list) or not group:
            raise SubmissionError({label: "each tie group must be a non-empty list of completion ids"})
        for cid in group:
            if not isinstance(cid, int) or isinstance(cid, bool):
                raise SubmissionError({label: f"completion ids must be integers, got {cid!r}"})
        seen.extend(group)
        clean.append(sorted(group))
    if len(seen) != len(set(seen)):
        raise SubmissionError({label: "a completion appears more than once"})
    if set(seen) != completion_ids:
        missing = sorted(completion_ids - set(seen))
        extra = sorted(set(seen) - completion_ids)
        raise SubmissionError(
            {label: f"must rank exactly this task's completions (missing {missing}, unknown {extra})"})
    return clean


def validate_payload(task: RankingTask, payload: RankingPayload, completion_ids: set[int] | None = None,
                     project=None) -> RankingPayload:
    ids = completion_ids if completion_ids is not None else set(task.completions.values_list("id", flat=True))
    project = project or task.project
    order = validate_order(payload.order, ids)
    criteria = payload.criteria_orders or {}
    if not isinstance(criteria, dict):
        raise SubmissionError({"criteria_orders": "must map criterion names to orders"})
    allowed = set(project.criteria or [])
    clean_criteria = {}
    for name, corder in criteria.items():
        if name not in allowed:
            raise SubmissionError(
                {"criteria_orders": f"unknown criterion {name!r}; this project has {sorted(allowed)}"})
        clean_criteria[name] = validate_order(corder, ids, label=f"criteria_orders.{name}")
    flags = payload.flags or []
    if not isinstance(flags, list) or any(f not in Ranking.FLAG_CHOICES for f in flags):
        raise SubmissionError({"flags": f"flags must be a list drawn from {Ranking.FLAG_CHOICES}"})
    rationale = payload.rationale or ""
    if not isinstance(rationale, str) or len(rationale) > MAX_RATIONALE_CHARS:
        raise SubmissionError({"rationale": f"must be text of at most {MAX_RATIONALE_CHARS} characters"})
    spent = payload.time_spent_ms
    if not isinstance(spent, int) or isinstance(spent, bool) or not 0 <= spent <= MAX_TIME_SPENT_MS:
        raise SubmissionError({"time_spent_ms": f"must be an integer from 0 to {MAX_TIME_SPENT_MS} (24 hours)"})
    return RankingPayload(
        order=order,
        criteria_orders=clean_criteria,
        rationale=rationale,
        flags=sorted(set(flags)),
        time_spent_ms=spent,
    )


def _locked(assignment_id: int, rater_id: int | None) -> Assignment:
    """The assignment (of this rater, when given) and its task, both rows locked, with the project and the stored
    ranking if any: one query (the rater loop's submit runs this on every request). After waiting for the lock, the
    assignment and task are current but the joined ranking may not be (see submit_ranking)."""
    mine = {"rater_id": rater_id} if rater_id is not None else {}
    return (Assignment.objects.select_for_update(of=("self", "task"))
            .select_related("task__project", "ranking").get(pk=assignment_id, **mine))


def submit_as(rater, assignment_id: int, payload: RankingPayload) -> tuple[Ranking, bool]:
    """``submit_ranking`` for the API: the assignment is read once, locked, and only if it is this rater's
    (``Assignment.DoesNotExist`` otherwise, which the API answers 404, as for any assignment not yours)."""
    return _submit(assignment_id, rater.pk, payload)


def submit_ranking(assignment: Assignment, payload: RankingPayload) -> tuple[Ranking, bool]:
    """Store the ranking for this assignment. Returns (ranking, created).

    A second submission for the same assignment returns the stored ranking: unchanged when it says the same, corrected
    (``revision`` + 1) within the edit window; otherwise it raises SubmissionConflict.
    A lapsed lease is still accepted while the task has a free slot, so slow raters lose nothing.

    A first submission is a fixed handful of queries: the locked read (``_locked``), the task's completion ids, the
    ranking's insert, the assignment's and the task's updates, and what the ``ranking_submitted`` receivers need (the
    quality app reads the rater's weight; dynamic overlap and gold tasks add their own).
    """
    return _submit(assignment.pk, None, payload)


def _submit(assignment_id: int, rater_id: int | None, payload: RankingPayload) -> tuple[Ranking, bool]:
    with transaction.atomic():
        a = _locked(assignment_id, rater_id)
        task, project = a.task, a.task.project
        ids = set(task.completions.values_list("id", flat=True))
        existing = getattr(a, "ranking", None)
        if existing is None and a.status == Assignment.SUBMITTED:
            # Another request submitted it while this one waited for the lock: the locked rows were re-read, but
            # the joined ranking comes from the statement's older snapshot. Read it now.
            existing = Ranking.objects.get(assignment=a)
        if existing:
            existing.task = task
            ranking, changed = _resubmit(existing, validate_payload(task, payload, ids, project),
                                         project.edit_window_s)
            if changed:
                ranking_submitted.send(sender=Ranking, ranking=ranking, task=task, created=False)
                _save_task(task, ["target_overlap", "status"])
            return ranking, False
        if a.status == Assignment.SKIPPED:
            raise SubmissionError({"assignment": "this task was skipped; ask for the next task"})
        clean = validate_payload(task, payload, ids, project)
        now = timezone.now()
        if a.expires_at <= now:
            taken = task.assignments.exclude(pk=a.pk).filter(holding_slot(now)).count()
            if taken >= project.task_target(task) and not project.serves_to_all(task):
                raise SubmissionError({"assignment": "the lease expired and the task was given to other raters"})
        ranking = Ranking.objects.create(
            assignment=a,
            task=task,
            rater_id=a.rater_id,
            order=clean.order,
            criteria_orders=clean.criteria_orders,
            rationale=clean.rationale,
            flags=clean.flags,
            time_spent_ms=clean.time_spent_ms,
            display_order=a.display_order,
        )
        Assignment.objects.filter(pk=a.pk).update(status=Assignment.SUBMITTED)
        # The task row is locked: its count is current, and this transaction alone changes it.
        task.submitted_count += 1
        ranking_submitted.send(sender=Ranking, ranking=ranking, task=task, created=True)
        if not project.serves_to_all(task) and task.submitted_count >= project.task_target(task):
            task.status = RankingTask.COMPLETE
        _save_task(task, ["submitted_count", "target_overlap", "status"])
        return ranking, True


def _save_task(task: RankingTask, fields: list[str]) -> None:
    RankingTask.objects.filter(pk=task.pk).update(**{f: getattr(task, f) for f in fields})


def _resubmit(ranking: Ranking, clean: RankingPayload, window_s: int) -> tuple[Ranking, bool]:
    """The same content again: nothing changes.  Different content: a correction while the window is open.
    Returns (ranking, whether it changed)."""
    same = (ranking.order, ranking.criteria_orders, ranking.rationale, sorted(ranking.flags)) == (
        clean.order, clean.criteria_orders, clean.rationale, clean.flags)
    if same:  # a retry (the time spent may differ between retries of one submission: the first one counts)
        return ranking, False
    last = ranking.revised_at or ranking.submitted_at
    now = timezone.now()
    if (now - ranking.submitted_at).total_seconds() > window_s:  # from the first submission: no endless edits
        raise SubmissionConflict({"assignment": (
            f"this task was already ranked differently and the {window_s} s edit window has closed; "
            "the stored ranking stands" if window_s else
            "this task was already ranked differently and this project allows no corrections")})
    RankingRevision.objects.create(
        ranking=ranking, number=ranking.revision + 1, submitted_at=last,
        **{f: getattr(ranking, f) for f in Ranking.CONTENT_FIELDS})
    for f in Ranking.CONTENT_FIELDS:
        setattr(ranking, f, getattr(clean, f))
    ranking.revision += 1
    ranking.revised_at = now
    ranking.save(update_fields=[*Ranking.CONTENT_FIELDS, "revision", "revised_at"])
    return ranking, True
