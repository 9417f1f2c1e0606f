"""Handing out ranking tasks as expiring leases.

The next task for a rater is the highest-priority open task of the project over a prompt the rater has never
been given (submitted, skipped or holding a live lease, in any task) that still has a free slot (submitted + live
leases < the task's target: the project's overlap, or with dynamic overlap the task's own target, which the quality
app raises while raters disagree). Re-asks (tasks with an ``origin``) and fresh tasks form two queues, interleaved
per rater by the project's ``reask_share``: a rater whose share of re-asks so far is below it gets a re-ask first,
otherwise a fresh task first; either way the other queue is the fallback, so nobody waits while work is open.

With ``gold_rate`` > 0, gold tasks form a third queue, served first while the rater's share of gold tasks is below
the rate; a gold task has no overlap cap (every rater may get it once) and looks like any other task. A rater whose
membership is paused gets nothing. Tasks of the evaluation stream (annotation.eval_stream) form a fourth queue, in
their random order, served while the rater's share of them is below the project's ``eval_share`` and as a last
resort; the fresh queue leaves them out, so routing's priorities never decide when they are labelled.

The rater loop runs this on every request, so it is a small constant number of indexed queries whatever the
project's size and however many raters work at once (``tests/annotation/test_query_counts.py`` guards the counts):
one for the rater's state (their live lease's id, pause flag and shares, and whether the project has open re-asks,
gold or evaluation tasks at all: an empty queue is never asked), one per queue tried, one to read the chosen task
and its prompt and re-count its slots under its lock, one for its completions and one upsert for the lease; a rater
who still holds a lease gets it back with one more query for it. The free-slot test is part of the queue query, so
tasks full of other raters' live leases cost nothing (the queue used to lock and count them one by one: a query per
busy task ahead in the queue).

On PostgreSQL, the candidate task row is locked with ``SELECT … FOR UPDATE SKIP LOCKED`` so concurrent raters never
count the same free slot twice (the count in the queue query is re-read once the row is locked: it may predate a
lease committed since), and the unique (task, rater) constraint makes a second lease for the same rater impossible.
SQLite has no row locks; there a process-wide lock serialises assignment (the zero-setup demo runs one web process).

The two queries that every ``next`` runs and that are costly to build (the rater's state and a queue) are compiled
to SQL once per process (``config.prepared``): compiling them took more CPU than PostgreSQL took to run them.
"""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Count, Exists, F, IntegerField, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation.models import Assignment, Completion, Membership, Project, RankingTask
from config.prepared import PreparedQuery

_sqlite_lock = threading.Lock()
MAX_FULL_CANDIDATES = 20  # tasks found full under their lock before giving up on a queue (each a rare race)


def holding_slot(now) -> Q:
    """Assignments that take one of a task's slots at ``now``: submitted, or leased and not lapsed."""
    return Q(status=Assignment.SUBMITTED) | Q(status=Assignment.LEASED, expires_at__gt=now)


def current_lease(project: Project, rater) -> Assignment | None:
    """The rater's live lease in this project, if any (a rater holds one task at a time), with ``rater_paused``
    read in the same query."""
    lease = (
        Assignment.objects.filter(
            task__project=project, rater=rater, status=Assignment.LEASED, expires_at__gt=timezone.now()
        )
        .annotate(rater_paused=Exists(Membership.objects.filter(project=project, user=rater, paused=True)))
        .select_related("task__prompt")
        .order_by("leased_at")
        .first()
    )
    if lease is not None:
        lease.task.project = project
    return lease


def _count(qs, group_by: str) -> Coalesce:
    """A COUNT subquery over `qs` (filtered down to one `group_by` value), 0 when empty."""
    return Coalesce(Subquery(qs.order_by().values(group_by).annotate(n=Count("pk")).values("n")[:1],
                             output_field=IntegerField()), 0)


