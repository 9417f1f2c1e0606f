"""config.prepared: a queryset compiled once runs with new values exactly as the ORM would run it."""

from __future__ import annotations

import datetime

import pytest
from django.db.models import Q
from django.utils import timezone

from annotation.models import Assignment, RankingTask
from config.prepared import PreparedQuery

pytestmark = pytest.mark.django_db


def _open_tasks(shape, project_id: int, since):
    queue = RankingTask.objects.filter(project_id=project_id, created_at__gte=since)
    if shape == "gold":
        queue = queue.filter(is_gold=True)
    return queue.order_by("id").values("id", "is_gold")


def test_values_are_swapped_in_and_each_shape_is_compiled_once(project, make_task):
    tasks = [make_task(project) for _ in range(3)]
    RankingTask.objects.filter(pk=tasks[1].pk).update(is_gold=True)
    prepared = PreparedQuery(_open_tasks, {"project_id": int, "since": datetime.datetime})
    long_ago = timezone.now() - datetime.timedelta(days=1)
    for shape in ("all", "gold"):
        expected = list(_open_tasks(shape, project.pk, long_ago))
        assert prepared.dicts(shape, project_id=project.pk, since=long_ago) == expected
        assert prepared.dicts(shape, project_id=project.pk + 10_000, since=long_ago) == []
        assert prepared.dicts(shape, project_id=project.pk, since=timezone.now() + datetime.timedelta(1)) == []
    assert len(prepared._compiled) == 2 and [r["id"] for r in prepared.dicts("gold", project_id=project.pk,
                                                                           since=long_ago)] == [tasks[1].pk]


def test_a_value_the_orm_rewrites_is_refused_at_compile_time(project):
    def rewritten(shape, rater_id: int):  # the id only decides a branch: it never reaches the SQL as given
        return Assignment.objects.filter(Q(rater_id=1) if rater_id else Q(rater_id=2)).values("id")

    with pytest.raises(ValueError, match="rater_id"):
        PreparedQuery(rewritten, {"rater_id": int}).dicts("x", rater_id=5)
    assert PreparedQuery(rewritten, {"rater_id": int}, optional=frozenset({"rater_id"})).dicts("x", rater_id=5) == []


def test_only_ints_and_datetimes_can_be_prepared(project):
    with pytest.raises(TypeError, match="str"):
        PreparedQuery(_open_tasks, {"project_id": str}).dicts("all", project_id="1")
