"""Gold injection: served at the project's rate, looking like any task, uncapped by overlap, scored on submission."""

from __future__ import annotations

import pytest

from annotation.assignment import next_assignment
from annotation.models import Membership, RankingTask
from annotation.serializers import AssignmentSerializer
from quality.models import GoldScore
from tests.quality.helpers import best_first, rate_once, worst_first

pytestmark = pytest.mark.django_db


def _gold(make_task, project):
    task = make_task(project)
    ids = sorted(task.completions.values_list("id", flat=True))
    RankingTask.objects.filter(pk=task.pk).update(is_gold=True, gold_order=[[c] for c in ids])
    return RankingTask.objects.get(pk=task.pk)


def test_gold_is_served_at_the_rate_and_scored(project, make_user, make_task):
    project.gold_rate = 0.25
    project.save()
    golds = [_gold(make_task, project) for _ in range(6)]
    for _ in range(18):
        make_task(project)
    rater = project.memberships.filter(role=Membership.RATER).first().user
    served = []
    for _ in range(16):
        a = rate_once(project, rater, best_first)
        served.append(a.task.is_gold)
    # One in four, from the first task on (a rater is due a gold task whenever their share is below the rate).
    assert sum(served) == 4
    assert served[0] and served[4] and served[8] and served[12]
    scores = GoldScore.objects.filter(ranking__rater=rater)
    assert scores.count() == 4 and {s.accuracy for s in scores} == {1.0}
    assert {s.pairs for s in scores} == {6}
    assert RankingTask.objects.filter(pk__in=[g.pk for g in golds], status=RankingTask.OPEN).count() == 6


def test_a_gold_task_is_not_capped_by_overlap_and_scores_mistakes(project, make_user, make_task):
    project.gold_rate = 1.0
    project.overlap = 1
    project.save()
    gold = _gold(make_task, project)
    make_task(project)
    raters = [make_user(f"g{i}") for i in range(3)]
    for r in raters:
        Membership.objects.create(project=project, user=r)
    for r in raters:
        a = rate_once(project, r, worst_first)
        assert a.task_id == gold.pk
    assert gold.rankings.count() == 3  # overlap 1, but every rater gets the gold task once
    assert {s.accuracy for s in GoldScore.objects.all()} == {0.0}


def test_a_gold_lease_looks_like_any_other(project, make_task):
    project.gold_rate = 0.5
    project.save()
    _gold(make_task, project)
    make_task(project)
    rater = project.memberships.filter(role=Membership.RATER).first().user
    first = next_assignment(project, rater)
    assert first.task.is_gold
    gold_view = AssignmentSerializer(first).data
    rate_once(project, rater, best_first)  # submits the gold lease
    other = AssignmentSerializer(next_assignment(project, rater)).data
    assert set(gold_view) == set(other)
    assert "gold" not in str(gold_view).lower()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_raters_get_each_gold_task_at_most_once(project, make_user, make_task):
    """Ten raters lease and submit at once with gold at one in three: nobody sees a gold task twice, every gold
    ranking is scored, and ordinary tasks still respect their overlap."""
    from django.db import connection

    from annotation.models import Ranking
    from tests.conftest import all_at_once

    if connection.vendor != "postgresql":
        pytest.skip("row locks with SKIP LOCKED need PostgreSQL")
    project.gold_rate, project.overlap = 1 / 3, 2
    project.save()
    golds = [_gold(make_task, project) for _ in range(3)]
    for _ in range(10):
        make_task(project)
    raters = [make_user(f"cg{i}") for i in range(10)]
    for r in raters:
        Membership.objects.create(project=project, user=r)

    def rate_until_done(user):
        while rate_once(project, user, best_first) is not None:
            pass

    _, errors = all_at_once(rate_until_done, raters)
    assert errors == []
    for g in golds:
        raters_of_gold = list(Ranking.objects.filter(task=g).values_list("rater_id", flat=True))
        assert len(raters_of_gold) == len(set(raters_of_gold))
    gold_rankings = Ranking.objects.filter(task__is_gold=True)
    assert gold_rankings.count() > 0 and GoldScore.objects.count() == gold_rankings.count()
    for task in RankingTask.objects.filter(project=project, is_gold=False):
        assert task.rankings.count() == 2
