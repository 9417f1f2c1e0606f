"""Refresh quality now (quality.launch): 202 with the report queued, 409 while one is queued or running, followed by
GET …/quality/refresh/ to done; managers only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from quality.models import QualityReport
from quality.tasks import refresh_quality, refresh_stale_projects
from tests.quality.test_api import lead, refreshed  # noqa: F401  (fixtures)
from tests.test_api import client_for

pytestmark = pytest.mark.django_db


def test_refresh_now_is_queued_then_followed_to_done(refreshed, lead, django_capture_on_commit_callbacks):  # noqa: F811
    api, url = client_for(lead), f"/api/projects/{refreshed.pk}/quality/refresh/"
    assert api.get(url).json()["status"] == "done"
    with django_capture_on_commit_callbacks() as queued:
        response = api.post(url)
    assert response.status_code == 202 and response.json()["status"] == "queued"
    assert response.json()["progress"] == 0.0 and len(queued) == 1
    # Until a worker takes it, the report says queued (never the previous refresh's done), and a second click waits.
    assert api.get(url).json()["status"] == "queued"
    again = api.post(url)
    assert again.status_code == 409 and "queued" in again.json()["detail"]
    # Beat's scheduled refresh does not start a second one beside it; the claimed job does run.
    assert refresh_quality(refreshed.pk)["skipped"]
    done = refresh_quality(refreshed.pk, claimed=True)
    assert done["rankings"] == 8
    body = api.get(url).json()
    assert body["status"] == "done" and body["progress"] == 1.0 and body["stage"] == "done"
    assert api.post(url).status_code == 202  # done: another may start


def test_a_running_refresh_refuses_another_until_it_is_stale(refreshed, lead):  # noqa: F811
    url = f"/api/projects/{refreshed.pk}/quality/refresh/"
    QualityReport.objects.filter(pk=refreshed.pk).update(status=QualityReport.RUNNING, stage="fitting consensus",
                                                          started_at=timezone.now(), progress=0.4)
    busy = client_for(lead).post(url)
    assert busy.status_code == 409 and "running (fitting consensus)" in busy.json()["detail"]
    body = client_for(lead).get(url).json()
    assert body["status"] == "running" and body["progress"] == 0.4 and body["stage"] == "fitting consensus"
    QualityReport.objects.filter(pk=refreshed.pk).update(started_at=timezone.now() - timedelta(hours=1))
    assert client_for(lead).post(url).status_code == 202  # its worker was lost: a new refresh may start


def test_only_managers_refresh_or_follow(refreshed, rater, make_user):  # noqa: F811
    url = f"/api/projects/{refreshed.pk}/quality/refresh/"
    for method in ("get", "post"):
        assert getattr(client_for(rater), method)(url).status_code == 403
        assert getattr(client_for(make_user(f"outsider-{method}")), method)(url).status_code == 404
    report = QualityReport.objects.get(pk=refreshed.pk)
    assert report.status == QualityReport.DONE and report.stage == "done"  # nothing was claimed


def test_never_refreshed_project_starts_one(project, manager):
    api, url = client_for(manager), f"/api/projects/{project.pk}/quality/refresh/"
    assert api.get(url).json()["status"] == "never"
    assert api.post(url).json()["status"] == "queued"
    assert refresh_stale_projects() == []  # no rankings: beat has nothing to add
    refresh_quality(project.pk, claimed=True)
    assert api.get(url).json()["status"] == "done"