def _rater_state_query(with_shares: bool, project_id: int, rater_id: int, now: datetime):
    open_tasks = RankingTask.objects.filter(project_id=project_id, status=RankingTask.OPEN)
    live = Assignment.objects.filter(task__project_id=project_id, rater_id=rater_id, status=Assignment.LEASED,
                                     expires_at__gt=now)
    fields = {"paused": Exists(Membership.objects.filter(project_id=project_id, user_id=rater_id, paused=True)),
              # The rater's live lease, if any: almost always none (a rater asks for the next task after
              # submitting), so the lease itself is only read when there is one.
              "live_lease": Subquery(live.order_by("leased_at").values("pk")[:1]),
              # Whether the re-ask, gold and evaluation queues hold anything (their partial indexes make this
              # free): an empty queue is then not asked at all.
              "any_reasks": Exists(open_tasks.filter(origin__isnull=False)),
              "any_gold": Exists(open_tasks.filter(is_gold=True)),
              "any_eval": Exists(open_tasks.filter(eval_key__isnull=False))}
    if with_shares:
        # Each count is taken only when its queue holds anything (PostgreSQL runs a CASE branch's subquery only when
        # the branch is taken): on a big project they are the costly part (a rater's thousands of leases joined to
        # their tasks; PostgreSQL even started a parallel worker for each: 10 ms of a 10.5 ms query at 3,000,000
        # rankings), and a queue that is empty needs no share.
        def when(queue: Exists, count: Coalesce) -> Case:
            return Case(When(queue, then=count), default=Value(0), output_field=IntegerField())

        mine = Assignment.objects.filter(task__project_id=project_id, rater_id=rater_id)
        reasks, gold, evals = fields["any_reasks"], fields["any_gold"], fields["any_eval"]
        fields |= {"total": when(reasks | gold | evals, _count(mine, "rater")),
                   "reasks": when(reasks, _count(mine.filter(task__origin__isnull=False), "rater")),
                   "gold": when(gold, _count(mine.filter(task__is_gold=True), "rater")),
                   "evals": when(evals, _count(mine.filter(task__eval_key__isnull=False), "rater"))}
    # Read through the project's row, which always exists: a rater with no assignment yet still gets zeros.
    return Project.objects.filter(pk=project_id).order_by().annotate(**fields).values(*fields)


_RATER_STATE = PreparedQuery(_rater_state_query, {"project_id": int, "rater_id": int, "now": datetime})


def rater_state(project: Project, rater, with_shares: bool = True) -> dict:
    """Whether the rater is ``paused`` in this project, the id of their ``live_lease`` (or None), whether the
    project has open re-asks, gold and evaluation tasks at all, and, with ``with_shares``, how many tasks of each
    kind the rater was given in it (``total``, ``reasks``, ``gold``, ``evals``; 0 where the queue is empty, which
    needs no share): one query, compiled once per process (it runs on every ``next``)."""
    (state,) = _RATER_STATE.dicts(with_shares, project_id=project.pk, rater_id=rater.pk, now=timezone.now())
    return state


def prefers_reask(project: Project, rater, counts: dict[str, int] | None = None) -> bool:
    """Whether this rater's next task should come from the re-ask queue, to keep their share at reask_share."""
    share = project.reask_share
    if share <= 0:
        return False
    counts = counts or rater_state(project, rater)
    return counts["reasks"] < share * (counts["total"] + 1)


def due_for_gold(project: Project, rater, counts: dict[str, int] | None = None) -> bool:
    """Whether this rater's next task should be a gold task, to keep their share of gold tasks at gold_rate."""
    if project.gold_rate <= 0:
        return False
    counts = counts or rater_state(project, rater)
    return counts["gold"] < project.gold_rate * (counts["total"] + 1)


def due_for_eval(project: Project, rater, counts: dict[str, int] | None = None) -> bool:
    """Whether this rater's next task should come from the evaluation stream, to keep their share at eval_share."""
    if project.eval_share <= 0:
        return False
    counts = counts or rater_state(project, rater)
    return counts["evals"] < project.eval_share * (counts["total"] + 1)


def is_paused(project: Project, rater) -> bool:
    return Membership.objects.filter(project=project, user=rater, paused=True).exists()


def _target(dynamic: bool, target: int):
    """The task's target as SQL: the fixed overlap, or with dynamic overlap its own target (min_overlap unset)."""
    return Coalesce("target_overlap", Value(target)) if dynamic else Value(target)


