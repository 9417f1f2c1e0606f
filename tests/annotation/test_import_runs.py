"""Imports too big for a web request become a Celery job (annotation.import_runs, annotation.tasks): 202 with the
run's id, progress at GET …/imports/, the same all-or-nothing write, once per upload whatever the broker redelivers.

On main, a 1,000,000-task gzip through the API ran inside the request until gunicorn killed the worker at 120 s
(the client got gunicorn's HTML 500, the run said "SystemExit(1)")."""

from __future__ import annotations

import gzip
import json
import time

import pytest
from django.conf import settings

from annotation.import_runs import run_queued
from annotation.models import ImportRun, ImportUpload, RankingTask


def lines(n: int, bad_at: int | None = None, prefix: str = "r") -> bytes:
    rows = [{"id": f"{prefix}{i}", "prompt": f"Question {i}?",
             "completions": [{"text": f"answer {i}.{j}"} for j in range(4)]} for i in range(n)]
    text = "".join(("{oops" if i == bad_at else json.dumps(r)) + "\n" for i, r in enumerate(rows))
    return gzip.compress(text.encode())


def queue(client, project, data: bytes):
    response = client.post(f"/api/projects/{project.pk}/import/", data=data, content_type="application/x-ndjson")
    assert response.status_code == 202, response.content
    return response.json()


@pytest.fixture
def small_sync(settings):
    settings.VERDICT_IMPORT_SYNC_ROWS = 50


redis_only = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (a real Redis broker)")


@redis_only
@pytest.mark.timeout(120)
@pytest.mark.django_db(transaction=True)
def test_a_big_upload_is_queued_then_imported_by_a_real_worker(project, plain_manager, token_client, small_sync):
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    client = token_client(plain_manager)
    with start_worker(app, queues=["default"], perform_ping_check=False, concurrency=1, pool="solo",
                      shutdown_timeout=10):
        body = queue(client, project, lines(400))
        assert body["status"] == "queued" and body["rows_total"] == 400
        deadline, seen = time.monotonic() + 60, set()
        while True:
            run = client.get(f"/api/projects/{project.pk}/imports/").json()["results"][0]
            seen.add(run["status"])
            if run["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert run["id"] == body["import_id"] and run["status"] == "succeeded", run
    assert run["summary"]["tasks"] == 400 and run["rows_done"] == 400 and run["attempts"] == 1
    assert RankingTask.objects.filter(project=project).count() == 400
    assert not ImportUpload.objects.exists()  # the bytes are gone once done


@pytest.mark.django_db(transaction=True)
def test_a_redelivered_job_imports_once(project, plain_manager, token_client, small_sync):
    body = queue(token_client(plain_manager), project, lines(120))
    assert run_queued(body["import_id"]) == ImportRun.SUCCEEDED
    assert run_queued(body["import_id"]) == ImportRun.SUCCEEDED  # the broker delivers it again: nothing happens
    assert RankingTask.objects.filter(project=project).count() == 120


@pytest.mark.django_db(transaction=True)
def test_a_job_whose_worker_was_lost_starts_over_and_gives_up_at_the_cap(project, plain_manager, token_client,
                                                                        small_sync):
    body = queue(token_client(plain_manager), project, lines(120))
    # A worker killed mid-import: the run says running, nothing was committed, the upload is still there.
    ImportRun.objects.filter(pk=body["import_id"]).update(status=ImportRun.RUNNING, attempts=1)
    assert run_queued(body["import_id"]) == ImportRun.SUCCEEDED
    assert ImportRun.objects.get(pk=body["import_id"]).attempts == 2
    again = queue(token_client(plain_manager), project, lines(120, prefix="s"))
    ImportRun.objects.filter(pk=again["import_id"]).update(status=ImportRun.RUNNING,
                                                           attempts=settings.VERDICT_MAX_DELIVERIES)
    assert run_queued(again["import_id"]) == ImportRun.FAILED
    assert "gave up" in ImportRun.objects.get(pk=again["import_id"]).errors[0][1]
    assert RankingTask.objects.filter(project=project).count() == 120


@pytest.mark.django_db(transaction=True)
def test_a_queued_import_with_a_bad_line_writes_nothing(project, plain_manager, token_client, small_sync):
    body = queue(token_client(plain_manager), project, lines(120, bad_at=77))
    assert run_queued(body["import_id"]) == ImportRun.FAILED
    run = ImportRun.objects.get(pk=body["import_id"])
    assert run.error_count == 1 and run.errors[0][0] == 78
    assert not RankingTask.objects.filter(project=project).exists() and not ImportUpload.objects.exists()


def test_small_uploads_still_import_in_the_request(project, plain_manager, token_client):
    response = token_client(plain_manager).post(f"/api/projects/{project.pk}/import/", data=lines(20),
                                                content_type="application/x-ndjson")
    assert response.status_code == 201 and response.json()["tasks"] == 20
