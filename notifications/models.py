"""A project's webhooks and each event delivered to them.

A ``Webhook`` is an http(s) URL that the ``default`` workers POST a project's events to, signed with the webhook's
secret (``notifications.delivery``). The secret is generated here and shown once, in the answer to its creation; it
is stored as is because the server signs with it. A ``WebhookDelivery`` is one event for one webhook: its payload
(fixed when the event happened), its status and what its latest attempt got.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from annotation.models import Project

IMPORT_FINISHED = "import.finished"
TRAINING_FINISHED = "training.finished"
MODEL_PROMOTED = "model.promoted"
ROUND_DONE = "round.done"
RATER_FLAGGED = "rater.flagged"
PING = "ping"
EVENTS = [IMPORT_FINISHED, TRAINING_FINISHED, MODEL_PROMOTED, ROUND_DONE, RATER_FLAGGED]  # a webhook subscribes
EVENT_HELP = {
    IMPORT_FINISHED: "an import run succeeded or failed",
    TRAINING_FINISHED: "a reward-model training run succeeded or failed",
    MODEL_PROMOTED: "a reward-model version became the active one (the gate, by hand, or a rollback)",
    ROUND_DONE: "an active-learning round ended (done or failed)",
    RATER_FLAGGED: "a rater was paused (by the quality refresh as unreliable, or by a manager)",
}

# Not a URLField: Django's check refuses single-label hosts (http://ci:8080/hook on a compose network). As a judge's
# base_url: an http(s) scheme, a host (name, IPv4, [IPv6]) with an optional port (no user:password@), then a path of
# printable ASCII (no space, no control character: it goes on the request line as is).
URL_PATTERN = r"^https?://[A-Za-z0-9.\-\[\]:]+(/[!-~]*)?$"
url_validator = RegexValidator(URL_PATTERN, "an http:// or https:// URL, e.g. https://ci.example.com/verdict-hook")


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class Webhook(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="webhooks")
    url = models.CharField(max_length=500, validators=[url_validator],
                           help_text="Where events are POSTed: http:// or https:// only.")
    secret = models.CharField(max_length=100, default=new_secret, editable=False,
                              help_text="HMAC-SHA256 key of the X-Verdict-Signature header; shown once, at creation.")
    events = models.JSONField(default=list, help_text=f"Event names, among: {', '.join(EVENTS)}.")
    active = models.BooleanField(default=True, help_text="An inactive webhook is sent nothing.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "id"]

    def __str__(self) -> str:
        return f"{self.url} ({self.project})"


class WebhookDelivery(models.Model):
    PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
    STATUSES = [(PENDING, "Pending"), (SUCCEEDED, "Succeeded"), (FAILED, "Failed")]

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=32)
    payload = models.JSONField(help_text="The JSON body, as fixed when the event happened.")
    status = models.CharField(max_length=16, choices=STATUSES, default=PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    history = models.JSONField(default=list, blank=True,
                               help_text="Each attempt: [when, HTTP status or null, error or '', milliseconds].")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["webhook", "-created_at"], name="webhook_delivery_recent_idx")]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} to webhook {self.webhook_id} ({self.status})"
