"""Dynamic overlap: the policy, and the platform serving by it on PostgreSQL, under concurrency too."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from django.db import connection

from annotation.assignment import next_assignment
from annotation.models import Assignment, Membership, Ranking, RankingTask
from annotation.submission import RankingPayload, SubmissionError, submit_ranking
from quality.models import TaskConsensus
from quality.overlap import decide, task_confidence
from tests.conftest import all_at_once
from tests.quality.helpers import at_random, best_first, rate_once, worst_first


def test_policy():
    assert task_confidence([0.7, 0.2, 0.95]) == pytest.approx(0.7)
    assert task_confidence([]) == 1.0
    assert decide(1, 2, 5, 0.99, 0.8).target == 2  # below the minimum: no early stop
    assert decide(2, 2, 5, 0.85, 0.8).done
    assert decide(2, 2, 5, 0.6, 0.8) == decide(2, 2, 5, 0.6, 0.8) and decide(2, 2, 5, 0.6, 0.8).target == 3
    assert decide(5, 2, 5, 0.6, 0.8).done  # the maximum ends it, contested or not


@pytest.fixture
def dynamic(project, make_user):
    project.k = 2
    project.min_overlap, project.max_overlap, project.consensus_threshold = 2, 5, 0.8
    project.save()
    raters = [make_user(f"d{i}") for i in range(8)]
    for r in raters:
        Membership.objects.create(project=project, user=r)
    return project, raters


@pytest.mark.django_db
def test_agreeing_raters_settle_a_task_at_the_minimum(dynamic, make_task):
    project, raters = dynamic
    task = make_task(project)
    rate_once(project, raters[0], best_first)
    task.refresh_from_db()
    assert task.status == RankingTask.OPEN and project.task_target(task) == 2
    rate_once(project, raters[1], best_first)
    task.refresh_from_db()
    assert task.status == RankingTask.COMPLETE and task.submitted_count == 2
    assert TaskConsensus.objects.get(task=task).confidence >= 0.8
    assert next_assignment(project, raters[2]) is None  # settled: served no more


@pytest.mark.django_db
def test_contested_tasks_get_more_raters_up_to_the_maximum(dynamic, make_task):
    project, raters = dynamic
    task = make_task(project)
    seen_targets = []
    for i, r in enumerate(raters):
        a = rate_once(project, r, best_first if i % 2 == 0 else worst_first)
        task.refresh_from_db()
        seen_targets.append(project.task_target(task))
        if a is None:
            break
    assert task.status == RankingTask.COMPLETE
    assert task.rankings.count() == 5  # the maximum, never more
    assert seen_targets[:4] == [2, 3, 4, 5]
    assert TaskConsensus.objects.get(task=task).confidence < 0.8


@pytest.mark.django_db
def test_a_lapsed_lease_cannot_overfill_a_dynamic_task(dynamic, make_task):
    project, raters = dynamic
    make_task(project)
    a1, a2 = next_assignment(project, raters[0]), next_assignment(project, raters[1])
    assert next_assignment(project, raters[2]) is None  # target 2: both slots leased
    Assignment.objects.filter(pk=a1.pk).update(expires_at=a1.leased_at)  # a1 lapses; its slot goes to raters[2]
    a3 = next_assignment(project, raters[2])
    assert a3 is not None
    submit_ranking(a2, RankingPayload(order=best_first(sorted(a2.display_order), [])))
    submit_ranking(a3, RankingPayload(order=best_first(sorted(a3.display_order), [])))
    with pytest.raises(SubmissionError, match="lease expired"):
        submit_ranking(a1, RankingPayload(order=best_first(sorted(a1.display_order), [])))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_threads_lease_only_the_dynamic_minimum(dynamic, make_user, make_task):
    if connection.vendor != "postgresql":
        pytest.skip("row locks with SKIP LOCKED need PostgreSQL")
    project, _ = dynamic
    for _ in range(5):
        make_task(project)
    raters = [make_user(f"t{i}") for i in range(20)]
    for r in raters:
        Membership.objects.create(project=project, user=r)

    def lease(user):
        a = next_assignment(project, user)
        return a.task_id if a else None

    results, errors = all_at_once(lease, raters)
    assert errors == []
    per_task = Counter(t for t in results if t)
    assert sum(per_task.values()) == 10 and all(n == 2 for n in per_task.values())  # 5 tasks × min_overlap 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_raters_never_exceed_the_target(dynamic, make_user, make_task):
    """Twelve raters lease and submit at once, half of them contrary: no task ever has more rankings than its
    target, none more than max_overlap, and no rater ranks a task twice."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks with SKIP LOCKED need PostgreSQL")
    project, _ = dynamic
    tasks = [make_task(project) for _ in range(6)]
    raters = [make_user(f"c{i}") for i in range(12)]
    for r in raters:
        Membership.objects.create(project=project, user=r)

    def rate_until_done(numbered):
        # "Nothing for you now" is not "nothing left": a task whose slots are all leased may be raised by the next
        # contrary ranking, so a rater comes back while an open task they have not seen remains (as people do).
        i, user = numbered
        choose = at_random(i)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if rate_once(project, user, choose) is None:
                unseen = RankingTask.objects.filter(project=project, status=RankingTask.OPEN).exclude(
                    assignments__rater=user)
                if not unseen.exists():
                    return
                time.sleep(0.02)

    _, errors = all_at_once(rate_until_done, list(enumerate(raters)))
    assert errors == []
    for task in tasks:
        task.refresh_from_db()
        n = Ranking.objects.filter(task=task).count()
        assert task.status == RankingTask.COMPLETE
        assert 2 <= n <= 5 and n == task.submitted_count
        assert n <= project.task_target(task)
        assert Ranking.objects.filter(task=task).values("rater").distinct().count() == n
