"""Re-asks: routed pairs become pairwise tasks, never copies; new raters only; interleaved by the project's share;
marked in the exports."""

from __future__ import annotations

import pytest

from active_learning import routing
from active_learning.models import SelectedItem, SelectionRound
from annotation.assignment import next_assignment, prefers_reask
from annotation.exporter import iter_rankings, iter_trl_pairs
from annotation.models import RankingTask
from annotation.submission import RankingPayload, submit_ranking


def rank_by_id(task):
    return [[cid] for cid in task.completions.order_by("id").values_list("id", flat=True)]


def work(project, rater, n=None) -> list[RankingTask]:
    """The rater takes and submits tasks until the queue is empty (or n tasks); returns them in order."""
    done = []
    while (n is None or len(done) < n) and (a := next_assignment(project, rater)) is not None:
        submit_ranking(a, RankingPayload(order=rank_by_id(a.task)))
        done.append(a.task)
    return done


def pair_of(task) -> tuple[int, int]:
    ids = sorted(task.completions.values_list("id", flat=True))
    return ids[0], ids[1]


def route_pairs(project, picks):
    rnd = SelectionRound.objects.create(project=project, strategy="uncertainty", batch_size=len(picks),
                                        status=SelectionRound.DONE)
    return routing.route(rnd, [(pair, task_id, {}) for pair, task_id in picks], priority=100)


@pytest.fixture
def rated(project, make_task, rater):
    """Overlap 1, three tasks all ranked by `rater`."""
    project.overlap = 1
    project.save()
    tasks = [make_task(project) for _ in range(3)]
    assert len(work(project, rater)) == 3
    return tasks


def test_a_routed_pair_becomes_one_pairwise_reask_and_is_never_duplicated(project, rated):
    origin = rated[0]
    first = route_pairs(project, [(pair_of(origin), origin.pk)])[0]
    assert first.action == SelectedItem.CREATED
    reask = first.task
    assert reask.origin == origin and reask.prompt_id == origin.prompt_id and reask.source == routing.SOURCE
    assert reask.completions.count() == 2 and pair_of(reask) == pair_of(origin)
    # Routed again while that re-ask is still open: its priority is raised, no second copy.
    again = route_pairs(project, [(pair_of(origin), origin.pk)])[0]
    assert again.action == SelectedItem.RAISED and again.task == reask
    assert RankingTask.objects.filter(project=project).count() == 4


def test_a_reask_goes_only_to_raters_new_to_its_prompt(project, rated, rater, rater2):
    reask = route_pairs(project, [(pair_of(rated[1]), rated[1].pk)])[0].task
    assert work(project, rater) == []  # rater ranked that prompt already: nothing for them
    assert work(project, rater2) == [reask]  # the origin tasks are complete (overlap 1); the re-ask is new to rater2
    # A re-ask of a re-ask points at the first task, and the original rater still never gets it.
    second = route_pairs(project, [(pair_of(reask), reask.pk)])[0].task
    assert second.origin == rated[1]
    assert work(project, rater) == [] and work(project, rater2) == []


def test_reasks_are_interleaved_with_fresh_work_by_the_project_share(project, make_task, rater, make_user):
    project.overlap = 1
    project.reask_share = 0.5
    project.save()
    seeded = [make_task(project) for _ in range(6)]
    work(project, rater, n=6)
    for task in seeded:
        route_pairs(project, [(pair_of(task), task.pk)])
    fresh = [make_task(project) for _ in range(6)]
    newcomer = make_user("newcomer")
    served = work(project, newcomer)
    kinds = ["reask" if t.origin_id else "fresh" for t in served]
    assert kinds == ["reask", "fresh"] * 6
    assert {t.pk for t in served if not t.origin_id} == {t.pk for t in fresh}


def test_share_zero_serves_reasks_only_when_nothing_fresh_is_left(project, rated, make_task, rater2):
    project.reask_share = 0.0
    project.save()
    route_pairs(project, [(pair_of(t), t.pk) for t in rated])
    fresh = [make_task(project) for _ in range(2)]
    assert not prefers_reask(project, rater2)
    served = work(project, rater2)
    assert served[:2] == fresh and all(t.origin_id for t in served[2:]) and len(served) == 5


def test_exports_mark_reasks(project, rated, rater2):
    reask = route_pairs(project, [(pair_of(rated[2]), rated[2].pk)])[0].task
    work(project, rater2)
    rows = list(iter_trl_pairs(project))
    assert len(rows) == 3 * 6 + 1
    marked = [r for r in rows if r["reask"]]
    assert len(marked) == 1 and marked[0]["origin_task_id"] == rated[2].pk and marked[0]["task_id"] == reask.pk
    assert all(r["origin_task_id"] is None for r in rows if not r["reask"])
    rankings = {r["task_id"]: r for r in iter_rankings(project)}
    assert rankings[reask.pk]["reask"] and rankings[reask.pk]["origin_task_id"] == rated[2].pk
    assert not rankings[rated[0].pk]["reask"]
