"""The webhooks API: managers only (a rater gets 403, an outsider 404), the secret shown once, bad input refused
with the field and the reason (nothing written), deliveries listed, a test ping."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from notifications.models import Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db


def urls(project, webhook_id=0):
    base = f"/api/projects/{project.pk}/webhooks/"
    one = f"{base}{webhook_id}/"
    return {"list": base, "one": one, "deliveries": f"{one}deliveries/", "test": f"{one}test/"}


def test_a_manager_adds_lists_reads_pings_and_deletes(project, plain_manager, token_client, receiver, eager):
    client = token_client(plain_manager)
    created = client.post(urls(project)["list"], {"url": receiver.url, "events": ["training.finished",
                                                                                  "import.finished"]},
                          format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["secret"].startswith("whsec_") and len(body["secret"]) > 40
    assert body["events"] == ["import.finished", "training.finished"] and body["active"] is True
    hook = Webhook.objects.get()
    assert hook.secret == body["secret"] and hook.created_by == plain_manager
    u = urls(project, hook.pk)
    listed = client.get(u["list"]).json()["results"]
    assert [w["id"] for w in listed] == [hook.pk] and "secret" not in listed[0]  # shown once, at creation
    assert "secret" not in client.get(u["one"]).json()
    with eager():
        pinged = client.post(u["test"])
    assert pinged.status_code == 202 and pinged.json()["event"] == "ping"
    assert receiver.requests[0].json["data"] == {"webhook_id": hook.pk}
    deliveries = client.get(u["deliveries"]).json()["results"]
    assert deliveries[0]["status"] == "succeeded" and deliveries[0]["attempts"] == 1
    assert client.delete(u["one"]).status_code == 204
    assert not Webhook.objects.exists() and not WebhookDelivery.objects.exists()


def test_refused_users(project, rater, make_user, token_client, receiver):
    hook = Webhook.objects.create(project=project, url=receiver.url, events=["round.done"])
    u = urls(project, hook.pk)
    for user, code in ((rater, 403), (make_user("outsider"), 404)):
        client = token_client(user)
        assert client.get(u["list"]).status_code == code
        assert client.post(u["list"], {"url": receiver.url, "events": ["round.done"]},
                           format="json").status_code == code
        assert client.get(u["one"]).status_code == code
        assert client.delete(u["one"]).status_code == code
        assert client.get(u["deliveries"]).status_code == code
        assert client.post(u["test"]).status_code == code
    assert APIClient().get(u["list"]).status_code in (401, 403)
    assert Webhook.objects.count() == 1 and not WebhookDelivery.objects.exists() and receiver.requests == []


def test_another_projects_webhook_is_not_found(project, plain_manager, token_client, receiver):
    from annotation.models import Project

    other = Project.objects.create(name="Other", k=2)
    hook = Webhook.objects.create(project=other, url=receiver.url, events=["round.done"])
    client = token_client(plain_manager)
    assert client.delete(urls(project, hook.pk)["one"]).status_code == 404
    assert client.post(urls(project, hook.pk)["test"]).status_code == 404
    assert Webhook.objects.filter(pk=hook.pk).exists()


@pytest.mark.parametrize("body, field", [
    ({"url": "ftp://example.com/hook", "events": ["round.done"]}, "url"),
    ({"url": "file:///etc/passwd", "events": ["round.done"]}, "url"),
    ({"url": "javascript:alert(1)", "events": ["round.done"]}, "url"),
    ({"url": "not a url", "events": ["round.done"]}, "url"),
    ({"url": "https://example.com/" + "x" * 500, "events": ["round.done"]}, "url"),
    ({"url": "https://example.com/hook", "events": ["round.finished"]}, "events"),
    ({"url": "https://example.com/hook", "events": ["ping"]}, "events"),
    ({"url": "https://example.com/hook", "events": []}, "events"),
    ({"url": "https://example.com/hook", "events": "round.done"}, "events"),
    ({"url": "https://example.com/hook"}, "events"),
    ({"url": "https://example.com/hook", "events": ["round.done"], "active": "yes"}, "active"),
])
def test_bad_input_is_400_naming_the_field(project, plain_manager, token_client, body, field):
    response = token_client(plain_manager).post(urls(project)["list"], body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Webhook.objects.exists()


def test_a_single_label_host_and_a_port_are_accepted(project, plain_manager, token_client):
    response = token_client(plain_manager).post(urls(project)["list"], {"url": "http://ci:8080/verdict",
                                                                        "events": ["round.done"]}, format="json")
    assert response.status_code == 201, response.content


def test_at_most_20_webhooks_a_project(project, plain_manager, token_client):
    Webhook.objects.bulk_create([Webhook(project=project, url=f"https://e.com/{i}", events=["round.done"])
                                 for i in range(20)])
    response = token_client(plain_manager).post(urls(project)["list"], {"url": "https://e.com/x",
                                                                        "events": ["round.done"]}, format="json")
    assert response.status_code == 409 and "at most 20" in response.json()["detail"]
    assert Webhook.objects.count() == 20
