"""The data browser's bulk actions on a selection of tasks (check, then do): set priority, re-ask, exclude from or
include in training, export their rankings. Each writes one ``BulkAction`` row, in the same transaction."""

from __future__ import annotations

from collections.abc import Iterator

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet

from annotation.exporter import iter_rankings
from annotation.models import Project, Ranking, RankingTask
from curation.models import BulkAction

# A request changes at most this many tasks; a bigger selection is narrowed by its filters first.
MAX_TASKS = 10_000
MIN_PRIORITY, MAX_PRIORITY = -1_000_000, 1_000_000
REASK_SOURCE = "data_browser"


class SelectionTooLarge(ValueError):
    pass


def _check_size(tasks: QuerySet[RankingTask]) -> int:
    n = tasks.count()
    if n > MAX_TASKS:
        raise SelectionTooLarge(f"{n:,} tasks selected; a bulk action takes at most {MAX_TASKS:,}: narrow the filters")
    return n


def _log(project: Project, user, action: str, params: dict, n: int, changed: int) -> BulkAction:
    return BulkAction.objects.create(project=project, user=user if getattr(user, "pk", None) else None,
                                     action=action, params=params, tasks=n, changed=changed)


@transaction.atomic
def set_priority(project: Project, tasks: QuerySet[RankingTask], priority: int, user=None,
                 params: dict | None = None) -> BulkAction:
    """Serve the selected open tasks by ``priority`` (higher first)."""
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise ValueError(f"priority must be from {MIN_PRIORITY:,} to {MAX_PRIORITY:,}")
    n = _check_size(tasks)
    changed = RankingTask.objects.filter(pk__in=tasks.values("pk")).update(priority=priority)
    return _log(project, user, BulkAction.PRIORITY, {**(params or {}), "priority": priority}, n, changed)


@transaction.atomic
def set_excluded(project: Project, tasks: QuerySet[RankingTask], excluded: bool, user=None,
                 params: dict | None = None) -> BulkAction:
    """Take the selected tasks' rankings out of training (or back in): the next snapshot follows."""
    n = _check_size(tasks)
    changed = (RankingTask.objects.filter(pk__in=tasks.values("pk")).exclude(excluded_from_training=excluded)
               .update(excluded_from_training=excluded))
    return _log(project, user, BulkAction.EXCLUDE if excluded else BulkAction.INCLUDE, params or {}, n, changed)


@transaction.atomic
def reask(project: Project, tasks: QuerySet[RankingTask], priority: int | None = None, user=None,
          params: dict | None = None) -> BulkAction:
    """Ask the selected tasks again, K-way as they were, of raters who never saw their prompts: one re-ask each
    (``origin`` = the task, or the task it re-asks), served by the project's ``reask_share``. Gold tasks, and tasks
    that already have an open re-ask, are left alone."""
    n = _check_size(tasks)
    open_reask = RankingTask.objects.filter(origin=OuterRef("pk"), status=RankingTask.OPEN)
    chosen = (RankingTask.objects.filter(pk__in=tasks.values("pk"), is_gold=False).exclude(Exists(open_reask))
              .prefetch_related("completions"))
    created = 0
    for task in chosen:
        copy = RankingTask.objects.create(
            project=project, prompt_id=task.prompt_id, source=REASK_SOURCE, origin_id=task.origin_id or task.pk,
            priority=task.priority if priority is None else priority)
        copy.completions.set(task.completions.all())
        created += 1
    return _log(project, user, BulkAction.REASK, {**(params or {}), "priority": priority}, n, created)


def export_rankings(project: Project, tasks: QuerySet[RankingTask], user=None,
                    params: dict | None = None) -> Iterator[dict]:
    """The selected tasks' rankings as ``annotation.exporter.iter_rankings`` rows (checked and logged before the
    first row is produced)."""
    n = _check_size(tasks)
    _log(project, user, BulkAction.EXPORT, params or {}, n, n)
    return iter_rankings(project, rankings=Ranking.objects.filter(task__in=tasks.values("pk")))