def _queue_query(shape: tuple, project_id: int, rater_id: int, now, target: int, full: tuple[int, ...] = ()):
    """One queue's first candidate's id but those in ``full``, locked (``lock``: "skip" skips rows others hold,
    "wait" waits for them)."""
    reasks, gold, evals, any_eval, has_gold_rate, dynamic, lock = shape
    # Any task of the same prompt counts: a re-ask must bring another rater's opinion, never the same one again.
    seen_prompt = Assignment.objects.filter(task__prompt=OuterRef("prompt"), rater_id=rater_id).filter(
        Q(status__in=[Assignment.SUBMITTED, Assignment.SKIPPED]) | Q(status=Assignment.LEASED, expires_at__gt=now)
    )
    queue = RankingTask.objects.filter(project_id=project_id, status=RankingTask.OPEN, origin__isnull=not reasks)
    if has_gold_rate:  # gold tasks only come through their own queue, at the project's rate
        queue = queue.filter(is_gold=gold)
    if evals:
        queue = queue.filter(eval_key__isnull=False)
    elif any_eval and not reasks:  # the evaluation stream comes through its own queue, in its own order
        queue = queue.filter(eval_key__isnull=True)
    queue = queue.filter(~Exists(seen_prompt))
    if full:
        queue = queue.exclude(pk__in=full)
    if not gold:  # a served-to-all gold task has no cap; every other task needs a free slot
        taken = _count(Assignment.objects.filter(holding_slot(now), task=OuterRef("pk")), "task")
        queue = queue.alias(slots_taken=taken, slots_target=_target(dynamic, target)).filter(
            slots_taken__lt=F("slots_target"))
    queue = queue.order_by(*(("eval_key", "id") if evals else ("-priority", "id"))).values("id")
    if lock != "none":
        queue = queue.select_for_update(skip_locked=lock == "skip", of=("self",))
    return queue[:1]


_QUEUE = PreparedQuery(_queue_query, {"project_id": int, "rater_id": int, "now": datetime, "target": int},
                       optional=frozenset({"target"}))  # the gold queue has no cap


def _candidate(project: Project, rater, now, shape: tuple, full: list[int]) -> int | None:
    """The id of the queue's first task with a free slot, locked; ``full`` lists tasks already found full."""
    target = project.min_overlap if project.dynamic_overlap else project.overlap
    if not full:  # the common case, compiled once per process (config.prepared)
        found = _QUEUE.dicts(shape, project_id=project.pk, rater_id=rater.pk, now=now, target=target)
    else:  # a rare race (a slot taken between the queue's snapshot and the lock): the plain ORM
        found = list(_queue_query(shape, project.pk, rater.pk, now, target, tuple(full)))
    return found[0]["id"] if found else None


def _display_completions(task: RankingTask) -> list[Completion]:
    """The task's completions in a fresh random order (one query): what the rater will see, in that order."""
    shown = list(Completion.objects.filter(tasks=task).only("id", "text").order_by("id"))
    random.SystemRandom().shuffle(shown)
    return shown


def _lease(project: Project, task: RankingTask, rater, now) -> Assignment | None:
    """Lease `task` to `rater` in one statement; None if the rater already answered or skipped it (a race)."""
    shown = _display_completions(task)
    lease = Assignment(task=task, rater=rater, status=Assignment.LEASED, leased_at=now,
                       expires_at=now + timedelta(minutes=project.lease_minutes), display_order=[c.pk for c in shown])
    table = Assignment._meta.db_table
    values = [lease.task_id, lease.rater_id, lease.status, lease.leased_at, lease.expires_at, lease.display_order, ""]
    columns = ("task", "rater", "status", "leased_at", "expires_at", "display_order", "skip_reason")
    params = [Assignment._meta.get_field(c).get_db_prep_save(v, connection) for c, v in zip(columns, values,
                                                                                             strict=True)]
    params.append(Assignment.LEASED)
    # An upsert: a lapsed lease of this rater on this task (unique (task, rater)) is renewed in place; a submitted or
    # skipped one is left alone (RETURNING gives no row). Django's bulk_create(update_conflicts=…) has no WHERE.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (task_id, rater_id, status, leased_at, expires_at, display_order, skip_reason) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (task_id, rater_id) DO UPDATE SET leased_at = EXCLUDED.leased_at, "
            f"expires_at = EXCLUDED.expires_at, display_order = EXCLUDED.display_order WHERE {table}.status = %s "
            "RETURNING id", params)
        row = cursor.fetchone()
    if row is None:
        return None
    lease.pk = row[0]
    task.project = project
    lease.task = task
    lease.shown_completions = shown  # the serializer and the rate page show these without asking again
    return lease


