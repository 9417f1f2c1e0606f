"""One rule for whose address a request comes from (config.client_address), for the login lock-out and every API
throttle. On main, with VERDICT_PROXY_COUNT=0 (the default), DRF took X-Forwarded-For as the address: 40 bad tokens
with 40 forged addresses gave 40 × 401, no 429, and 40 Redis keys."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from config.client_address import client_address


def bad_token_limit(settings) -> int:
    return int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["bad_token"].split("/")[0])


def test_forged_forwarded_for_does_not_dodge_the_bad_token_throttle(db, settings):
    limit = bad_token_limit(settings)
    codes = []
    for i in range(limit + 20):
        guesser = APIClient(HTTP_X_FORWARDED_FOR=f"10.9.{i // 250}.{i % 250}")
        guesser.credentials(HTTP_AUTHORIZATION=f"Token {i:040d}")
        codes.append(guesser.get("/api/projects/").status_code)
    assert codes[:limit] == [401] * limit and set(codes[limit:]) == {429}


def test_forged_forwarded_for_does_not_dodge_the_login_lock_out(db, make_user, settings):
    make_user("victim", password="right-password-1")
    codes = [Client(HTTP_X_FORWARDED_FOR=f"10.0.0.{i}").post(
        "/accounts/login/", {"username": "victim", "password": "wrong"}).status_code
        for i in range(settings.AXES_FAILURE_LIMIT + 1)]
    assert codes[-1] == 429


@pytest.mark.parametrize("proxies, forwarded, expected", [
    (0, "203.0.113.9", "192.0.2.1"),  # no proxy: the header is the client's own claim
    (1, "203.0.113.9", "203.0.113.9"),  # one proxy appended what it saw
    (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # the client's forged entry is left of it
    (2, "6.6.6.6, 203.0.113.9, 10.0.0.2", "203.0.113.9"),  # the outermost of two proxies
    (2, "203.0.113.9", "192.0.2.1"),  # fewer entries than proxies: it did not come through them
    (1, "not-an-address", "192.0.2.1"),
])
def test_the_rule(settings, proxies, forwarded, expected):
    settings.VERDICT_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected


def test_behind_a_proxy_each_real_client_has_its_own_bucket(db, settings):
    settings.VERDICT_PROXY_COUNT = 1
    limit = bad_token_limit(settings)
    for i in range(limit):
        client = APIClient(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
        client.credentials(HTTP_AUTHORIZATION=f"Token {i:040d}")
        assert client.get("/api/projects/").status_code == 401
    same = APIClient(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"{i}.{i}.{i}.{i}, 203.0.113.9")
    same.credentials(HTTP_AUTHORIZATION="Token " + "f" * 40)
    assert same.get("/api/projects/").status_code == 429  # a new forged left entry changes nothing
    other = APIClient(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")
    other.credentials(HTTP_AUTHORIZATION="Token " + "f" * 40)
    assert other.get("/api/projects/").status_code == 401
