"""The rater loop is a fixed number of queries, whatever the project's size and the other raters' leases."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.assignment import next_assignment
from annotation.models import Assignment, Membership, RankingTask


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def _queries(ctx: CaptureQueriesContext) -> list[str]:
    """What reached the database, without the savepoints a test's wrapping transaction adds."""
    return [q["sql"] for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"]]


@pytest.fixture
def busy_project(project, make_task, make_user):
    """A project whose first tasks are full of other raters' live leases, with more open tasks behind them."""
    project.overlap = 2
    project.save()
    tasks = [make_task(project, priority=10 - i) for i in range(8)]
    for i in range(6):
        other = make_user(f"busy{i}")
        Membership.objects.create(project=project, user=other)
        next_assignment(project, other)
    return project, tasks


@pytest.mark.django_db
def test_next_is_a_constant_number_of_queries_past_tasks_full_of_leases(busy_project, rater):
    project, tasks = busy_project
    client = _client(rater)
    with CaptureQueriesContext(connection) as ctx:
        response = client.post(f"/api/projects/{project.pk}/tasks/next/")
    assert response.status_code == 200, response.content
    assert response.json()["task_id"] == tasks[3].pk  # the first three are full of live leases
    # token, project + role, the rater's state (live lease id, pause, shares, which queues hold anything), the fresh
    # queue (the re-ask queue is empty: not asked), the locked task with its prompt and slot recount, its
    # completions, the lease's upsert.
    assert len(_queries(ctx)) == 7, "\n".join(_queries(ctx))


@pytest.mark.django_db
def test_next_for_a_rater_holding_a_lease_is_five_queries(project, make_task, rater):
    make_task(project)
    client = _client(rater)
    first = client.post(f"/api/projects/{project.pk}/tasks/next/").json()
    with CaptureQueriesContext(connection) as ctx:
        again = client.post(f"/api/projects/{project.pk}/tasks/next/").json()
    assert again == first
    # token, project, the rater's state (which names the live lease), the lease, its completions
    assert len(_queries(ctx)) == 5, "\n".join(_queries(ctx))


@pytest.mark.django_db
def test_submit_is_a_constant_number_of_queries(project, make_task, rater):
    make_task(project)
    client = _client(rater)
    lease = client.post(f"/api/projects/{project.pk}/tasks/next/").json()
    order = [[c["id"]] for c in lease["completions"]]
    with CaptureQueriesContext(connection) as ctx:
        response = client.post(f"/api/assignments/{lease['id']}/submit/", {"order": order}, format="json")
    assert response.status_code == 201, response.content
    # token, the locked read (of this rater's assignment only: 404 for others), completion ids, the ranking's
    # insert, the assignment's update, the rater's training weight (quality), the task's update.
    assert len(_queries(ctx)) == 7, "\n".join(_queries(ctx))
    assert Assignment.objects.get(pk=lease["id"]).status == Assignment.SUBMITTED
    assert RankingTask.objects.get(pk=lease["task_id"]).submitted_count == 1
