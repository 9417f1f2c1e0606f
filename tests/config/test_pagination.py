"""Keyset paging (config.pagination): cursors walk every row once, in order, while rows arrive between pages;
the count only when wanted; deep offsets refused; bad paging input is a 400 naming the parameter; the work per page
does not grow with the list."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.utils.urls import replace_query_param

from annotation.models import RankingTask
from config.pagination import MAX_OFFSET, encode_cursor
from quality.models import TaskConsensus
from tests.conftest import client_for


def walk(client, url: str, params: dict, between=None) -> tuple[list[int], list[dict]]:
    """Every id of the list by following next links; ``between(page)`` runs after each page."""
    ids, pages = [], []
    response = client.get(url, params)
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append(body)
        ids += [row["id"] for row in body["results"]]
        if between:
            between(len(pages))
        if not body["next"]:
            return ids, pages
        response = client.get(body["next"])


def test_cursor_walk_sees_every_row_once_in_order_while_rows_arrive(project, plain_manager, make_task):
    tasks = [make_task(project, priority=i % 3) for i in range(7)]
    api = client_for(plain_manager)
    url = f"/api/projects/{project.pk}/tasks/"
    added = []

    def insert(_page):  # a low-priority task sorts after the walk's position: the walk must still reach it
        added.append(make_task(project, priority=-1))

    ids, pages = walk(api, url, {"limit": 2}, between=insert)
    expected = [t.pk for t in sorted(tasks + added[:-1], key=lambda t: (-t.priority, t.pk))]
    assert ids[:len(expected)] == expected and len(ids) == len(set(ids))
    assert set(ids) >= {t.pk for t in tasks}
    assert pages[0]["count"] == 7 and all("count" not in page for page in pages[1:])
    assert pages[0]["previous"] is None and pages[1]["previous"]

    # previous links walk back page by page to the first one
    body = pages[2]
    back = api.get(body["previous"]).json()
    assert [r["id"] for r in back["results"]] == [r["id"] for r in pages[1]["results"]]
    first = api.get(back["previous"]).json()
    assert [r["id"] for r in first["results"]] == [r["id"] for r in pages[0]["results"]] and first["previous"] is None


def test_count_only_when_wanted(project, plain_manager, make_task):
    for _ in range(3):
        make_task(project)
    api = client_for(plain_manager)
    url = f"/api/projects/{project.pk}/tasks/"
    assert api.get(url, {"limit": 1}).json()["count"] == 3  # a first page keeps it, as clients expect
    with CaptureQueriesContext(connection) as queries:
        body = api.get(url, {"limit": 1, "count": "false"}).json()
    assert "count" not in body and not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)
    following = api.get(body["next"]).json()
    assert "count" not in following
    assert api.get(replace_query_param(body["next"], "count", "true")).json()["count"] == 3


def test_offsets_still_page_and_deep_ones_point_to_the_cursor(project, plain_manager, make_task):
    tasks = sorted((make_task(project, priority=p) for p in (1, 2, 3)), key=lambda t: -t.priority)
    api = client_for(plain_manager)
    url = f"/api/projects/{project.pk}/tasks/"
    body = api.get(url, {"limit": 1, "offset": 1}).json()
    assert [r["id"] for r in body["results"]] == [tasks[1].pk] and body["count"] == 3
    assert [r["id"] for r in api.get(body["next"]).json()["results"]] == [tasks[2].pk]
    assert [r["id"] for r in api.get(body["previous"]).json()["results"]] == [tasks[0].pk]
    deep = api.get(url, {"offset": MAX_OFFSET + 1})
    assert deep.status_code == 400 and "cursor" in str(deep.json()["offset"])


@pytest.mark.parametrize("params, field", [
    ({"cursor": "nonsense"}, "cursor"),
    ({"cursor": encode_cursor([1], False)}, "cursor"),  # the wrong number of values
    ({"cursor": encode_cursor(["high", 1], False)}, "cursor"),  # a priority is a number
    ({"cursor": encode_cursor([0, 2**70], False)}, "cursor"),  # past the id column's range
    ({"cursor": encode_cursor([0, 1], False), "offset": "3"}, "offset"),
    ({"count": "maybe"}, "count"),
    ({"limit": "0"}, "limit"),
    ({"limit": ["1", "2"]}, "limit"),
    ({"offset": "null"}, "offset"),
])
def test_bad_paging_input_is_a_400_naming_it(project, plain_manager, params, field):
    response = client_for(plain_manager).get(f"/api/projects/{project.pk}/tasks/", params)
    assert response.status_code == 400 and field in response.json()


def test_the_list_stays_refused_to_outsiders(project, make_user, make_task):
    make_task(project)
    outsider = client_for(make_user("outsider"))
    assert outsider.get(f"/api/projects/{project.pk}/tasks/", {"cursor": encode_cursor([0, 1], False)}).status_code \
        in (403, 404)
    assert outsider.get("/api/rankings/", {"count": "true"}).json() == {"count": 0, "next": None, "previous": None,
                                                                        "results": []}


def test_queries_per_page_do_not_grow_with_depth(project, plain_manager, make_task, django_assert_max_num_queries):
    for i in range(12):
        make_task(project, priority=i % 2)
    api = client_for(plain_manager)
    url = f"/api/projects/{project.pk}/tasks/"
    body = api.get(url, {"limit": 3, "count": "false"}).json()
    for _ in range(3):
        with django_assert_max_num_queries(3):  # the token, the project check, one page: whatever the depth
            body = api.get(body["next"]).json()
    plan = RankingTask.objects.filter(project=project).order_by("-priority", "id")
    assert "OFFSET" not in str(plan[:3].query).upper()


def test_nulls_in_the_ordering_page_like_postgresql_sorts_them(project, plain_manager, make_task):
    """The browser's least-confident order joins consensus, which a task may lack (NULL: last when ascending)."""
    tasks = [make_task(project) for _ in range(5)]
    for task, confidence in zip(tasks[:3], (0.9, 0.6, 0.6), strict=False):
        TaskConsensus.objects.create(task=task, order=[], confidence=confidence)
    api = client_for(plain_manager)
    ids, _ = walk(api, f"/api/projects/{project.pk}/browse/", {"ordering": "least_confident", "limit": 2})
    assert ids == [tasks[1].pk, tasks[2].pk, tasks[0].pk, tasks[3].pk, tasks[4].pk]


def test_the_schema_documents_cursor_paging(project, plain_manager):
    schema = client_for(plain_manager).get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/projects/{project_pk}/tasks/"]["get"]
    params = {p["name"]: p["schema"] for p in operation["parameters"]}
    assert params["cursor"]["type"] == "string" and params["count"]["enum"] == ["true", "false"]
    assert params["offset"]["maximum"] == MAX_OFFSET and params["limit"]["maximum"] == 1000
    page = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    body = schema["components"]["schemas"][page]
    assert "count" in body["properties"] and "count" not in body["required"]
