"""The project's run controls in the admin: "Train now", "Run a selection round" and "Refresh quality" as buttons
(POST with CSRF, managers only) and as changelist actions, landing on a page whose live panels poll the API."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from active_learning.models import SelectionRound
from quality.models import QualityReport
from rewardmodel.models import TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def engineer(make_user):
    return make_user("engineer", is_staff=True, is_superuser=True)


def run_url(project, kind: str) -> str:
    return f"/admin/annotation/project/{project.pk}/runs/{kind}/"


def test_each_button_starts_its_job_once(project, engineer, client, django_capture_on_commit_callbacks):
    client.force_login(engineer)
    change = client.get(f"/admin/annotation/project/{project.pk}/change/").content.decode()
    for kind in ("train", "round", "quality"):
        assert f'formaction="{run_url(project, kind)}"' in change
    with django_capture_on_commit_callbacks() as queued:
        for kind in ("train", "round", "quality"):
            response = client.post(run_url(project, kind), {"strategy": "random", "batch_size": "3"})
            assert response.status_code == 302 and response["Location"].endswith(f"/{project.pk}/runs/")
    assert len(queued) == 3
    assert TrainingRun.objects.get(project=project).status == TrainingRun.QUEUED
    rnd = SelectionRound.objects.get(project=project)
    assert (rnd.strategy, rnd.batch_size, rnd.status) == ("random", 3, SelectionRound.QUEUED)
    assert QualityReport.objects.get(project=project).stage == QualityReport.QUEUED_STAGE
    # A second click while they are queued starts nothing, and says why.
    for kind in ("train", "round", "quality"):
        page = client.post(run_url(project, kind), follow=True).content.decode()
        assert "nothing started" in page
    assert TrainingRun.objects.count() == 1 and SelectionRound.objects.count() == 1

    page = client.get(f"/admin/annotation/project/{project.pk}/runs/").content.decode()
    assert "quality/job_progress.js" in page and "<script>" not in page  # the CSP allows no inline script
    for poll in (f"/api/projects/{project.pk}/training-runs/{TrainingRun.objects.get().pk}/",
                 f"/api/projects/{project.pk}/active-learning/rounds/{rnd.pk}/",
                 f"/api/projects/{project.pk}/quality/refresh/"):
        assert f'data-poll-url="{poll}"' in page
        assert client.get(poll).status_code == 200  # the admin's session reads what the panel polls


def test_bad_round_input_starts_nothing(project, engineer, client):
    client.force_login(engineer)
    for form in ({"batch_size": "lots"}, {"batch_size": "0"}, {"strategy": "best"}):
        page = client.post(run_url(project, "round"), form, follow=True).content.decode()
        assert "nothing started" in page or "whole number" in page
    assert not SelectionRound.objects.exists()


def test_get_is_not_allowed_and_csrf_is_checked(project, engineer):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(engineer)
    assert strict.get(run_url(project, "train")).status_code == 405
    assert strict.post(run_url(project, "train")).status_code == 403  # no CSRF token
    assert strict.post(run_url(project, "nope")).status_code == 403
    assert not TrainingRun.objects.exists()


def test_raters_and_staff_without_permission_are_refused(project, rater, make_user, client):
    client.force_login(rater)  # not staff: the admin sends them to its login page
    response = client.post(run_url(project, "train"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(make_user("clerk", is_staff=True))  # staff with no permission on projects
    assert client.post(run_url(project, "quality")).status_code == 403
    assert client.get(f"/admin/annotation/project/{project.pk}/runs/").status_code == 403
    assert not TrainingRun.objects.exists() and not QualityReport.objects.exists()


def test_staff_with_view_permission_may_start_runs(project, make_user, client, django_capture_on_commit_callbacks):
    viewer = make_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_project"))
    client.force_login(viewer)
    with django_capture_on_commit_callbacks():
        assert client.post(run_url(project, "quality")).status_code == 302
    assert QualityReport.objects.get(project=project).stage == QualityReport.QUEUED_STAGE


def test_changelist_actions(project, engineer, client, django_capture_on_commit_callbacks):
    client.force_login(engineer)
    with django_capture_on_commit_callbacks() as queued:
        response = client.post("/admin/annotation/project/", {"action": "train_now", "_selected_action": [project.pk]})
    assert response.status_code == 302 and response["Location"].endswith(f"/{project.pk}/runs/")
    assert TrainingRun.objects.filter(project=project).count() == 1 and len(queued) == 1
    with django_capture_on_commit_callbacks():
        client.post("/admin/annotation/project/", {"action": "refresh_quality", "_selected_action": [project.pk]})
        client.post("/admin/annotation/project/", {"action": "run_selection_round",
                                                   "_selected_action": [project.pk]})
    assert QualityReport.objects.filter(project=project).exists() and SelectionRound.objects.count() == 1


def test_quality_page_button_queues_once_and_shows_the_panel(project, engineer, client,
                                                            django_capture_on_commit_callbacks):
    client.force_login(engineer)
    url = f"/admin/annotation/project/{project.pk}/quality/"
    with django_capture_on_commit_callbacks() as queued:
        page = client.post(url, {"action": "refresh"}, follow=True).content.decode()
    assert len(queued) == 1 and 'id="job-quality"' in page and 'data-status="queued"' in page
    page = client.post(url, {"action": "refresh"}, follow=True).content.decode()
    assert "Not refreshed" in page
