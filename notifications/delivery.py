"""Queueing a project's events to its webhooks, and posting one delivery: signed, bounded, retried by the task.

The request (one attempt)::

    POST <webhook url>
    Content-Type: application/json
    User-Agent: Verdict-Webhooks/1
    X-Verdict-Event: training.finished
    X-Verdict-Delivery: 42                      (the WebhookDelivery id: the same on every retry; deduplicate on it)
    X-Verdict-Timestamp: 1767000000             (Unix seconds when this attempt was signed)
    X-Verdict-Signature: sha256=<hex>           (HMAC-SHA256, key the webhook's secret, of b"<timestamp>." + body)

    {"event": "training.finished", "project_id": 3, "occurred_at": "2026-…Z", "data": {…}}

The timestamp is inside the signed material, so a receiver that checks the signature and refuses a timestamp more
than a few minutes old cannot be fed a replayed request. Each retry is signed afresh (new timestamp, same body).

An attempt succeeds on any 2xx. A network error (refused, reset, timed out), a 5xx or a 429 is tried again, after
VERDICT_WEBHOOK_BACKOFF_S doubled at each retry (a 429's Retry-After when longer, up to an hour), until
VERDICT_WEBHOOK_MAX_ATTEMPTS attempts in all; any other answer (a 4xx, a redirect: none is followed) fails the
delivery at once. Each attempt is recorded on the delivery (``history``); at most 4 KiB of an answer is read.
Delivery is at least once: a worker lost after the POST but before its record sends it again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from notifications.models import PING, Webhook, WebhookDelivery

log = logging.getLogger(__name__)

READ_BYTES = 4096  # of an answer: enough for an error's excerpt; a receiver cannot make a worker read more
MAX_RETRY_AFTER_S = 3600
USER_AGENT = "Verdict-Webhooks/1"


def body_of(payload: dict) -> bytes:
    """The exact bytes sent (and signed): compact JSON, keys sorted, UTF-8."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The X-Verdict-Signature value: ``sha256=`` and the hex HMAC-SHA256 of ``b"<timestamp>." + body``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def enqueue(project_id: int, event: str, data: dict, webhooks=None) -> list[WebhookDelivery]:
    """One pending delivery of `event` per active webhook of the project that subscribes to it (or per webhook of
    `webhooks`), each queued on the workers once the current transaction commits."""
    if webhooks is None:
        webhooks = [w for w in Webhook.objects.filter(project_id=project_id, active=True) if event in w.events]
    if not webhooks:
        return []
    payload = {"event": event, "project_id": project_id,
               "occurred_at": timezone.now().isoformat().replace("+00:00", "Z"), "data": data}
    deliveries = WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(webhook=w, event=event, payload=payload) for w in webhooks])
    ids = [d.pk for d in deliveries]

    def queue() -> None:
        from notifications.tasks import deliver_webhook  # the task module imports this one

        for pk in ids:
            deliver_webhook.delay(pk)

    transaction.on_commit(queue, robust=True)
    return deliveries


def ping(webhook: Webhook) -> WebhookDelivery:
    """A ``ping`` to this webhook, whatever its events and even when inactive: to test the endpoint and its
    signature check."""
    return enqueue(webhook.project_id, PING, {"webhook_id": webhook.pk}, webhooks=[webhook])[0]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not followed: the URL the manager gave is the only one fetched."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


@dataclass
class Answer:
    status: int | None  # the HTTP status, None when there was none (a network error)
    error: str  # '' on a 2xx
    retry_after: float | None = None


def post(url: str, body: bytes, headers: dict, timeout: float) -> Answer:
    """One POST; never raises for what the network or the receiver does."""
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers})
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read(READ_BYTES)
            return Answer(response.status, "")
    except urllib.error.HTTPError as exc:
        try:
            excerpt = exc.read(READ_BYTES).decode("utf-8", "replace")
        except Exception:  # the body could not be read: the status says enough
            excerpt = ""
        finally:
            exc.close()
        return Answer(exc.code, f"HTTP {exc.code} {excerpt}".strip(), _retry_after(exc.headers.get("Retry-After")))
    except Exception as exc:  # URLError, timeouts, resets, TLS, a bad status line: all a network failure
        reason = getattr(exc, "reason", exc)
        return Answer(None, f"{type(exc).__name__}: {reason}")


def _retry_after(value: str | None) -> float | None:
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S) if value else None
    except ValueError:  # an HTTP date: the backoff applies
        return None


def retryable(answer: Answer) -> bool:
    return answer.status is None or answer.status == 429 or answer.status >= 500


def backoff_s(attempts: int) -> float:
    """Delay before the next attempt after `attempts` failed ones: the base, doubled each time."""
    return settings.VERDICT_WEBHOOK_BACKOFF_S * 2 ** (attempts - 1)


def attempt(delivery_id: int) -> float | None:
    """Make the next attempt of a pending delivery and record it. Returns the seconds to wait before the next
    attempt, or None when the delivery is finished (or was already: a redelivered job does nothing)."""
    claimed = WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.PENDING).update(
        attempts=F("attempts") + 1, next_attempt_at=None)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("webhook").get(pk=delivery_id)
    webhook = delivery.webhook
    if not webhook.active and delivery.event != PING:
        _record(delivery, WebhookDelivery.FAILED, Answer(None, "the webhook was deactivated"), 0)
        return None
    body = body_of(delivery.payload)
    timestamp = int(time.time())
    started = time.monotonic()
    answer = post(webhook.url, body, {
        "X-Verdict-Event": delivery.event,
        "X-Verdict-Delivery": str(delivery.pk),
        "X-Verdict-Timestamp": str(timestamp),
        "X-Verdict-Signature": sign(webhook.secret, timestamp, body),
    }, settings.VERDICT_WEBHOOK_TIMEOUT_S)
    ms = round((time.monotonic() - started) * 1000)
    if answer.status is not None and 200 <= answer.status < 300:
        _record(delivery, WebhookDelivery.SUCCEEDED, answer, ms)
        return None
    if retryable(answer) and delivery.attempts < settings.VERDICT_WEBHOOK_MAX_ATTEMPTS:
        wait = max(backoff_s(delivery.attempts), answer.retry_after or 0.0)
        _record(delivery, WebhookDelivery.PENDING, answer, ms, next_at=timezone.now() + timedelta(seconds=wait))
        return wait
    if answer.status is not None and 300 <= answer.status < 400:
        answer.error = f"HTTP {answer.status}: redirects are not followed"
    _record(delivery, WebhookDelivery.FAILED, answer, ms)
    log.warning("webhook delivery %s failed after %s attempt(s): %s", delivery.pk, delivery.attempts, answer.error)
    return None


def _record(delivery: WebhookDelivery, status: str, answer: Answer, ms: int, next_at=None) -> None:
    now = timezone.now()
    error = answer.error[:300]
    delivery.history = [*delivery.history, [now.isoformat(), answer.status, error, ms]][
        -settings.VERDICT_WEBHOOK_MAX_ATTEMPTS:]
    delivery.status, delivery.last_status_code, delivery.last_error = status, answer.status, error
    delivery.next_attempt_at = next_at
    if status == WebhookDelivery.SUCCEEDED:
        delivery.delivered_at = now
    delivery.save(update_fields=["history", "status", "last_status_code", "last_error", "next_attempt_at",
                                 "delivered_at"])
