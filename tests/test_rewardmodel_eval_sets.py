"""Evaluation sets (issue 11, part 5): pairs with subsets attached to a project; each version's card shows accuracy
per subset with 95 % intervals; bad files are refused whole."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from quality.agreement import wilson
from rewardmodel.models import EvalSet, RewardModelVersion
from rewardmodel.testing import BAD, GOOD
from rewardmodel.training import run_training
from tests.test_rewardmodel_training import FAST, add_rankings

pytestmark = pytest.mark.usefixtures("model_root")


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_wilson_interval():
    low, high = wilson(8, 10)
    assert low == pytest.approx(0.490, abs=1e-3) and high == pytest.approx(0.943, abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)


@pytest.mark.django_db
def test_versions_report_accuracy_per_subset(project, make_task, rater, rater2, tiny, tmp_path, admin_client):
    rows = [{"prompt": f"q{i}", "chosen": GOOD[i % 4] + " " + GOOD[(i + 1) % 4], "rejected": BAD[i % 4],
             "subset": "clear" if i % 2 else "kind"} for i in range(20)]
    rows.append({"prompt": "x", "chosen": "y", "rejected": "z"})
    call_command("add_eval_set", str(write(tmp_path / "rb.jsonl", rows)), project=project.name, name="rewardbench")
    add_rankings(project, make_task, [rater, rater2], 8)
    out = run_training(project.pk, task_id="with-eval", backbone=str(tiny), overrides={**FAST, "epochs": 3})
    version = RewardModelVersion.objects.get(pk=out["version_id"])
    card = version.metrics["eval_sets"]["rewardbench"]
    assert card["overall"]["pairs"] == 21 and set(card["subsets"]) == {"clear", "kind", "(none)"}
    assert card["subsets"]["clear"]["pairs"] == card["subsets"]["kind"]["pairs"] == 10
    for figures in [card["overall"], *card["subsets"].values()]:
        low, high = figures["ci95"]
        assert low <= figures["accuracy"] <= high
    page = admin_client.get(f"/admin/rewardmodel/rewardmodelversion/{version.pk}/change/").content.decode()
    assert "rewardbench" in page and "accuracy [95 % CI]" in page
    api = APIClient()
    api.force_authenticate(rater)  # members see their project's versions and figures through the API too
    row = api.get(f"/api/projects/{project.pk}/reward-models/").json()["results"][0]
    assert row["metrics"]["eval_sets"]["rewardbench"] == card
    assert row["metrics"]["truncation_keeps"] == "the completion's end"


@pytest.mark.django_db
def test_a_bad_eval_file_adds_nothing(project, tmp_path):
    path = write(tmp_path / "bad.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b", "subset": 3},
                                          {"prompt": "q", "completions": ["a", "b", "c"], "ranking": [[0], [1], [2]]}])
    with pytest.raises(CommandError, match="2 error"):
        call_command("add_eval_set", str(path), project=project.name, name="x")
    assert not EvalSet.objects.exists()
    good = write(tmp_path / "ok.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b"}])
    call_command("add_eval_set", str(good), project=project.name, name="x")
    with pytest.raises(CommandError, match="already has an evaluation set"):
        call_command("add_eval_set", str(good), project=project.name, name="x")
    call_command("add_eval_set", str(good), project=project.name, name="x", replace=True)
    assert EvalSet.objects.get(name="x").pairs.count() == 1
