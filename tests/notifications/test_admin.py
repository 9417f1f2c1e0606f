"""The webhook admin: add one (its secret shown once), deliveries inline and read-only with formatted times, the
receiver's answer escaped, and the "send a test ping" action."""

from __future__ import annotations

import pytest
from django.urls import reverse

from notifications.models import Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, make_user):
    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    return client


def test_add_a_webhook_shows_its_secret_once(staff_client, project, receiver):
    response = staff_client.post(reverse("admin:notifications_webhook_add"), {
        "project": project.pk, "url": receiver.url, "events": ["round.done", "import.finished"], "active": "on",
        "deliveries-TOTAL_FORMS": "0", "deliveries-INITIAL_FORMS": "0"}, follow=True)
    hook = Webhook.objects.get()
    assert hook.events == ["round.done", "import.finished"] and hook.created_by.username == "boss"
    assert hook.secret in response.content.decode()
    page = staff_client.get(reverse("admin:notifications_webhook_change", args=[hook.pk])).content.decode()
    assert hook.secret not in page


def test_refused_in_the_admin(staff_client, project):
    response = staff_client.post(reverse("admin:notifications_webhook_add"), {
        "project": project.pk, "url": "gopher://x/", "events": ["nope"], "deliveries-TOTAL_FORMS": "0",
        "deliveries-INITIAL_FORMS": "0"})
    assert response.status_code == 200 and not Webhook.objects.exists()
    assert "http://" in response.content.decode()


def test_deliveries_inline_and_the_ping_action(staff_client, project, receiver, eager):
    hook = Webhook.objects.create(project=project, url=receiver.url, events=["round.done"])
    WebhookDelivery.objects.create(webhook=hook, event="round.done", payload={}, status="failed", attempts=1,
                                   last_status_code=400, last_error="HTTP 400 <script>alert(1)</script>")
    page = staff_client.get(reverse("admin:notifications_webhook_change", args=[hook.pk])).content.decode()
    assert "&lt;script&gt;" in page and "<script>alert(1)" not in page
    assert 'name="deliveries-0-status"' not in page  # read-only rows
    import re

    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", page)
    with eager():
        response = staff_client.post(reverse("admin:notifications_webhook_changelist"),
                                     {"action": "send_test_ping", "_selected_action": [hook.pk]}, follow=True)
    assert "1 ping(s) queued" in response.content.decode()
    assert receiver.requests[0].headers["X-Verdict-Event"] == "ping"
    assert WebhookDelivery.objects.filter(event="ping", status="succeeded").count() == 1
