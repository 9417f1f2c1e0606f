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


def test_constants_are_written_into_the_statement_so_a_generic_plan_can_use_partial_indexes(project, rater):
    """The rater's state asks "any open re-asks?" (annotation.assignment), which a partial index answers at once. With
    'open' passed as a parameter, the generic plan PostgreSQL switches to after five runs cannot match the index's
    predicate and scanned the whole queue (17 ms instead of 0.4 ms at 50,000 tasks)."""
    from django.db import connection

    from annotation.assignment import _RATER_STATE

    if connection.vendor != "postgresql":
        pytest.skip("plans and partial indexes: PostgreSQL's")

    sql, params = _RATER_STATE.sql(True, project_id=project.pk, rater_id=rater.pk, now=timezone.now())
    assert "'open'" in sql and all(isinstance(p, (int, datetime.datetime)) for p in params)
    numbered, n = [], 0
    for piece in sql.split("%s"):
        numbered.append(piece if not numbered else f"${n}{piece}")
        n += 1
    literals = ", ".join(f"'{p.isoformat()}'::timestamptz" if isinstance(p, datetime.datetime) else str(p)
                         for p in params)
    with connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_generic_plan")
        try:
            cursor.execute(f"PREPARE rater_state AS {''.join(numbered).replace('%%', '%')}")
            cursor.execute(f"EXPLAIN EXECUTE rater_state({literals})")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("DEALLOCATE rater_state")
            cursor.execute("RESET plan_cache_mode")
    assert "task_reask_queue_idx" in plan and "task_gold_queue_idx" in plan, plan
