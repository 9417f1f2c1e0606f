"""The evaluation stream (annotation.eval_stream): a random share of fresh tasks, kept apart before anyone saw them,
served at that share of each rater's tasks in random order, never routed, and the held-out set once it has
rankings (rewardmodel.snapshot)."""

from __future__ import annotations

import pytest

from annotation.assignment import next_assignment
from annotation.eval_stream import top_up
from annotation.models import RankingTask
from annotation.submission import RankingPayload, submit_ranking


def rank(assignment):
    ids = assignment.task.completions.order_by("id").values_list("id", flat=True)
    submit_ranking(assignment, RankingPayload(order=[[c] for c in ids]))


@pytest.fixture
def forty(project, make_task):
    project.overlap, project.eval_share, project.reask_share = 1, 0.25, 0
    project.save()
    return [make_task(project, priority=i % 5) for i in range(40)]


def test_top_up_marks_a_share_of_untouched_fresh_tasks_once(project, forty, rater, make_task):
    first = next_assignment(project, rater)  # a task someone has seen is never marked
    gold = make_task(project)
    gold.is_gold = True
    gold.save()
    assert top_up(project) == 10
    marked = RankingTask.objects.filter(project=project, eval_key__isnull=False)
    assert marked.count() == 10 and first.task_id not in set(marked.values_list("pk", flat=True))
    assert not marked.filter(pk=gold.pk).exists()
    assert all(0 <= k < 1 for k in marked.values_list("eval_key", flat=True))
    assert top_up(project) == 0  # already at its share


def test_raters_get_the_stream_at_its_share_in_its_own_order(project, forty, rater):
    top_up(project)
    order = list(RankingTask.objects.filter(eval_key__isnull=False).order_by("eval_key").values_list("pk", flat=True))
    served = []
    for _ in range(20):
        a = next_assignment(project, rater)
        served.append(a.task)
        rank(a)
    evals = [t.pk for t in served if t.eval_key is not None]
    assert len(evals) == 5  # a quarter of the rater's 20 tasks
    assert evals == order[:5]  # in the stream's random order, whatever the tasks' priorities
    fresh = [t for t in served if t.eval_key is None]
    assert [t.priority for t in fresh] == sorted((t.priority for t in fresh), reverse=True)


def test_the_stream_is_the_last_resort_too(project, forty, rater):
    top_up(project)
    while (a := next_assignment(project, rater)) is not None:
        rank(a)
    assert not RankingTask.objects.filter(project=project, status=RankingTask.OPEN).exists()


def test_a_project_that_never_routes_is_unchanged(project, forty, rater, make_user):
    served = []
    for _ in range(10):
        a = next_assignment(project, rater)
        served.append(a.task.priority)
        rank(a)
    assert served == sorted(served, reverse=True) and not RankingTask.objects.filter(eval_key__isnull=False).exists()


def test_stream_rankings_are_the_held_out_set(project, forty, rater):
    from rewardmodel.snapshot import build_snapshot

    before = []
    for _ in range(8):
        a = next_assignment(project, rater)
        rank(a)
        before.append(a.task_id)
    plain = build_snapshot(project.pk)
    assert plain.split_by == "prompt"
    top_up(project)
    for _ in range(12):
        rank(next_assignment(project, rater))
    snap = build_snapshot(project.pk)
    train, held = snap.split(0.2, 0)
    eval_tasks = set(RankingTask.objects.filter(eval_key__isnull=False).values_list("pk", flat=True))
    from annotation.models import Ranking

    task_of = dict(Ranking.objects.values_list("pk", "task_id"))
    assert held and {task_of[snap.ranking_ids[i]] for i in held} <= eval_tasks
    assert not {task_of[snap.ranking_ids[i]] for i in train} & eval_tasks
    assert snap.describe(train, held)["split"]["by"] == "evaluation stream"
    assert snap.sha256 != build_snapshot(project.pk, ranking_ids=[snap.ranking_ids[i] for i in train]).sha256


def test_a_stream_too_small_to_judge_is_held_out_beside_the_prompt_split(project, forty, rater):
    from annotation.models import Ranking
    from rewardmodel.snapshot import build_snapshot

    top_up(project)
    for _ in range(20):
        rank(next_assignment(project, rater))
    snap = build_snapshot(project.pk)
    stream = {i for i, e in enumerate(snap.eval_stream) if e}
    train, held = snap.split(0.25, 0, stream_pairs=10_000)  # more than the stream holds
    assert snap.split_by == "prompt" and stream <= set(held) and not stream & set(train)
    assert set(held) - stream  # and prompts held out as before
    assert Ranking.objects.count() == len(train) + len(held)
