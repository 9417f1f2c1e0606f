"""A project with rankings of every kind a release must tell apart, made through the rater loop."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from annotation.assignment import next_assignment
from annotation.models import Ranking, RankingTask
from annotation.submission import RankingPayload, submit_ranking


def rank(project, rater, order_by_index, **extra) -> Ranking:
    """Lease the rater's next task and submit `order_by_index` (tie groups of 0-based completion indexes)."""
    a = next_assignment(project, rater)
    ids = list(a.task.completions.order_by("id").values_list("id", flat=True))
    ranking, _ = submit_ranking(a, RankingPayload(order=[[ids[i] for i in g] for g in order_by_index], **extra))
    return ranking


def revise(ranking: Ranking, order_by_index) -> Ranking:
    """The rater corrects the ranking within the edit window, as the rate page does."""
    ids = list(ranking.task.completions.order_by("id").values_list("id", flat=True))
    revised, _ = submit_ranking(ranking.assignment, RankingPayload(order=[[ids[i] for i in g]
                                                                          for g in order_by_index]))
    return revised


@dataclass
class Ranked:
    strict: Ranking  # K=4, no tie: 6 pairs
    tied: Ranking  # E = F ≻ G ≻ H: 5 pairs
    all_tied: Ranking  # no pair: never released
    flagged: Ranking  # never released
    streamed: Ranking  # a task of the evaluation stream: only with include_eval


@pytest.fixture
def ranked(project, rater, rater2, make_task) -> Ranked:
    """Tasks served by priority: rater ranks tasks 1, 2, 3 and rater2 tasks 1, 2 (overlap 2)."""
    t1 = make_task(project, texts=["A", "B", "C", "D"], prompt_text="Pick one", priority=30)
    make_task(project, texts=["E", "F", "G", "H"], priority=20)
    t3 = make_task(project, texts=["I", "J", "K", "L"], priority=10)
    strict = rank(project, rater, [[2], [0], [3], [1]])  # C ≻ A ≻ D ≻ B
    assert strict.task_id == t1.pk
    tied = rank(project, rater, [[0, 1], [2], [3]])
    streamed = rank(project, rater, [[3], [2], [1], [0]])
    assert streamed.task_id == t3.pk
    all_tied = rank(project, rater2, [[0, 1, 2, 3]])
    flagged = rank(project, rater2, [[0], [1], [2], [3]], flags=["unsure"])
    RankingTask.objects.filter(pk=t3.pk).update(eval_key=0.5)  # in the evaluation stream
    return Ranked(strict, tied, all_tied, flagged, streamed)
