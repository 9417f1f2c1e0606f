"""Sending selected comparisons back to raters through the ordinary task queue.

A selected pair whose task is still open gets that task's priority raised (never lowered).  Otherwise a new
ranking task (source ``active_learning``) is created over the prompt's completions: the pair plus other
completions of the same prompt up to the project's k, at the round's priority.  A pair already covered by a
task created or raised earlier in the same round reuses it.  Each pick is recorded as a SelectedItem.
"""

from __future__ import annotations

import random

from django.db.models import Count, Q

from active_learning.models import SelectedItem, SelectionRound
from annotation.models import Completion, RankingTask

SOURCE = "active_learning"


def _open_task_with(project_id: int, a: int, b: int, preferred: int | None) -> RankingTask | None:
    """An open, non-gold task of the project showing both completions (the preferred one when it qualifies)."""
    qs = (
        RankingTask.objects.filter(project_id=project_id, status=RankingTask.OPEN, is_gold=False)
        .filter(completions=a)
        .annotate(has_b=Count("completions", filter=Q(completions=b)))
        .filter(has_b__gt=0)
        .order_by("-priority", "id")
    )
    if preferred is not None:
        task = qs.filter(pk=preferred).first()
        if task is not None:
            return task
    return qs.first()


def _new_task(project, a: Completion, b: Completion, priority: int, rng: random.Random) -> RankingTask:
    others = list(Completion.objects.filter(prompt_id=a.prompt_id).exclude(pk__in=[a.pk, b.pk]).order_by("pk"))
    rng.shuffle(others)
    chosen = [a, b, *others[: max(0, project.k - 2)]]
    task = RankingTask.objects.create(project=project, prompt_id=a.prompt_id, priority=priority, source=SOURCE)
    task.completions.set(chosen)
    return task


def route(
    rnd: SelectionRound,
    picks: list[tuple[tuple[int, int], int | None, dict]],
    priority: int,
    seed: int = 0,
) -> list[SelectedItem]:
    """Route ``picks`` = [((completion a, completion b), a task holding them, scores), …], most urgent first.

    Call inside a transaction: tasks raised or created here and the SelectedItem rows commit together.
    """
    rng = random.Random(seed)
    project = rnd.project
    comps = Completion.objects.in_bulk({c for (pair, _, _) in picks for c in pair})
    items = []
    for rank, ((a, b), task_id, scores) in enumerate(picks, start=1):
        ca, cb = comps[a], comps[b]
        if ca.prompt_id != cb.prompt_id:
            raise ValueError(f"completions {a} and {b} answer different prompts")
        task = _open_task_with(project.pk, a, b, task_id)
        if task is not None:
            if task.priority < priority:
                RankingTask.objects.filter(pk=task.pk).update(priority=priority)
            action = SelectedItem.RAISED
        else:
            task = _new_task(project, ca, cb, priority, rng)
            action = SelectedItem.CREATED
        items.append(
            SelectedItem(
                round=rnd, task=task, completion_a=ca, completion_b=cb, scores=scores, rank=rank, action=action
            )
        )
    return SelectedItem.objects.bulk_create(items)
