"""REST API: token auth, membership scoping, import/export for managers, the rater loop, schema."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from annotation.models import Assignment, Membership, Project, Ranking, RankingTask
from tests.conftest import client_for


@pytest.fixture
def outsider(make_user):
    return make_user("outsider")


def jsonl(*records) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def record(i: int, k: int = 4) -> dict:
    return {
        "id": f"q{i}",
        "prompt": f"Question {i}?",
        "completions": [{"text": f"<i>a{j}</i>", "model": f"m{j}"} for j in range(k)],
    }


def order_of(body) -> list[list[int]]:
    return [[c["id"]] for c in body["completions"]]


def test_unauthenticated_requests_are_refused(project):
    assert APIClient().get("/api/projects/").status_code in (401, 403)


def test_projects_are_scoped_to_members_with_progress(project, rater, outsider, make_task):
    make_task(project)
    Project.objects.create(name="Secret", k=2, overlap=1)
    body = client_for(rater).get("/api/projects/").json()
    assert [p["name"] for p in body["results"]] == ["Test project"]
    assert body["results"][0]["tasks_total"] == 1 and body["results"][0]["my_role"] == "rater"
    assert client_for(outsider).get("/api/projects/").json()["results"] == []
    assert client_for(outsider).get(f"/api/projects/{project.pk}/").status_code == 404
    assert client_for(outsider).post(f"/api/projects/{project.pk}/tasks/next/").status_code == 404


def test_staff_see_everything(manager, project):
    Project.objects.create(name="Secret", k=2, overlap=1)
    names = [p["name"] for p in client_for(manager).get("/api/projects/").json()["results"]]
    assert names == ["Secret", "Test project"]


def test_project_creation_by_managers_only(plain_manager, rater, outsider):
    refused = client_for(outsider).post("/api/projects/", {"name": "Mine", "k": 3}, format="json")
    assert refused.status_code == 403
    created = client_for(plain_manager).post("/api/projects/", {"name": "Mine", "k": 3, "overlap": 2}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["my_role"] == "manager" and created.json()["tasks_total"] == 0
    new = Project.objects.get(name="Mine")
    assert Membership.objects.get(project=new, user=plain_manager).role == Membership.MANAGER
    bad = client_for(plain_manager).post("/api/projects/", {"name": "Bad", "k": 12}, format="json")
    assert bad.status_code == 400 and "k" in bad.json()


def test_import_as_ndjson_text_and_multipart(project, plain_manager):
    client = client_for(plain_manager)
    url = f"/api/projects/{project.pk}/import/"
    resp = client.post(url, data=jsonl(record(1), record(2)), content_type="application/x-ndjson")
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body.pop("import_id") > 0 and body == {"prompts": 2, "completions": 8, "tasks": 2, "gold_tasks": 0}
    resp = client.post(url, data=jsonl(record(3)), content_type="text/plain")
    assert resp.status_code == 201
    upload = SimpleUploadedFile("data.jsonl", jsonl(record(4), record(5)).encode(), "application/octet-stream")
    resp = client.post(url, {"file": upload}, format="multipart")
    assert resp.status_code == 201 and resp.json()["tasks"] == 2
    assert RankingTask.objects.filter(project=project).count() == 5


def test_import_errors_come_back_per_line_and_nothing_is_written(project, plain_manager):
    bad = jsonl(record(1)) + "{nope\n" + jsonl({"prompt": "x", "completions": [{"text": "only one"}]})
    resp = client_for(plain_manager).post(
        f"/api/projects/{project.pk}/import/", data=bad, content_type="application/x-ndjson"
    )
    assert resp.status_code == 400
    body = resp.json()
    assert body["error_count"] == 2 and [e["line"] for e in body["errors"]] == [2, 3]
    assert RankingTask.objects.count() == 0
    empty = client_for(plain_manager).post(f"/api/projects/{project.pk}/import/", {}, format="multipart")
    assert empty.status_code == 400


def test_raters_cannot_import_export_or_list_tasks(project, rater):
    client = client_for(rater)
    assert (
        client.post(
            f"/api/projects/{project.pk}/import/", data=jsonl(record(1)), content_type="application/x-ndjson"
        ).status_code
        == 403
    )
    assert client.get(f"/api/projects/{project.pk}/export/?kind=trl").status_code == 403
    assert client.get(f"/api/projects/{project.pk}/tasks/").status_code == 403
    assert RankingTask.objects.count() == 0


def test_rater_loop_next_submit_idempotent_skip(project, rater, plain_manager):
    client_for(plain_manager).post(
        f"/api/projects/{project.pk}/import/", data=jsonl(record(1), record(2)), content_type="application/x-ndjson"
    )
    client = client_for(rater)
    resp = client.post(f"/api/projects/{project.pk}/tasks/next/")
    assert resp.status_code == 200
    body = resp.json()
    assignment = Assignment.objects.get(pk=body["id"])
    # Completions come in this rater's display order, without model names; text is plain (JSON-escaped) string.
    assert [c["id"] for c in body["completions"]] == assignment.display_order
    assert all(set(c) == {"id", "text"} for c in body["completions"])
    assert body["completions"][0]["text"].startswith("<i>a") and body["prompt"].startswith("Question")
    assert body["expires_at"] and body["criteria"] == ["helpful", "harmless", "honest"]
    # Asking again returns the same live lease.
    assert client.post(f"/api/projects/{project.pk}/tasks/next/").json()["id"] == body["id"]

    url = f"/api/assignments/{body['id']}/submit/"
    bad = client.post(url, {"order": [[body["completions"][0]["id"]]]}, format="json")
    assert bad.status_code == 400 and "order" in bad.json()["errors"]
    payload = {"order": order_of(body), "rationale": "first is best", "flags": [], "time_spent_ms": 1234}
    first = client.post(url, payload, format="json")
    assert first.status_code == 201, first.content
    again = client.post(url, payload, format="json")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert Ranking.objects.count() == 1 and first.json()["rater_id"] == rater.pk

    second = client.post(f"/api/projects/{project.pk}/tasks/next/").json()
    assert second["task_id"] != body["task_id"]
    skipped = client.post(f"/api/assignments/{second['id']}/skip/", {"reason": "not my language"}, format="json")
    assert skipped.status_code == 200 and skipped.json()["status"] == "skipped"
    assert client.post(f"/api/assignments/{body['id']}/skip/", {}, format="json").status_code == 409
    assert client.post(f"/api/projects/{project.pk}/tasks/next/").status_code == 204


def test_only_the_assignments_own_rater_can_submit(project, rater, rater2, make_task):
    make_task(project)
    body = client_for(rater).post(f"/api/projects/{project.pk}/tasks/next/").json()
    other = client_for(rater2)
    assert other.get(f"/api/assignments/{body['id']}/").status_code == 404
    assert (
        other.post(f"/api/assignments/{body['id']}/submit/", {"order": order_of(body)}, format="json").status_code
        == 404
    )
    assert Ranking.objects.count() == 0


def test_raters_see_only_their_own_rankings_and_managers_all(project, rater, rater2, plain_manager, make_task):
    make_task(project)
    for user in (rater, rater2):
        c = client_for(user)
        body = c.post(f"/api/projects/{project.pk}/tasks/next/").json()
        assert (
            c.post(f"/api/assignments/{body['id']}/submit/", {"order": order_of(body)}, format="json").status_code
            == 201
        )
    mine = client_for(rater).get(f"/api/rankings/?project={project.pk}").json()["results"]
    assert [r["rater_id"] for r in mine] == [rater.pk]
    theirs = Ranking.objects.get(rater=rater2)
    assert client_for(rater).get(f"/api/rankings/{theirs.pk}/").status_code == 404
    everyone = client_for(plain_manager).get(f"/api/rankings/?project={project.pk}").json()["results"]
    assert sorted(r["rater_id"] for r in everyone) == sorted([rater.pk, rater2.pk])
    assert client_for(plain_manager).get("/api/rankings/?project=abc").status_code == 400


def test_manager_lists_tasks_and_changes_priority(project, plain_manager, rater, make_task):
    low = make_task(project, priority=0)
    high = make_task(project, priority=5)
    client = client_for(plain_manager)
    body = client.get(f"/api/projects/{project.pk}/tasks/?limit=1").json()
    assert body["count"] == 2 and [t["id"] for t in body["results"]] == [high.pk]
    assert set(body["results"][0]) >= {"status", "priority", "submitted_count", "is_gold"}
    resp = client.patch(
        f"/api/projects/{project.pk}/tasks/{low.pk}/", {"priority": 9, "status": "complete"}, format="json"
    )
    assert resp.status_code == 200
    low.refresh_from_db()
    assert low.priority == 9 and low.status == RankingTask.OPEN  # status is read-only
    assert (
        client_for(rater)
        .patch(f"/api/projects/{project.pk}/tasks/{low.pk}/", {"priority": 1}, format="json")
        .status_code
        == 403
    )
    assert client_for(rater).post(f"/api/projects/{project.pk}/tasks/next/").json()["task_id"] == low.pk


def test_manager_export_streams_ndjson(project, plain_manager, rater, make_task):
    make_task(project, texts=["A", "B", "C", "D"])
    c = client_for(rater)
    body = c.post(f"/api/projects/{project.pk}/tasks/next/").json()
    ids = sorted(x["id"] for x in body["completions"])
    c.post(f"/api/assignments/{body['id']}/submit/", {"order": [[ids[0], ids[1]], [ids[2]], [ids[3]]]}, format="json")
    client = client_for(plain_manager)
    resp = client.get(f"/api/projects/{project.pk}/export/?kind=trl")
    assert resp.status_code == 200 and resp.streaming
    assert resp["Content-Type"].startswith("application/x-ndjson")
    pairs = [json.loads(line) for line in b"".join(resp.streaming_content).decode().splitlines()]
    assert len(pairs) == 5
    marked = client.get(f"/api/projects/{project.pk}/export/?kind=trl&ties=mark", HTTP_ACCEPT="application/x-ndjson")
    assert len(b"".join(marked.streaming_content).splitlines()) == 6
    rankings = client.get(f"/api/projects/{project.pk}/export/?kind=rankings")
    rows = [json.loads(line) for line in b"".join(rankings.streaming_content).decode().splitlines()]
    assert len(rows) == 1 and rows[0]["rater_id"] == rater.pk and len(rows[0]["completions"]) == 4
    assert client.get(f"/api/projects/{project.pk}/export/?kind=csv").status_code == 400
    assert client.get(f"/api/projects/{project.pk}/export/?ties=maybe").status_code == 400


def test_openapi_schema_lists_the_endpoints(rater):
    resp = client_for(rater).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert resp.status_code == 200
    paths = json.loads(resp.content)["paths"]
    for path in [
        "/api/projects/",
        "/api/projects/{id}/",
        "/api/projects/{id}/import/",
        "/api/projects/{id}/export/",
        "/api/projects/{project_pk}/tasks/",
        "/api/projects/{project_pk}/tasks/{id}/",
        "/api/projects/{project_pk}/tasks/next/",
        "/api/assignments/{id}/submit/",
        "/api/assignments/{id}/skip/",
        "/api/rankings/",
    ]:
        assert path in paths, path


def test_annotation_api_schema_has_no_warnings():
    """Generate the schema for this app's routes alone and fail on any drf-spectacular warning or error."""
    from django.urls import include, path
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    SchemaGenerator(patterns=[path("api/", include("annotation.api_urls"))]).get_schema(request=None, public=True)
    assert not GENERATOR_STATS._warn_cache and not GENERATOR_STATS._error_cache, (
        dict(GENERATOR_STATS._warn_cache),
        dict(GENERATOR_STATS._error_cache),
    )


def test_oversized_import_body_is_refused_before_parsing(project, plain_manager, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    body = jsonl(record(1), record(2))
    assert len(body) > 100
    resp = client_for(plain_manager).post(
        f"/api/projects/{project.pk}/import/", data=body, content_type="application/x-ndjson"
    )
    assert resp.status_code == 413 and RankingTask.objects.count() == 0


def test_oversized_multipart_upload_is_refused_too(project, plain_manager, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    body = jsonl(record(1), record(2))
    upload = SimpleUploadedFile("big.jsonl", body.encode() if isinstance(body, str) else body)
    resp = client_for(plain_manager).post(f"/api/projects/{project.pk}/import/", {"file": upload}, format="multipart")
    assert resp.status_code == 413 and "split the file" in resp.json()["detail"]
    assert RankingTask.objects.count() == 0
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000_000
    small = SimpleUploadedFile("ok.jsonl", body.encode() if isinstance(body, str) else body)
    ok = client_for(plain_manager).post(f"/api/projects/{project.pk}/import/", {"file": small}, format="multipart")
    assert ok.status_code == 201 and RankingTask.objects.count() == 2
