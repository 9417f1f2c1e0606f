"""Abuse controls (config/abuse.py): login lock-out on both login pages, throttled bad tokens, and a rater-loop rate
that real raters never meet while a runaway client does, each answering 429 with Retry-After."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from annotation.models import Membership, Ranking


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_repeated_wrong_passwords_lock_out_that_user_from_that_address(db, make_user, settings, url):
    make_user("victim", password="right-password-1", is_staff=True)
    make_user("bystander", password="right-password-2", is_staff=True)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post(url, {"username": "victim", "password": "wrong"}).status_code == 200  # the form again
    locked = client.post(url, {"username": "victim", "password": "wrong"})
    assert locked.status_code == 429 and int(locked["Retry-After"]) == settings.AXES_COOLOFF_TIME.total_seconds()
    # Locked out even with the right password, until the cool-off ends...
    assert client.post(url, {"username": "victim", "password": "right-password-1"}).status_code == 429
    # ...while another account from the same address logs in as usual.
    assert client.post(url, {"username": "bystander", "password": "right-password-2"}).status_code == 302


def test_a_successful_login_resets_the_count(db, make_user, settings):
    make_user("forgetful", password="right-password-1")
    client = Client()
    for _ in range(2):
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            client.post("/accounts/login/", {"username": "forgetful", "password": "wrong"})
        assert client.post("/accounts/login/", {"username": "forgetful", "password": "right-password-1"}).status_code \
            == 302
        client.logout()


def test_guessing_tokens_is_throttled_but_real_tokens_still_work(db, rater, settings):
    limit = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["bad_token"].split("/")[0])
    guesser = APIClient()
    for i in range(limit):
        guesser.credentials(HTTP_AUTHORIZATION=f"Token {i:040d}")
        assert guesser.get("/api/projects/").status_code == 401
    guesser.credentials(HTTP_AUTHORIZATION="Token " + "f" * 40)
    throttled = guesser.get("/api/projects/")
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    real = APIClient()
    real.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=rater).key}")
    assert real.get("/api/projects/").status_code == 200


class FakeClock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_fifty_raters_at_a_real_pace_are_never_throttled_and_a_runaway_client_is(
        db, project, make_user, make_task, monkeypatch):
    """50 raters each take and submit a task every 3 s (a fast human pace) for a while: no 429. One client that
    asks for tasks in a tight loop meets the rater-loop rate within a minute."""
    clock = FakeClock()
    monkeypatch.setattr(SimpleRateThrottle, "timer", clock)
    project.overlap = 50
    project.save()
    raters = []
    for n in range(50):
        user = make_user(f"paced-{n}")
        Membership.objects.create(project=project, user=user, role=Membership.RATER)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        raters.append(client)
    for _ in range(4):
        make_task(project)
    codes = []
    for _ in range(4):  # each rater: next + submit every 3 s, all 50 interleaved
        for client in raters:
            task = client.post(f"/api/projects/{project.pk}/tasks/next/")
            codes.append(task.status_code)
            ids = [c["id"] for c in task.json()["completions"]]
            codes.append(client.post(f"/api/assignments/{task.json()['id']}/submit/",
                                     {"order": [[i] for i in ids]}, format="json").status_code)
        clock.now += 3.0
    assert set(codes) == {200, 201} and Ranking.objects.count() == 200

    runaway = raters[0]
    answers = [runaway.post(f"/api/projects/{project.pk}/tasks/next/") for _ in range(130)]
    first_429 = next(i for i, r in enumerate(answers) if r.status_code == 429)
    assert 100 <= first_429 <= 120 and int(answers[first_429]["Retry-After"]) > 0
