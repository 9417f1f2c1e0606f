"""The reward server (serving.server) behind POST /score/: batched answers over Redis, pinned or active versions,
a promotion swapped in with no failed call, and the gateway's modes (serving.gateway)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from django.conf import settings

from rewardmodel import registry, scoring
from rewardmodel.models import RewardModelVersion
from serving.server import RewardServer
from tests.test_rewardmodel_api import trained  # noqa: F401 - an active tiny version

pytestmark = [pytest.mark.usefixtures("model_root"),
              pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (the server is reached over Redis)"),
              pytest.mark.django_db(transaction=True)]


@pytest.fixture
def server():
    from serving.server import REQUESTS_KEY, redis_client

    redis_client().delete(REQUESTS_KEY)
    s = RewardServer(max_items=256, max_wait_s=0.02, resolve_every_s=0.2, name="test-server")
    thread = threading.Thread(target=s.serve_forever, kwargs={"idle_timeout_s": 1}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    from serving.server import servers_alive

    while not servers_alive():
        assert time.monotonic() < deadline, "the server never announced itself"
        time.sleep(0.05)
    yield s
    s.stop()
    thread.join(timeout=10)


def url(project) -> str:
    return f"/api/projects/{project.pk}/score/"


def test_the_web_process_routes_scoring_to_the_server(trained, project, rater, token_client, server):  # noqa: F811
    body = {"prompt": "q?", "completions": ["a good answer", "bad", "an answer"]}
    response = token_client(rater).post(url(project), body, format="json")
    assert response.status_code == 200, response.content
    got = response.json()
    assert got["served_by"] == "server:test-server" and got["version"] == trained.number
    expected = scoring.score(trained, ["q?"] * 3, body["completions"])
    assert np.allclose(got["scores"], expected, atol=1e-5)
    assert server.stats.requests == 1


class SlowLoadingServer(RewardServer):
    """A first request that loads a large model on a busy CPU: the answer comes after redis-py's 5 s read default."""

    def _load(self, version) -> None:
        time.sleep(6.5)
        super()._load(version)


def test_an_answer_slower_than_five_seconds_still_arrives(trained, project, rater, token_client):  # noqa: F811
    from serving.server import REQUESTS_KEY, redis_client, servers_alive

    redis_client().delete(REQUESTS_KEY)
    slow = SlowLoadingServer(max_wait_s=0.01, name="slow-server")
    thread = threading.Thread(target=slow.serve_forever, kwargs={"idle_timeout_s": 1}, daemon=True)
    thread.start()
    try:
        while not servers_alive():
            time.sleep(0.05)
        response = token_client(rater).post(url(project), {"prompt": "q?", "completions": ["a", "b"]}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["served_by"] == "server:slow-server"
    finally:
        slow.stop()
        thread.join(timeout=10)


def test_concurrent_calls_are_batched(trained, project, rater, token_client, server):  # noqa: F811
    results, errors = [], []

    def call(i):
        from django.db import connection

        try:
            r = token_client(rater).post(url(project), {"prompt": f"q{i}?", "completions": ["x", "y"]},
                                         format="json")
            results.append((r.status_code, r.json().get("served_by")))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == [(200, "server:test-server")] * 12, results
    assert server.stats.requests == 12 and server.stats.batches < 12


def test_a_pinned_version_and_an_unknown_one(trained, project, rater, token_client, server):  # noqa: F811
    client = token_client(rater)
    assert client.post(url(project), {"prompt": "q", "completions": ["a"], "version": trained.number},
                       format="json").json()["version"] == trained.number
    missing = client.post(url(project), {"prompt": "q", "completions": ["a"], "version": 99}, format="json")
    assert missing.status_code == 404 and "no ready version 99" in missing.json()["detail"]


def test_a_promotion_fails_no_call(trained, project, rater, make_task, rater2, tiny, token_client,  # noqa: F811
                                   server):
    """Calls keep coming while a new version is promoted: every one is answered, by the old version until the new
    one is loaded, then by the new one."""
    from rewardmodel.training import run_training
    from tests.test_rewardmodel_training import FAST

    client = token_client(rater)
    answers, stop = [], threading.Event()

    def keep_calling():
        from django.db import connection

        try:
            while not stop.is_set():
                r = client.post(url(project), {"prompt": "q?", "completions": ["a", "b"]}, format="json")
                answers.append((r.status_code, r.json().get("version")))
        finally:
            connection.close()

    caller = threading.Thread(target=keep_calling)
    caller.start()
    try:
        time.sleep(0.5)
        new = run_training(project.pk, task_id="swap-2", backbone=str(tiny), overrides={**FAST, "seed": 9})
        version = RewardModelVersion.objects.get(pk=new["version_id"])
        if not version.is_active:
            registry.promote(version, by="test")
        deadline = time.monotonic() + 30
        while not answers or answers[-1][1] != version.number:
            assert time.monotonic() < deadline, "the new version was never swapped in"
            time.sleep(0.1)
    finally:
        stop.set()
        caller.join(timeout=30)
    assert answers and all(code == 200 for code, _ in answers), [a for a in answers if a[0] != 200][:3]
    numbers = [n for _, n in answers]
    assert numbers[0] == trained.number and numbers[-1] == version.number
    assert numbers == sorted(numbers)  # once the new version answers, the old one never does again
    assert server.stats.swaps == 1


def test_required_mode_without_a_server_is_a_503(trained, project, rater, token_client, settings):  # noqa: F811
    settings.VERDICT_REWARD_SERVER = "required"
    response = token_client(rater).post(url(project), {"prompt": "q", "completions": ["a"]}, format="json")
    assert response.status_code == 503 and response["Retry-After"]
    settings.VERDICT_REWARD_SERVER = "auto"
    fallback = token_client(rater).post(url(project), {"prompt": "q", "completions": ["a"]}, format="json")
    assert fallback.json()["served_by"] == "in-process"
