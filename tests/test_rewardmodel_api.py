"""Scoring API, admin pages and plots, the management command, the beat schedule and the Celery entry points."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient

from rewardmodel import scoring
from rewardmodel.apps import RETRAIN_CHECK_NAME
from rewardmodel.models import RetrainPolicy, RewardModelVersion, TrainingLock, TrainingRun
from rewardmodel.tasks import check_retrain_schedules, train_reward_model
from tests.test_rewardmodel_training import FAST, add_rankings

pytestmark = pytest.mark.usefixtures("model_root")  # conftest: a model store of its own per test


@pytest.fixture
def trained(project, make_task, rater, rater2, tiny, lenient_gate):
    add_rankings(project, make_task, [rater, rater2], 8)
    result = train_reward_model.apply(args=(project.pk,), kwargs={"backbone": str(tiny), "overrides": FAST},
                                      task_id="celery-task-1").get()
    return RewardModelVersion.objects.get(pk=result["version_id"])


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_celery_task_trains_with_its_task_id(trained):
    assert trained.is_active
    assert TrainingRun.objects.get(celery_task_id="celery-task-1").version == trained
    assert train_reward_model.acks_late and train_reward_model.reject_on_worker_lost
    assert train_reward_model.time_limit and train_reward_model.soft_time_limit


def test_score_api(trained, project, rater):
    url = f"/api/projects/{project.pk}/score/"
    resp = client_for(rater).post(url, {"prompt": "q?", "completions": ["<b>x</b>", "y"]}, format="json")
    assert resp.status_code == 200, resp.content
    assert resp.json()["version"] == 1 and len(resp.json()["scores"]) == 2
    expected = scoring.score(trained, ["q?", "q?"], ["<b>x</b>", "y"])
    assert resp.json()["scores"] == pytest.approx(expected.tolist(), abs=1e-5)
    items = {"items": [{"prompt": "q?", "completion": "y"}]}
    assert client_for(rater).post(url, items, format="json").json()["scores"] == pytest.approx([expected[1]], abs=1e-5)
    assert client_for(rater).post(url, {"prompt": "q"}, format="json").status_code == 400
    assert client_for(rater).post(url, {"items": []}, format="json").status_code == 400


def test_score_api_scoping(trained, project, make_user):
    url = f"/api/projects/{project.pk}/score/"
    outsider = make_user("outsider")
    assert client_for(outsider).post(url, {"prompt": "q", "completions": ["a"]}, format="json").status_code == 404
    staff = make_user("boss", is_staff=True)
    assert client_for(staff).post(url, {"prompt": "q", "completions": ["a"]}, format="json").status_code == 200
    assert APIClient().post(url, {"prompt": "q", "completions": ["a"]}, format="json").status_code in (401, 403)


def test_score_api_without_active_model(project, rater):
    resp = client_for(rater).post(f"/api/projects/{project.pk}/score/", {"prompt": "q", "completions": ["a"]},
                                  format="json")
    assert resp.status_code == 404


def test_admin_pages_plots_and_actions(trained, project, manager, client):
    manager.is_superuser = True
    manager.save()
    client.force_login(manager)
    assert client.get("/admin/rewardmodel/rewardmodelversion/").status_code == 200
    page = client.get(f"/admin/rewardmodel/rewardmodelversion/{trained.pk}/change/")
    assert page.status_code == 200 and b"held-out accuracy" in page.content
    for kind in ("loss", "reliability", "length"):
        png = client.get(f"/admin/rewardmodel/rewardmodelversion/{trained.pk}/plot/{kind}.png")
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert client.get(f"/admin/rewardmodel/rewardmodelversion/{trained.pk}/plot/evil.png").status_code == 404
    assert client.get("/admin/rewardmodel/trainingrun/").status_code == 200
    resp = client.post("/admin/rewardmodel/rewardmodelversion/",
                       {"action": "rollback_projects", "_selected_action": [trained.pk]}, follow=True)
    assert b"no earlier promoted version" in resp.content
    trained.refresh_from_db()
    assert trained.is_active


def test_command_sync_and_errors(project, make_task, rater, tiny, capsys, lenient_gate):
    add_rankings(project, make_task, [rater], 6)
    call_command("train_reward_model", "--project", str(project.pk), "--sync", "--backbone", str(tiny),
                 "--epochs", "1", *[f"--set={k}={v}" for k, v in FAST.items()])
    printed = capsys.readouterr()
    assert '"promoted": true' in printed.out
    # Progress while it trains (it printed nothing for 19 minutes): the last line is the last step.
    assert "step" in printed.err and "loss" in printed.err and "left" in printed.err
    with pytest.raises(CommandError):
        call_command("train_reward_model", "--project", "no such project", "--sync")
    with pytest.raises(CommandError):
        call_command("train_reward_model", "--project", str(project.pk), "--sync", "--set", "bogus=1",
                     "--backbone", str(tiny))


def test_command_enqueues_chain_with_active_learning(project):
    with mock.patch("celery.canvas._chain.apply_async") as apply_async:
        call_command("train_reward_model", "--project", project.name)
    assert apply_async.called
    run = TrainingRun.objects.get(project=project)
    assert run.status == TrainingRun.QUEUED and run.trigger == "manual"


def test_beat_schedule_and_retrain_check(project, make_task, rater, django_capture_on_commit_callbacks):
    assert PeriodicTask.objects.filter(name=RETRAIN_CHECK_NAME, task="rewardmodel.tasks.check_retrain_schedules"
                                       ).exists()
    RetrainPolicy.objects.create(project=project, min_new_rankings=3)
    add_rankings(project, make_task, [rater], 2)
    with mock.patch("rewardmodel.launch.launch_training") as launch:
        assert check_retrain_schedules() == []
        add_rankings(project, make_task, [rater], 1, seed=2)
        assert check_retrain_schedules() == [project.pk]
        launch.assert_called_once_with(project, trigger="schedule")
    # A training marked running whose worker died (its project lock expired) is put back on the queue, to resume from
    # its checkpoint, instead of a second training being launched beside its redelivery (seen in make deploy-test)...
    TrainingRun.objects.filter(project=project).update(status=TrainingRun.SUCCEEDED)
    dead = TrainingRun.objects.create(project=project, status=TrainingRun.RUNNING, celery_task_id="dead-worker",
                                      started_at=timezone.now() - timedelta(hours=1))
    TrainingLock.objects.create(project=project, owner="dead-worker", expires_at=timezone.now() - timedelta(seconds=1))
    with mock.patch("rewardmodel.launch.launch_training") as launch, \
            mock.patch("rewardmodel.launch.send") as send, django_capture_on_commit_callbacks(execute=True):
        assert check_retrain_schedules() == []
        launch.assert_not_called()
    dead.refresh_from_db()
    assert dead.status == TrainingRun.QUEUED and "requeued" in dead.message
    send.assert_called_once()
    # ...a live one (its lock heartbeating) keeps the project busy too...
    dead.status, dead.started_at = TrainingRun.RUNNING, timezone.now() - timedelta(hours=1)
    dead.save()
    TrainingLock.objects.filter(project=project).update(expires_at=timezone.now() + timedelta(minutes=5))
    with mock.patch("rewardmodel.launch.launch_training") as launch:
        assert check_retrain_schedules() == []
    # ...and once it has ended, the new rankings are trained on.
    TrainingRun.objects.filter(pk=dead.pk).update(status=TrainingRun.SUCCEEDED)
    with mock.patch("rewardmodel.launch.launch_training") as launch:
        assert check_retrain_schedules() == [project.pk]
