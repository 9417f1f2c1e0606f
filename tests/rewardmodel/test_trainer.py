"""Training settings have bounds (rewardmodel.trainer.BOUNDS; SECURITY.md), enforced in the API, the admin and the
command; settings that choose hardware or run code on the workers are for staff. On main a non-staff manager's PATCH
stored epochs 1,000,000, num_threads 100,000, max_length 10⁸, batch_rankings 10⁸, grad_accum 10⁹, device "cuda:9",
holdout_fraction 1.0, bucket_chunk 0 and a Jinja chat_template: every scheduled retrain could hold the gpu queue."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from rewardmodel.models import RetrainPolicy
from rewardmodel.trainer import TrainConfig


@pytest.mark.parametrize("option, value", [
    ("epochs", 1_000_000), ("max_length", 10**8), ("batch_rankings", 10**8), ("grad_accum", 10**9),
    ("holdout_fraction", 1.0), ("bucket_chunk", 0), ("lr", 5), ("lora_r", 10_000), ("epochs", "5"),
    ("epochs", True), ("lora_targets", "q_proj; rm -rf /"),
])
def test_out_of_bounds_options_are_refused_by_the_api(project, plain_manager, token_client, option, value):
    url = f"/api/projects/{project.pk}/retrain-policy/"
    response = token_client(plain_manager).patch(url, {"hyperparameters": {option: value}}, format="json")
    assert response.status_code == 400, response.content
    assert option in response.json()["hyperparameters"][0]
    assert not RetrainPolicy.objects.filter(project=project).exclude(hyperparameters={}).exists()


@pytest.mark.parametrize("option, value", [("device", "cuda:9"), ("num_threads", 100_000), ("num_threads", 2),
                                           ("chat_template", "{{ cycler.__init__.__globals__ }}")])
def test_hardware_and_code_options_are_for_staff(project, plain_manager, manager, token_client, option, value):
    url = f"/api/projects/{project.pk}/retrain-policy/"
    refused = token_client(plain_manager).patch(url, {"hyperparameters": {option: value}}, format="json")
    assert refused.status_code == 400 and "set by staff only" in refused.json()["hyperparameters"][0]
    staff = token_client(manager).patch(url, {"hyperparameters": {"device": "cpu", "num_threads": 2}}, format="json")
    assert staff.status_code == 200, staff.content
    # A manager may still change other options of a policy whose staff-set ones they leave as they are.
    kept = token_client(plain_manager).patch(url, {"hyperparameters": {"device": "cpu", "num_threads": 2,
                                                                       "epochs": 2}}, format="json")
    assert kept.status_code == 200, kept.content
    assert RetrainPolicy.objects.get(project=project).hyperparameters == {"device": "cpu", "num_threads": 2,
                                                                          "epochs": 2}


def test_the_admin_form_applies_the_same_bounds(project, make_user, client):
    policy = RetrainPolicy.objects.create(project=project)
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    url = f"/admin/rewardmodel/retrainpolicy/{policy.pk}/change/"
    form = {"project": project.pk, "training_source": "rankings", "judge_rankings": "exclude", "enabled": "on",
            "min_new_rankings": 100,
            "hyperparameters": '{"epochs": 1000000}', "min_train_rankings": 1, "min_heldout_pairs": 1,
            "promotion_margin": 0, "backbone_path": ""}
    response = client.post(url, form)
    assert response.status_code == 200 and "epochs must be from 1 to 20" in response.content.decode()
    assert RetrainPolicy.objects.get(pk=policy.pk).hyperparameters == {}
    assert client.post(url, {**form, "hyperparameters": '{"epochs": 3}'}).status_code == 302
    assert RetrainPolicy.objects.get(pk=policy.pk).hyperparameters == {"epochs": 3}


def test_the_command_refuses_before_queueing(project):
    with pytest.raises(CommandError, match="epochs must be from 1 to 20"):
        call_command("train_reward_model", "--project", str(project.pk), "--set", "epochs=1000000")


def test_a_stored_policy_past_the_bounds_fails_its_training_with_the_reason(project, model_root):
    from rewardmodel.training import resolve_settings

    RetrainPolicy.objects.create(project=project, hyperparameters={"epochs": 1_000_000})
    with pytest.raises(ValueError, match="epochs must be from 1 to 20"):
        resolve_settings(project.pk, None, None)


def test_a_device_the_worker_lacks_is_named():
    from rewardmodel.trainer import pick_device

    with pytest.raises(ValueError, match="does not exist on this worker"):
        pick_device("cuda:9")
    assert TrainConfig().checked().device == "auto"
