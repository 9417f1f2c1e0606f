"""The reward-model admin: versions and training runs are records (read-only, no Add, no Save), their figures to 3
significant digits and their options as a table; a disabled retrain policy says it is disabled."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from rewardmodel.models import RetrainPolicy, RewardModelVersion, TrainingRun


@pytest.fixture
def root(make_user):
    client = Client()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def staff(make_user):
    """Staff with every reward-model permission, short of being a superuser."""
    user = make_user("staffer", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="rewardmodel"))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def version(project):
    return RewardModelVersion.objects.create(
        project=project, number=1, status=RewardModelVersion.READY, path="v1", base_model="tiny",
        config={"epochs": 2, "learning_rate": 0.00012345678, "lora_r": 0}, snapshot={"n_rankings": 40},
        metrics={"heldout_accuracy": 0.7234567891234, "ece_after": 0.04567891}, job_key="k1")


@pytest.fixture
def run(project):
    return TrainingRun.objects.create(project=project, status=TrainingRun.RUNNING, progress=0.5, step=5, total=10,
                                      attempts=2, overrides={"epochs": 3})


def test_a_disabled_policy_says_so(root, project):
    policy = RetrainPolicy.objects.create(project=project, enabled=False, min_new_rankings=100)
    assert "disabled" in str(policy) and not str(policy).startswith("retrain ")
    listing = root.get(reverse("admin:rewardmodel_retrainpolicy_changelist")).content.decode()
    assert "disabled" in listing and "every 100 new rankings" not in listing
    policy.enabled = True
    policy.save()
    assert str(policy) == f"retrain {project} every 100 new rankings"
    assert "every 100 new rankings" in root.get(reverse("admin:rewardmodel_retrainpolicy_changelist")).content.decode()


def test_policies_stay_editable(root, project):
    policy = RetrainPolicy.objects.create(project=project, enabled=False)
    body = root.get(reverse("admin:rewardmodel_retrainpolicy_change", args=[policy.pk])).content.decode()
    assert 'name="_save"' in body and 'name="enabled"' in body


def test_version_figures_are_rounded_and_its_options_a_table(root, version):
    listing = root.get(reverse("admin:rewardmodel_rewardmodelversion_changelist")).content.decode()
    assert "0.723" in listing and "0.7234567891234" not in listing
    body = root.get(reverse("admin:rewardmodel_rewardmodelversion_change", args=[version.pk])).content.decode()
    assert 'class="data-table"' in body and "<th>learning rate</th><td>0.000123</td>" in body
    assert "0.00012345678" not in body


@pytest.mark.parametrize("model", ["rewardmodelversion", "trainingrun"])
def test_versions_and_runs_are_records(staff, root, version, run, model):
    obj = version if model == "rewardmodelversion" else run
    change = reverse(f"admin:rewardmodel_{model}_change", args=[obj.pk])
    body = staff.get(change).content.decode()
    for button in ('name="_save"', 'name="_continue"', "deletelink"):
        assert button not in body, button
    assert 'name="attempts"' not in body and 'name="status"' not in body and 'name="started_at' not in body
    assert staff.get(reverse(f"admin:rewardmodel_{model}_add")).status_code == 403
    assert staff.post(change, {"status": "failed"}).status_code == 403
    assert "deletelink" in root.get(change).content.decode()  # a superuser may delete a record


def test_run_page_shows_its_options_and_steps(root, run):
    body = root.get(reverse("admin:rewardmodel_trainingrun_change", args=[run.pk])).content.decode()
    assert "<th>epochs</th><td>3</td>" in body
    assert "(5/10)" in root.get(reverse("admin:rewardmodel_trainingrun_changelist")).content.decode()


def test_versions_can_still_be_promoted_from_the_list(root, version, model_root):
    body = root.get(reverse("admin:rewardmodel_rewardmodelversion_changelist")).content.decode()
    assert "promote_selected" in body and "rollback_projects" in body
