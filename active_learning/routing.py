"""Sending selected comparisons back to raters through the ordinary task queue, without duplicating work.

For each selected pair (a, b), most urgent first:

1. an open, non-gold task that shows both completions and still wants raters gets its priority raised (never
   lowered): the pair is asked there anyway, no new task is needed (action ``raised``);
2. otherwise a *re-ask* is created: a pairwise task showing just (a, b) over the same prompt, with ``origin`` the
   task the pair came from (action ``created``). The assignment rules give it only to raters who have never been
   given that prompt, so it brings a new opinion, and interleave it with fresh work by the project's
   ``reask_share``.

A pair is never given a second open re-ask: an open re-ask of the same pair satisfies rule 1. How often a pair and
a prompt may be routed back at all is capped by the caller (``pipeline``), through the selection's eligibility.
"""

from __future__ import annotations

from active_learning.models import SelectedItem, SelectionRound
from annotation.models import Completion, RankingTask

SOURCE = "active_learning"


def _open_task_with(project_id: int, a: int, b: int, preferred: int | None) -> RankingTask | None:
    """An open, non-gold task of the project showing both completions (the preferred one when it qualifies)."""
    # Two chained filters on a many-to-many make two joins: a task showing a *and* b. (Annotating a Count after
    # filter(completions=a) counted over that one filtered join, found no b, and so never reused a task.)
    qs = (
        RankingTask.objects.filter(project_id=project_id, status=RankingTask.OPEN, is_gold=False)
        .filter(completions=a)
        .filter(completions=b)
        .order_by("-priority", "id")
    )
    if preferred is not None:
        task = qs.filter(pk=preferred).first()
        if task is not None:
            return task
    return qs.first()


def _reask(project, a: Completion, b: Completion, origin_id: int | None, priority: int) -> RankingTask:
    task = RankingTask.objects.create(
        project=project, prompt_id=a.prompt_id, priority=priority, source=SOURCE, origin_id=origin_id
    )
    task.completions.set([a, b])
    return task


def route(
    rnd: SelectionRound,
    picks: list[tuple[tuple[int, int], int | None, dict]],
    priority: int,
) -> list[SelectedItem]:
    """Route ``picks`` = [((completion a, completion b), the task the pair came from, scores), …], most urgent first.

    Call inside a transaction: tasks raised or created here and the SelectedItem rows commit together.
    """
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
            origin = RankingTask.objects.filter(pk=task_id).values_list("origin_id", flat=True).first()
            task = _reask(project, ca, cb, origin or task_id, priority)  # a re-ask of a re-ask points to the first
            action = SelectedItem.CREATED
        items.append(
            SelectedItem(
                round=rnd, task=task, completion_a=ca, completion_b=cb, scores=scores, rank=rank, action=action
            )
        )
    return SelectedItem.objects.bulk_create(items)
