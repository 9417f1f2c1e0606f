"""Abuse controls: login lock-out (django-axes) and API throttles (Django REST framework), each answering 429 with
Retry-After.

* Logins (rater login and admin login): after ``AXES_FAILURE_LIMIT`` wrong passwords for one username from one IP
  address, that pair is locked out for ``AXES_COOLOFF_TIME`` (``lockout_response`` below).
* API tokens: unknown tokens are counted per IP address (``BadTokenThrottle``); past the rate, even a 401 becomes a
  429, so tokens cannot be guessed at speed.  Valid tokens are never slowed by this.
* Authenticated API calls: ``user`` rate per user; the rater loop (next task, submit, skip) has its own ``rater``
  rate, generous enough for a fast rater (one submit every few seconds uses a fraction of it).

Rates are settings (``VERDICT_THROTTLE_*`` in the environment); see the README's Security section.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.http import HttpResponse
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle

from config.client_address import client_address


def lockout_response(request, credentials, *args, **kwargs) -> HttpResponse:
    """django-axes' answer to a locked-out login: 429 with Retry-After, plain text (escaped by construction)."""
    cool_off = settings.AXES_COOLOFF_TIME
    seconds = math.ceil(cool_off.total_seconds())
    response = HttpResponse(
        f"Too many failed logins for this account from your address. Try again in {math.ceil(seconds / 60)} "
        "minute(s), or ask a project manager to reset your password.",
        status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(seconds)
    return response


class ByClientAddress:
    """Throttles count anonymous callers by config.client_address, the same rule as the login lock-out (DRF's own
    get_ident trusts X-Forwarded-For whenever NUM_PROXIES is unset)."""

    def get_ident(self, request) -> str:
        return client_address(request)


class UserThrottle(ByClientAddress, UserRateThrottle):
    """The default `user` rate: per user, or per client address for anonymous calls."""


class RaterLoopThrottle(UserThrottle):
    """Per-user rate for the rater loop (next task, submit, skip)."""

    scope = "rater"


class BadTokenThrottle(ByClientAddress, SimpleRateThrottle):
    """Failed token authentications per client IP address."""

    scope = "bad_token"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class ThrottledTokenAuthentication(TokenAuthentication):
    """TokenAuthentication that counts unknown tokens per IP address and answers 429 past the bad_token rate."""

    def authenticate(self, request):
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            throttle = BadTokenThrottle()
            if not throttle.allow_request(request, None):
                raise Throttled(wait=throttle.wait(), detail="Too many invalid API tokens from your address.") from None
            raise
