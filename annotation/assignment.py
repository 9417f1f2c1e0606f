"""Handing out ranking tasks as expiring leases.

The next task for a rater is the highest-priority open task of the project over a prompt the rater has never
been given (submitted, skipped or holding a live lease, in any task) that still has a free slot (submitted + live
leases < the task's target: the project's overlap, or with dynamic overlap the task's own target, which the quality
app raises while raters disagree). Re-asks (tasks with an ``origin``) and fresh tasks form two queues, interleaved
per rater by the project's ``reask_share``: a rater whose share of re-asks so far is below it gets a re-ask first,
otherwise a fresh task first; either way the other queue is the fallback, so nobody waits while work is open.

With ``gold_rate`` > 0, gold tasks form a third queue, served first while the rater's share of gold tasks is below
the rate; a gold task has no overlap cap (every rater may get it once) and looks like any other task. A rater whose
membership is paused gets nothing.

On PostgreSQL, candidate task rows are locked with ``SELECT … FOR UPDATE SKIP LOCKED`` so concurrent
raters never count the same free slot twice, and the unique (task, rater) constraint makes a second
lease for the same rater impossible. SQLite has no row locks; there a process-wide lock serialises
assignment (the zero-setup demo runs one web process).
"""

from __future__ import annotations

import random
import threading
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from annotation.models import Assignment, Membership, Project, RankingTask

# Few rows per round: a locked row is invisible to other raters until this transaction ends.
CANDIDATES_PER_ROUND = 5
_sqlite_lock = threading.Lock()


def _slots_taken(task: RankingTask, now) -> int:
    return task.assignments.filter(
        Q(status=Assignment.SUBMITTED) | Q(status=Assignment.LEASED, expires_at__gt=now)
    ).count()


def current_lease(project: Project, rater) -> Assignment | None:
    """The rater's live lease in this project, if any (a rater holds one task at a time)."""
    return (
        Assignment.objects.filter(
            task__project=project, rater=rater, status=Assignment.LEASED, expires_at__gt=timezone.now()
        )
        .select_related("task")
        .order_by("leased_at")
        .first()
    )


def _shuffled_display_order(task: RankingTask) -> list[int]:
    ids = list(task.completions.order_by("id").values_list("id", flat=True))
    random.SystemRandom().shuffle(ids)
    return ids


def _lease(task: RankingTask, rater, now) -> Assignment:
    expires = now + timedelta(minutes=task.project.lease_minutes)
    order = _shuffled_display_order(task)
    # A lapsed lease of this rater on this task is renewed in place (unique (task, rater)).
    updated = Assignment.objects.filter(task=task, rater=rater, status=Assignment.LEASED).update(
        leased_at=now, expires_at=expires, display_order=order
    )
    if updated:
        return Assignment.objects.get(task=task, rater=rater)
    return Assignment.objects.create(task=task, rater=rater, leased_at=now, expires_at=expires, display_order=order)


def _shares(project: Project, rater) -> dict[str, int]:
    return Assignment.objects.filter(task__project=project, rater=rater).aggregate(
        total=Count("id"), reasks=Count("id", filter=Q(task__origin__isnull=False)),
        gold=Count("id", filter=Q(task__is_gold=True)))


def prefers_reask(project: Project, rater, counts: dict[str, int] | None = None) -> bool:
    """Whether this rater's next task should come from the re-ask queue, to keep their share at reask_share."""
    share = project.reask_share
    if share <= 0:
        return False
    counts = counts or _shares(project, rater)
    return counts["reasks"] < share * (counts["total"] + 1)


def due_for_gold(project: Project, rater, counts: dict[str, int] | None = None) -> bool:
    """Whether this rater's next task should be a gold task, to keep their share of gold tasks at gold_rate."""
    if project.gold_rate <= 0:
        return False
    counts = counts or _shares(project, rater)
    return counts["gold"] < project.gold_rate * (counts["total"] + 1)


def is_paused(project: Project, rater) -> bool:
    return Membership.objects.filter(project=project, user=rater, paused=True).exists()


def _try_assign(project: Project, rater) -> Assignment | None:
    counts = _shares(project, rater) if project.gold_rate > 0 or project.reask_share > 0 else None
    if due_for_gold(project, rater, counts):
        gold = _try_assign_from(project, rater, reasks=False, gold=True)
        if gold:
            return gold
    first = prefers_reask(project, rater, counts)
    return _try_assign_from(project, rater, reasks=first) or _try_assign_from(project, rater, reasks=not first)


def _try_assign_from(project: Project, rater, reasks: bool, gold: bool = False) -> Assignment | None:
    now = timezone.now()
    # Any task of the same prompt counts: a re-ask must bring another rater's opinion, never the same one again.
    seen_prompt = Assignment.objects.filter(task__prompt=OuterRef("prompt"), rater=rater).filter(
        Q(status__in=[Assignment.SUBMITTED, Assignment.SKIPPED]) | Q(status=Assignment.LEASED, expires_at__gt=now)
    )
    queue = RankingTask.objects.filter(project=project, status=RankingTask.OPEN, origin__isnull=not reasks)
    if project.gold_rate > 0:  # gold tasks only come through their own queue, at the project's rate
        queue = queue.filter(is_gold=gold)
    queue = queue.filter(~Exists(seen_prompt)).order_by("-priority", "id")
    skip_locked = connection.features.has_select_for_update_skip_locked
    offset = 0
    while True:
        with transaction.atomic():
            if skip_locked:
                batch = list(queue.select_for_update(skip_locked=True, of=("self",))[:CANDIDATES_PER_ROUND])
                if not batch:
                    # Every candidate is locked by another rater right now: wait for the first one
                    # rather than report an empty queue; its slot count is re-read once we hold it.
                    batch = list(queue.select_for_update(of=("self",))[:1])
            else:
                batch = list(queue[offset : offset + CANDIDATES_PER_ROUND])
            if not batch:
                return None
            for task in batch:
                if gold or _slots_taken(task, now) < project.task_target(task):
                    return _lease(task, rater, now)
        # Every locked candidate was full of live leases; look further down the queue.
        offset += CANDIDATES_PER_ROUND
        if skip_locked:
            queue = queue.exclude(pk__in=[t.pk for t in batch])


def next_assignment(project: Project, rater) -> Assignment | None:
    """Return the rater's live lease, or lease the next task; None when nothing is left for them."""
    existing = current_lease(project, rater)
    if existing:
        return existing
    if is_paused(project, rater):
        return None
    for _attempt in range(3):
        try:
            if connection.vendor == "sqlite":
                with _sqlite_lock:
                    return _try_assign(project, rater)
            return _try_assign(project, rater)
        except IntegrityError:
            # The same rater asked twice at once; the other request won. Return its lease.
            existing = current_lease(project, rater)
            if existing:
                return existing
    return None


def release(assignment: Assignment, reason: str = "") -> None:
    """Skip: the rater gives the slot back and will not be offered this task again."""
    with transaction.atomic():
        a = Assignment.objects.select_for_update().get(pk=assignment.pk)
        if a.status == Assignment.LEASED:
            a.status = Assignment.SKIPPED
            a.skip_reason = reason[:200]
            a.save(update_fields=["status", "skip_reason"])