def _try_assign_from(project: Project, rater, reasks: bool, gold: bool = False, wait: bool = False,
                     evals: bool = False, any_eval: bool = False) -> Assignment | None:
    """Lease the first task of one queue with a free slot. Tasks other raters hold locked are skipped, unless
    ``wait``: then the first one is waited for (its slot is re-counted once held)."""
    now = timezone.now()
    lock = ("wait" if wait else "skip") if connection.features.has_select_for_update_skip_locked else "none"
    shape = (reasks, gold, evals, any_eval, project.gold_rate > 0, project.dynamic_overlap, lock)
    full: list[int] = []  # candidates whose free slot was taken between the queue's snapshot and their lock
    while len(full) < MAX_FULL_CANDIDATES:
        with transaction.atomic():
            task_id = _candidate(project, rater, now, shape, full)
            if task_id is None:
                return None
            # The row is locked now: re-count its slots (a lease committed since the queue's snapshot may have
            # taken the last one), reading the task and its prompt in the same query.
            task = (RankingTask.objects.select_related("prompt")
                    .annotate(slots_taken=_count(Assignment.objects.filter(holding_slot(now), task=OuterRef("pk")),
                                                 "task"))
                    .get(pk=task_id))
            if gold or task.slots_taken < project.task_target(task):
                return _lease(project, task, rater, now)
        full.append(task_id)
    return None


def next_assignment(project: Project, rater) -> Assignment | None:
    """Return the rater's live lease, or lease the next task; None when nothing is left for them, or when they are
    paused: a lease held when the pause came is given back (it lapses now; the task goes to others, and to them
    again once un-paused), so nobody keeps rating through a pause."""
    needs_shares = project.gold_rate > 0 or project.reask_share > 0 or project.eval_share > 0
    state = rater_state(project, rater, with_shares=needs_shares)
    if state["live_lease"] is not None:
        existing = current_lease(project, rater)
        if existing:
            if existing.rater_paused:
                Assignment.objects.filter(pk=existing.pk, status=Assignment.LEASED).update(expires_at=timezone.now())
                return None
            return existing
    for _attempt in range(3):
        try:
            if connection.vendor == "sqlite":
                with _sqlite_lock:
                    return _assign_unless_paused(project, rater, state)
            return _assign_unless_paused(project, rater, state)
        except IntegrityError:
            # The same rater asked twice at once; the other request won. Return its lease.
            existing = current_lease(project, rater)
            if existing:
                return existing
    return None


def _assign_unless_paused(project: Project, rater, state: dict) -> Assignment | None:
    if state["paused"]:
        return None
    any_eval = state["any_eval"]
    queues = []  # (reasks, gold, evals), in the order this rater should be served from them
    if state["any_gold"] and due_for_gold(project, rater, state):
        queues.append((False, True, False))
    if any_eval and due_for_eval(project, rater, state):
        queues.append((False, False, True))
    first = prefers_reask(project, rater, state)
    queues += [(first, False, False), (not first, False, False)]
    if not state["any_reasks"]:
        queues.remove((True, False, False))
    if any_eval and (False, False, True) not in queues:  # the last resort: nobody waits while work is open
        queues.append((False, False, True))
    for wait in (False, True):
        # Skipping tasks other raters hold locked first; only when every queue came up empty that way is a locked
        # task waited for (it may turn out to have a slot), rather than report an empty queue while work is open.
        if wait and not connection.features.has_select_for_update_skip_locked:
            return None
        for reasks, gold, evals in queues:
            lease = _try_assign_from(project, rater, reasks=reasks, gold=gold, wait=wait, evals=evals,
                                     any_eval=any_eval)
            if lease:
                return lease
    return None


def release(assignment: Assignment, reason: str = "") -> None:
    """Skip: the rater gives the slot back and will not be offered this task again."""
    with transaction.atomic():
        a = Assignment.objects.select_for_update().get(pk=assignment.pk)
        if a.status == Assignment.LEASED:
            a.status = Assignment.SKIPPED
            a.skip_reason = reason[:200]
            a.save(update_fields=["status", "skip_reason"])
