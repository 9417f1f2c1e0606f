"""Run a selection round now (active_learning.launch): 202 with the round, 409 while one is queued or running, 400
for a bad strategy or batch size; progress and stage recorded by the pipeline; managers only."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from active_learning import pipeline
from active_learning.models import SelectionRound
from active_learning.pipeline import execute_round
from annotation.models import Membership
from tests.active_learning.test_pipeline import labelled_project, tiny_backbone  # noqa: F401  (fixtures)


@pytest.fixture
def lead(project, make_user):
    user = make_user("lead")  # a manager by membership, not staff
    Membership.objects.create(project=project, user=user, role=Membership.MANAGER)
    return user


def test_round_now_is_202_then_409_until_it_finishes(labelled_project, tiny_backbone, lead,  # noqa: F811
                                                    django_capture_on_commit_callbacks, monkeypatch):
    project, _ = labelled_project
    client = APIClient()
    client.force_authenticate(lead)
    url = f"/api/projects/{project.pk}/active-learning/rounds/"
    with django_capture_on_commit_callbacks() as queued:
        started = client.post(url, {"strategy": "uncertainty", "batch_size": 2, "seed": 1}, format="json")
    assert started.status_code == 202, started.content
    body = started.json()
    assert body["status"] == "queued" and body["progress"] == 0.0 and body["stage"] == "" and len(queued) == 1
    busy = client.post(url, {}, format="json")
    assert busy.status_code == 409 and f"round {body['id']}" in busy.json()["detail"]
    assert SelectionRound.objects.filter(project=project).count() == 1

    stages = []
    original = pipeline._stage
    monkeypatch.setattr(pipeline, "_stage", lambda rnd, progress, stage: (
        stages.append((progress, stage)), original(rnd, progress, stage)))
    execute_round(SelectionRound.objects.get(pk=body["id"]))  # what the queued job does
    assert [p for p, _ in stages] == sorted(p for p, _ in stages) and len(stages) >= 5
    detail = client.get(f"{url}{body['id']}/").json()
    assert detail["status"] == "done" and detail["progress"] == 1.0 and detail["stage"] == "done"
    assert client.post(url, {"batch_size": 2}, format="json").status_code == 202  # done: another may start


@pytest.mark.parametrize("payload, field", [({"strategy": "best"}, "strategy"), ({"batch_size": 0}, "batch_size"),
                                            ({"batch_size": 5000}, "batch_size"), ({"batch_size": "2"}, "batch_size")])
def test_bad_input_is_400_naming_the_field(project, lead, payload, field):
    client = APIClient()
    client.force_authenticate(lead)
    response = client.post(f"/api/projects/{project.pk}/active-learning/rounds/", payload, format="json")
    assert response.status_code == 400 and field in response.json()
    assert not SelectionRound.objects.exists()


def test_raters_and_outsiders_are_refused(project, rater, make_user):
    url = f"/api/projects/{project.pk}/active-learning/rounds/"
    client = APIClient()
    client.force_authenticate(rater)
    assert client.post(url, {}, format="json").status_code == 403
    client.force_authenticate(make_user("outsider"))
    assert client.post(url, {}, format="json").status_code == 404
    assert not SelectionRound.objects.exists()
