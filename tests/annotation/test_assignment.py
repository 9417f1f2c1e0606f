"""Assignment: priority order, leases, overlap, idempotent submission, and real concurrency on PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from annotation.assignment import next_assignment, release
from annotation.models import Assignment, Membership, RankingTask
from annotation.submission import RankingPayload, SubmissionError, submit_ranking
from tests.conftest import all_at_once


def order_of(task):
    return [[cid] for cid in task.completions.order_by("id").values_list("id", flat=True)]


def test_highest_priority_first_and_lease_is_kept(project, rater, make_task):
    low = make_task(project, priority=0)
    high = make_task(project, priority=5)
    a = next_assignment(project, rater)
    assert a.task_id == high.pk
    # Asking again returns the same live lease, not a second task.
    assert next_assignment(project, rater).pk == a.pk
    submit_ranking(a, RankingPayload(order=order_of(high)))
    assert next_assignment(project, rater).task_id == low.pk


def test_display_order_is_a_permutation_of_the_task(project, rater, make_task):
    task = make_task(project)
    a = next_assignment(project, rater)
    assert sorted(a.display_order) == sorted(task.completions.values_list("id", flat=True))


def test_overlap_is_never_exceeded(project, make_user, make_task):
    task = make_task(project)
    raters = [make_user(f"r{i}") for i in range(4)]
    got = [next_assignment(project, r) for r in raters]
    assert [a.task_id if a else None for a in got].count(task.pk) == project.overlap
    assert got[2] is None and got[3] is None


def test_expired_lease_frees_the_slot(project, rater, rater2, make_user, make_task):
    make_task(project)
    project.overlap = 1
    project.save()
    a = next_assignment(project, rater)
    assert next_assignment(project, rater2) is None
    Assignment.objects.filter(pk=a.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    b = next_assignment(project, rater2)
    assert b is not None and b.task_id == a.task_id
    # The first rater's late submission is refused: the slot went to someone else.
    with pytest.raises(SubmissionError, match="expired"):
        submit_ranking(a, RankingPayload(order=order_of(a.task)))


def test_submission_is_idempotent_and_completes_the_task(project, rater, rater2, make_task):
    task = make_task(project)
    a1 = next_assignment(project, rater)
    r1, created1 = submit_ranking(a1, RankingPayload(order=order_of(task)))
    r1b, created1b = submit_ranking(a1, RankingPayload(order=order_of(task), time_spent_ms=99))
    assert created1 and not created1b and r1b.pk == r1.pk and r1b.order == order_of(task) and r1b.revision == 0
    task.refresh_from_db()
    assert task.submitted_count == 1 and task.status == RankingTask.OPEN
    a2 = next_assignment(project, rater2)
    submit_ranking(a2, RankingPayload(order=order_of(task)))
    task.refresh_from_db()
    assert task.submitted_count == 2 and task.status == RankingTask.COMPLETE


def test_bad_orders_are_refused_with_a_reason(project, rater, make_task):
    task = make_task(project)
    a = next_assignment(project, rater)
    ids = [g[0] for g in order_of(task)]
    with pytest.raises(SubmissionError, match="more than once"):
        submit_ranking(a, RankingPayload(order=[[ids[0]], [ids[0]], [ids[1]], [ids[2]]]))
    with pytest.raises(SubmissionError, match="missing"):
        submit_ranking(a, RankingPayload(order=[[i] for i in ids[:-1]]))
    with pytest.raises(SubmissionError, match="criterion"):
        submit_ranking(a, RankingPayload(order=order_of(task), criteria_orders={"funny": order_of(task)}))
    with pytest.raises(SubmissionError, match="flags"):
        submit_ranking(a, RankingPayload(order=order_of(task), flags=["<script>"]))
    # Nothing was stored by the refused attempts; a tie is fine.
    ranking, created = submit_ranking(a, RankingPayload(order=[[ids[0], ids[1]], [ids[2]], [ids[3]]]))
    assert created and ranking.order[0] == sorted([ids[0], ids[1]])


def test_skipped_task_is_not_offered_again(project, rater, make_task):
    t1 = make_task(project, priority=1)
    t2 = make_task(project, priority=0)
    a = next_assignment(project, rater)
    assert a.task_id == t1.pk
    release(a, "flag:unsafe")
    assert next_assignment(project, rater).task_id == t2.pk


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_threads_never_over_assign(project, make_user, make_task):
    if connection.vendor != "postgresql":
        pytest.skip("row locks with SKIP LOCKED need PostgreSQL")
    project.overlap = 3
    project.save()
    tasks = [make_task(project, priority=p % 3) for p in range(5)]
    raters = [make_user(f"c{i}") for i in range(20)]
    for r in raters:
        Membership.objects.create(project=project, user=r)

    def lease(user):
        a = next_assignment(project, user)
        return user.pk, a.task_id if a else None

    results, errors = all_at_once(lease, raters)
    assert errors == []
    per_task = Counter(task_id for _, task_id in results if task_id)
    # 5 tasks × overlap 3 = 15 slots for 20 raters: every slot filled once, nobody over.
    assert all(n <= 3 for n in per_task.values()), per_task
    assert sum(per_task.values()) == 15
    assert Assignment.objects.count() == 15
    for task in tasks:
        assert task.assignments.values("rater").distinct().count() == task.assignments.count()


def test_shares_are_counted_only_for_queues_that_hold_work(project, rater, make_task):
    """The rater's per-kind counts feed the re-ask, gold and evaluation shares. They are the costly part of the
    rater's state on a big project (a rater's thousands of leases joined to their tasks), so each is taken only
    when its queue holds an open task; an empty queue needs no share."""
    from annotation.assignment import rater_state

    project.reask_share = 0.25
    project.save(update_fields=["reask_share"])
    for _ in range(2):
        task = make_task(project)
        submit_ranking(next_assignment(project, rater), RankingPayload(order=order_of(task)))
    state = rater_state(project, rater)
    assert (state["any_reasks"], state["total"], state["reasks"]) == (False, 0, 0)  # nothing to share: not counted
    RankingTask.objects.filter(pk=make_task(project).pk).update(origin=task)  # an open re-ask
    state = rater_state(project, rater)
    assert (state["any_reasks"], state["total"], state["reasks"]) == (True, 2, 0)
