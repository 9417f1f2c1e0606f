"""The retrain policy and the training runs through the API: what beat will do, and which worker trained what."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from rewardmodel.models import RetrainPolicy, TrainingRun
from rewardmodel.training import run_training
from tests.test_rewardmodel_training import FAST, add_rankings

pytestmark = pytest.mark.usefixtures("model_root")


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_policy_is_created_with_defaults_and_updated(project, manager):
    client = client_for(manager)
    got = client.get(f"/api/projects/{project.pk}/retrain-policy/")
    assert got.status_code == 200 and got.json()["enabled"] is True
    assert got.json()["min_new_rankings"] == RetrainPolicy._meta.get_field("min_new_rankings").default
    changed = client.patch(f"/api/projects/{project.pk}/retrain-policy/",
                           {"min_new_rankings": 4, "hyperparameters": {"epochs": 2}}, format="json")
    assert changed.status_code == 200, changed.content
    policy = RetrainPolicy.objects.get(project=project)
    assert (policy.min_new_rankings, policy.hyperparameters) == (4, {"epochs": 2})


@pytest.mark.parametrize("body, field", [
    ({"hyperparameters": {"epochz": 2}}, "hyperparameters"),
    ({"hyperparameters": [1]}, "hyperparameters"),
    ({"promotion_margin": 3}, "promotion_margin"),
    ({"training_source": "vibes"}, "training_source"),
])
def test_bad_policy_names_the_field_and_writes_nothing(project, manager, body, field):
    client = client_for(manager)
    client.patch(f"/api/projects/{project.pk}/retrain-policy/", {"min_new_rankings": 7}, format="json")
    response = client.patch(f"/api/projects/{project.pk}/retrain-policy/", {**body, "min_new_rankings": 9},
                            format="json")
    assert response.status_code == 400 and field in response.json(), response.content
    assert RetrainPolicy.objects.get(project=project).min_new_rankings == 7


def test_backbone_path_cannot_be_set_through_the_api(project, manager):
    response = client_for(manager).patch(f"/api/projects/{project.pk}/retrain-policy/",
                                         {"backbone_path": "/etc"}, format="json")
    assert response.status_code == 200
    assert RetrainPolicy.objects.get(project=project).backbone_path == ""


def test_runs_list_shows_progress_and_the_worker(project, make_task, rater, rater2, tiny, lenient_gate):
    add_rankings(project, make_task, [rater, rater2], 8)
    run_training(project.pk, task_id="runs-api-1", backbone=str(tiny), overrides=FAST, worker="gpu-a@box")
    [run] = client_for(rater).get(f"/api/projects/{project.pk}/training-runs/").json()["results"]
    stored = TrainingRun.objects.get(celery_task_id="runs-api-1")
    assert run["status"] == "succeeded" and run["attempts"] == 1 and run["progress"] == 1.0
    assert run["version_number"] == stored.version.number
    assert run["worker"] == stored.worker == "gpu-a@box"


@pytest.mark.django_db
def test_beat_intervals_come_from_settings_on_first_migrate(settings):
    """A deployment sets VERDICT_RETRAIN_CHECK_EVERY / VERDICT_REQUEUE_LOST_EVERY before its first migrate."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from rewardmodel.apps import REQUEUE_NAME, RETRAIN_CHECK_NAME, ensure_retrain_schedule

    PeriodicTask.objects.filter(name__in=[RETRAIN_CHECK_NAME, REQUEUE_NAME]).delete()
    settings.VERDICT_RETRAIN_CHECK_EVERY, settings.VERDICT_REQUEUE_LOST_EVERY = 15, 180
    ensure_retrain_schedule()
    check = PeriodicTask.objects.get(name=RETRAIN_CHECK_NAME).interval
    requeue = PeriodicTask.objects.get(name=REQUEUE_NAME).interval
    assert (check.every, check.period) == (15, IntervalSchedule.SECONDS)
    assert (requeue.every, requeue.period) == (3, IntervalSchedule.MINUTES)
    settings.VERDICT_RETRAIN_CHECK_EVERY = 600
    ensure_retrain_schedule()  # an existing entry is the admin's to change: left alone
    assert PeriodicTask.objects.get(name=RETRAIN_CHECK_NAME).interval == check


@pytest.mark.django_db(transaction=True)  # the job is sent when the request's transaction commits
def test_train_now_through_the_api(project, rater, make_user, settings):
    """Runs could only be started from the shell (issue 24): a manager queues one, follows it, cannot stack two."""
    import redis

    from annotation.models import Membership

    manager = make_user("lead")  # a manager who is not staff
    Membership.objects.create(project=project, user=manager, role=Membership.MANAGER)
    url = f"/api/projects/{project.pk}/training-runs/"
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL) if settings.CELERY_BROKER_URL.startswith("redis") \
        else None
    if broker is not None:
        broker.delete("gpu")
    bad = client_for(manager).post(url, {"hyperparameters": {"epochs": 1000000}}, format="json")
    assert bad.status_code == 400 and "hyperparameters" in bad.json() and not TrainingRun.objects.exists()
    staff_only = client_for(manager).post(url, {"hyperparameters": {"device": "cpu"}}, format="json")
    assert staff_only.status_code == 400 and "staff" in str(staff_only.json())
    assert client_for(rater).post(url, {}, format="json").status_code == 403
    started = client_for(manager).post(url, {"hyperparameters": {"epochs": 2}}, format="json")
    assert started.status_code == 202 and started.json()["status"] == "queued"
    run = TrainingRun.objects.get(pk=started.json()["id"])
    assert (run.trigger, run.overrides) == ("manual", {"epochs": 2})
    if broker is not None:
        assert broker.llen("gpu") == 1  # on the gpu workers' queue
        broker.delete("gpu")
    again = client_for(manager).post(url, {}, format="json")
    assert again.status_code == 409 and f"run {run.pk}" in again.json()["detail"]
    assert client_for(manager).get(url).json()["results"][0]["id"] == run.pk
