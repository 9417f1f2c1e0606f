"""Webhook deliveries against a real HTTP receiver: signed bodies, each event's payload from the lower apps'
signals, retries with backoff on 5xx/429/network errors, none on other 4xx or redirects, each attempt recorded."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications import delivery
from notifications.models import Webhook, WebhookDelivery
from tests.notifications.conftest import verify

pytestmark = pytest.mark.django_db

JSONL = "".join(json.dumps({"id": f"p{i}", "prompt": f"Question {i}?",
                            "completions": [{"text": f"answer {i}.{j}"} for j in range(4)]}) + "\n"
                for i in range(3))


def test_import_finished_is_posted_signed_with_its_figures(project, plain_manager, token_client, receiver, eager):
    client = token_client(plain_manager)
    created = client.post(f"/api/projects/{project.pk}/webhooks/", {"url": receiver.url,
                                                                    "events": ["import.finished"]}, format="json")
    assert created.status_code == 201, created.content
    secret = created.json()["secret"]
    with eager():
        response = client.post(f"/api/projects/{project.pk}/import/", data=JSONL.encode(),
                               content_type="application/x-ndjson")
    assert response.status_code == 201, response.content
    [got] = receiver.requests
    assert got.path == "/hook" and got.headers["Content-Type"] == "application/json"
    assert got.headers["X-Verdict-Event"] == "import.finished"
    assert verify(secret, got.headers, got.body)
    assert not verify(secret, got.headers, got.body.replace(b"succeeded", b"failed"))  # the body is signed
    assert not verify("whsec_other", got.headers, got.body)
    stale = {**got.headers, "X-Verdict-Timestamp": str(int(got.headers["X-Verdict-Timestamp"]) - 3600)}
    assert not verify(secret, stale, got.body)  # the timestamp is signed: an old request replayed is refused
    payload = got.json
    assert payload["event"] == "import.finished" and payload["project_id"] == project.pk
    assert payload["occurred_at"].endswith("Z")
    data = payload["data"]
    assert data["status"] == "succeeded" and data["tasks"] == 3 and data["error_count"] == 0
    assert data["import_id"] == response.json()["import_id"]
    row = WebhookDelivery.objects.get()
    assert got.headers["X-Verdict-Delivery"] == str(row.pk)
    assert row.status == "succeeded" and row.attempts == 1 and row.last_status_code == 200
    assert row.delivered_at is not None and len(row.history) == 1


def test_a_failed_import_is_announced_too(project, plain_manager, token_client, receiver, hook, eager):
    with eager():
        response = token_client(plain_manager).post(f"/api/projects/{project.pk}/import/", data=b"{oops\n",
                                                    content_type="application/x-ndjson")
    assert response.status_code == 400
    [got] = receiver.of("import.finished")
    assert got.json["data"]["status"] == "failed" and got.json["data"]["error_count"] >= 1
    assert verify(hook.secret, got.headers, got.body)


def test_training_finished_when_a_run_gives_up(project, receiver, hook, eager, settings):
    """The cheap way to finish a training: a job whose worker was lost more times than allowed (no model loaded)."""
    from rewardmodel.models import TrainingRun
    from rewardmodel.training import run_training

    run = TrainingRun.objects.create(project=project, celery_task_id="job-1", attempts=settings.VERDICT_MAX_DELIVERIES)
    with eager():
        out = run_training(project.pk, task_id="job-1")
    assert "gave_up" in out
    [got] = receiver.of("training.finished")
    data = got.json["data"]
    assert data["training_run_id"] == run.pk and data["status"] == "failed" and data["promoted"] is False
    assert data["message"].startswith("gave up") and data["version_id"] is None
    assert verify(hook.secret, got.headers, got.body)


def test_training_finished_with_a_version(project, receiver, hook, eager):
    from rewardmodel.models import RewardModelVersion, TrainingRun
    from rewardmodel.training import _finish

    version = RewardModelVersion.objects.create(project=project, number=1, status=RewardModelVersion.READY,
                                                is_active=True, path="p/v1", base_model="tiny", job_key="k1",
                                                metrics={"accuracy": 0.71, "heldout_pairs": 40})
    run = TrainingRun.objects.create(project=project, celery_task_id="job-2", status=TrainingRun.RUNNING)
    with eager():
        _finish(run, TrainingRun.SUCCEEDED, version, "promoted: better than nothing")
    data = receiver.of("training.finished")[0].json["data"]
    assert data == {**data, "status": "succeeded", "version_id": version.pk, "version_number": 1, "promoted": True,
                    "accuracy": 0.71, "heldout_pairs": 40}


def test_model_promoted_on_a_rollback(project, receiver, hook, eager):
    from rewardmodel.models import RewardModelVersion
    from rewardmodel.registry import rollback

    now = timezone.now()
    old = RewardModelVersion.objects.create(project=project, number=1, status="ready", path="p/v1", base_model="m",
                                            job_key="a", promoted_at=now - timedelta(hours=1))
    RewardModelVersion.objects.create(project=project, number=2, status="ready", is_active=True, path="p/v2",
                                      base_model="m", job_key="b", promoted_at=now)
    with eager():
        rollback(project)
    data = receiver.of("model.promoted")[0].json["data"]
    assert data["version_id"] == old.pk and data["version_number"] == 1 and data["how"] == "rollback"


def test_round_done_when_a_round_ends(project, receiver, hook, eager, settings):
    from active_learning.models import SelectionRound
    from active_learning.pipeline import execute_round

    rnd = SelectionRound.objects.create(project=project, strategy="random", batch_size=2,
                                        attempts=settings.VERDICT_MAX_DELIVERIES)
    with eager():
        execute_round(rnd)
    data = receiver.of("round.done")[0].json["data"]
    assert data["round_id"] == rnd.pk and data["status"] == "failed" and data["error"].startswith("gave up")


def test_rater_flagged_when_paused(project, rater, manager, receiver, hook, eager):
    from quality import pausing

    with eager():
        assert pausing.pause(project, rater.pk, "too fast", by=manager)
        pausing.unpause(project, rater.pk, "", by=manager)  # an un-pause is no event
    [got] = receiver.of("rater.flagged")
    assert got.json["data"] == {"rater_id": rater.pk, "paused": True, "automatic": False, "reason": "too fast"}


def test_only_subscribed_active_webhooks_of_the_project_get_an_event(project, receiver, eager, make_user):
    from annotation.models import Project

    Webhook.objects.create(project=project, url=receiver.url, events=["training.finished"])
    Webhook.objects.create(project=project, url=receiver.url, events=["rater.flagged"], active=False)
    other = Project.objects.create(name="Other", k=2)
    Webhook.objects.create(project=other, url=receiver.url, events=["rater.flagged"])
    from quality import pausing

    with eager():
        pausing.pause(project, project.memberships.filter(role="rater").first().user_id, "why", by=None)
    assert receiver.requests == [] and not WebhookDelivery.objects.exists()


def ping(hook, eager) -> WebhookDelivery:
    with eager():
        sent = delivery.ping(hook)
    sent.refresh_from_db()
    return sent


@pytest.mark.parametrize("first", [500, 503, 429])
def test_a_5xx_or_429_is_retried_then_succeeds(hook, receiver, eager, first):
    receiver.script = [first, first, 200]
    sent = ping(hook, eager)
    assert sent.status == "succeeded" and sent.attempts == 3 and sent.last_status_code == 200
    assert [h[1] for h in sent.history] == [first, first, 200]
    assert "nope" in sent.history[0][2] and sent.last_error == ""
    ids = {r.headers["X-Verdict-Delivery"] for r in receiver.requests}
    assert len(receiver.requests) == 3 and ids == {str(sent.pk)}  # one delivery id across its retries
    assert len({r.body for r in receiver.requests}) == 1  # the same body, signed afresh each time
    assert all(verify(hook.secret, r.headers, r.body) for r in receiver.requests)


def test_a_400_is_not_retried(hook, receiver, eager):
    receiver.script = [400]
    sent = ping(hook, eager)
    assert sent.status == "failed" and sent.attempts == 1 and sent.last_status_code == 400
    assert len(receiver.requests) == 1 and sent.last_error.startswith("HTTP 400")


def test_a_redirect_is_not_followed(hook, receiver, eager):
    receiver.script = [302]
    sent = ping(hook, eager)
    assert sent.status == "failed" and sent.attempts == 1 and "not followed" in sent.last_error
    assert len(receiver.requests) == 1


def test_attempts_stop_at_the_cap(hook, receiver, eager, settings):
    settings.VERDICT_WEBHOOK_MAX_ATTEMPTS = 3
    receiver.script = [502] * 10
    sent = ping(hook, eager)
    assert sent.status == "failed" and sent.attempts == 3 and len(receiver.requests) == 3
    assert sent.next_attempt_at is None and len(sent.history) == 3


def test_a_network_error_is_retried_and_recorded(project, eager, settings):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.VERDICT_WEBHOOK_MAX_ATTEMPTS = 2
    hook = Webhook.objects.create(project=project, url=f"http://127.0.0.1:{port}/x", events=["round.done"])
    sent = ping(hook, eager)
    assert sent.status == "failed" and sent.attempts == 2 and sent.last_status_code is None
    assert "refused" in sent.last_error.lower() or "URLError" in sent.last_error


def test_backoff_doubles_and_the_next_attempt_is_recorded(hook, receiver, settings):
    settings.VERDICT_WEBHOOK_BACKOFF_S = 30
    receiver.script = [500]
    [row] = delivery.enqueue(hook.project_id, "round.done", {"round_id": 1})  # not queued: no commit in this test
    assert delivery.attempt(row.pk) == 30
    row.refresh_from_db()
    assert row.status == "pending" and row.attempts == 1 and row.next_attempt_at > timezone.now()
    assert [delivery.backoff_s(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert delivery.attempt(row.pk) is None  # the receiver answers 200 now
    row.refresh_from_db()
    assert row.status == "succeeded" and row.attempts == 2
    assert delivery.attempt(row.pk) is None and len(receiver.requests) == 2  # a redelivered job does nothing


def test_a_429_retry_after_is_honoured_within_bounds():
    assert delivery._retry_after("120") == 120 and delivery._retry_after("999999") == delivery.MAX_RETRY_AFTER_S
    assert delivery._retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None


def test_a_deactivated_webhook_gets_no_pending_delivery(hook, receiver):
    [row] = delivery.enqueue(hook.project_id, "round.done", {"round_id": 1})
    Webhook.objects.filter(pk=hook.pk).update(active=False)
    assert delivery.attempt(row.pk) is None
    row.refresh_from_db()
    assert row.status == "failed" and "deactivated" in row.last_error and receiver.requests == []


redis_only = pytest.mark.skipif(not __import__("django.conf").conf.settings.REDIS_URL,
                                reason="needs REDIS_URL (a real Redis broker)")


@redis_only
@pytest.mark.timeout(90)
@pytest.mark.django_db(transaction=True)
def test_a_ping_through_a_real_worker(project, plain_manager, token_client, receiver):
    """The API queues the job on commit; a real Celery worker over Redis posts it, signed."""
    import time

    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    client = token_client(plain_manager)
    created = client.post(f"/api/projects/{project.pk}/webhooks/", {"url": receiver.url, "events": ["round.done"]},
                          format="json").json()
    with start_worker(app, queues=["default"], perform_ping_check=False, concurrency=1, pool="solo",
                      shutdown_timeout=10):
        answer = client.post(f"/api/projects/{project.pk}/webhooks/{created['id']}/test/")
        assert answer.status_code == 202 and answer.json()["status"] == "pending"
        deadline = time.monotonic() + 30
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        while WebhookDelivery.objects.get().status == "pending" and time.monotonic() < deadline:
            time.sleep(0.05)
    [got] = receiver.requests
    assert got.json["event"] == "ping" and got.json["data"] == {"webhook_id": created["id"]}
    assert verify(created["secret"], got.headers, got.body)
    assert WebhookDelivery.objects.get().status == "succeeded"


def test_deliveries_go_to_the_default_queue():
    from config.celery import app

    assert app.amqp.router.route({}, "notifications.tasks.deliver_webhook")["queue"].name == "default"
