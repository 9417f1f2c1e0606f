"""The promotion gate: minimum evidence, the paired bootstrap interval, bounded temperature scaling, and the reason
every decision gives in the database, the API and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from rewardmodel import gate, metrics
from rewardmodel.models import RewardModelVersion, TrainingRun
from rewardmodel.snapshot import build_snapshot
from rewardmodel.training import run_training
from tests.test_rewardmodel_training import FAST, add_rankings

pytestmark = pytest.mark.usefixtures("model_root")  # conftest: a model store of its own per test


def test_too_little_evidence_is_not_eligible():
    settings = gate.GateSettings(min_train_rankings=50, min_heldout_pairs=30)
    diffs = np.ones(60)
    few_rankings = gate.decide(settings, 4, diffs, None, np.arange(60) // 6)
    assert not few_rankings.promote and not few_rankings.eligible
    assert "trained on 4 rankings" in few_rankings.reason and "at least 50" in few_rankings.reason
    few_pairs = gate.decide(settings, 80, np.ones(6), None, np.zeros(6))
    assert not few_pairs.promote and "6 held-out pairs" in few_pairs.reason
    first = gate.decide(settings, 80, diffs, None, np.arange(60) // 6)
    assert first.promote and "no active version" in first.reason


def test_interval_rejects_a_clearly_worse_version_and_keeps_an_equal_one():
    settings = gate.GateSettings(min_train_rankings=1, min_heldout_pairs=1, margin=0.02)
    rng = np.random.default_rng(0)
    clusters = np.repeat(np.arange(50), 6)
    active = rng.normal(1.0, 1.0, 300)  # ~84 % right
    worse = np.where(rng.random(300) < 0.3, -np.abs(active), active)
    verdict = gate.decide(settings, 100, worse, active, clusters, seed=1)
    assert not verdict.promote and verdict.eligible and verdict.ci_high < 0
    assert verdict.reason.startswith("rejected") and "95% CI" in verdict.reason
    same = gate.decide(settings, 100, active.copy(), active, clusters, seed=1)
    assert same.promote and same.accuracy_delta == 0 and same.ci_low == 0
    # A small, noisy gain is judged by the interval, not the point estimate: both ends are reported.
    slightly = np.where(rng.random(300) < 0.05, np.abs(active), active)
    result = gate.decide(settings, 100, slightly, active, clusters, seed=1)
    assert result.ci_low <= result.accuracy_delta <= result.ci_high


def test_bootstrap_resamples_whole_rankings():
    # Each cluster is all right or all wrong: resampling clusters gives a wider interval than resampling pairs would.
    clusters = np.repeat(np.arange(20), 6)
    new = np.where(clusters % 2 == 0, 1.0, -1.0)
    old = np.ones(120)
    delta, low, high = gate.paired_bootstrap(new, old, clusters, seed=0)
    assert delta == pytest.approx(-0.5)
    assert high - low > 0.3  # ≈ 4·sqrt(0.25/20); a pair-level bootstrap would give ≈ 4·sqrt(0.25/120) ≈ 0.18


def test_temperature_is_bounded_and_skipped_on_few_pairs():
    small = metrics.calibration(np.array([5.0, -0.1, 3.0, 2.0, 0.5, 4.0]), seed=0)
    assert small["temperature"] == 1.0 and "6 held-out pairs" in small["temperature_skipped"]
    # Perfectly separated pairs would drive T → 0 without the bound.
    separated = metrics.calibration(np.full(200, 0.5), seed=0)
    assert metrics.TEMPERATURE_BOUNDS[0] <= separated["temperature"] <= metrics.TEMPERATURE_BOUNDS[1]
    assert separated["temperature_skipped"] is None


def test_split_keeps_a_heldout_prompt_heldout_as_data_grows(project, make_task, rater):
    add_rankings(project, make_task, [rater], 12)
    before = build_snapshot(project.pk)
    _, held = before.split(0.25, seed=3)
    held_prompts = {before.prompt_ids[i] for i in held}
    add_rankings(project, make_task, [rater], 12, seed=4)
    after = build_snapshot(project.pk)
    _, held_after = after.split(0.25, seed=3)
    assert held_prompts <= {after.prompt_ids[i] for i in held_after}


def test_default_gate_keeps_a_tiny_model_from_promotion_and_says_why(project, make_task, rater, rater2, admin_client,
                                                                    make_user, tiny, capsys):
    add_rankings(project, make_task, [rater, rater2], 6)
    call_command("train_reward_model", "--project", str(project.pk), "--sync", "--backbone", str(tiny),
                 *[f"--set={k}={v}" for k, v in FAST.items()])
    captured = capsys.readouterr()
    assert '"promoted": false' in captured.out and "not eligible" in captured.err
    version = RewardModelVersion.objects.get(project=project)
    assert version.status == RewardModelVersion.REJECTED and not version.is_active
    assert version.gate["eligible"] is False and "the project requires at least 50" in version.gate_reason
    assert TrainingRun.objects.get(version=version).message == version.gate_reason

    client = APIClient()
    client.force_authenticate(rater)
    resp = client.get(f"/api/projects/{project.pk}/reward-models/")
    assert resp.status_code == 200
    row = resp.json()["results"][0]
    assert row["number"] == 1 and row["status"] == "rejected" and "not eligible" in row["gate_reason"]
    assert row["metrics"]["train_rankings"] == version.metrics["train_rankings"]
    outsider = make_user("outsider")
    client.force_authenticate(outsider)
    assert client.get(f"/api/projects/{project.pk}/reward-models/").status_code == 404
    client.force_authenticate(None)
    assert client.get(f"/api/projects/{project.pk}/reward-models/").status_code in (401, 403)

    page = admin_client.get("/admin/rewardmodel/rewardmodelversion/")
    assert page.status_code == 200 and b"not eligible" in page.content


def test_second_version_is_judged_against_the_active_one(project, make_task, rater, rater2, tiny, lenient_gate):
    add_rankings(project, make_task, [rater, rater2], 10)
    first = run_training(project.pk, backbone=str(tiny), overrides=FAST)
    assert first["promoted"] and "no active version" in first["reason"]
    lenient_gate.min_train_rankings = 10_000
    lenient_gate.save()
    second = run_training(project.pk, backbone=str(tiny), overrides={**FAST, "seed": 5})
    assert not second["promoted"] and "not eligible" in second["reason"]
    lenient_gate.min_train_rankings = 1
    lenient_gate.save()
    third = run_training(project.pk, backbone=str(tiny), overrides={**FAST, "seed": 6})
    v3 = RewardModelVersion.objects.get(pk=third["version_id"])
    assert v3.gate["ci_low"] is not None and v3.gate["ci_low"] <= v3.gate["accuracy_delta"] <= v3.gate["ci_high"]
    assert third["promoted"] == (v3.gate["ci_high"] >= -v3.gate["margin"])


def test_split_depends_on_prompt_text_not_database_ids(project, make_task, rater, manager):
    from annotation.models import Membership, Project

    other = Project.objects.create(name="Same data, another project", k=4, overlap=1)
    Membership.objects.create(project=other, user=rater, role=Membership.RATER)
    for p in (project, other):
        for n in range(12):
            add_rankings(p, make_task, [rater], 1, seed=n)
            task = p.tasks.order_by("-id").first()
            task.prompt.text = f"the same question number {n}"
            task.prompt.save()
    a, b = build_snapshot(project.pk), build_snapshot(other.pk)
    held_a = {a.examples[i].prompt for i in a.split(0.25, seed=0)[1]}
    held_b = {b.examples[i].prompt for i in b.split(0.25, seed=0)[1]}
    assert held_a == held_b and held_a


def test_a_version_is_never_promoted_below_chance():
    """The first eligible version used to be promoted whatever it scored (0.357 held-out accuracy was seen)."""
    settings = gate.GateSettings(min_train_rankings=1, min_heldout_pairs=1)
    rng = np.random.default_rng(0)
    clusters = np.repeat(np.arange(30), 3)
    wrong_way = np.where(rng.random(90) < 0.36, 1.0, -1.0)
    first = gate.decide(settings, 100, wrong_way, None, clusters)
    assert not first.promote and first.eligible and "does not clear chance" in first.reason
    coin = np.where(rng.random(90) < 0.55, 1.0, -1.0)  # better than chance by luck, not shown to be
    assert not gate.decide(settings, 100, coin, None, clusters).promote
    # Nor when it beats an even worse active version.
    assert not gate.decide(settings, 100, coin, -np.ones(90), clusters).promote
    good = np.where(rng.random(90) < 0.85, 1.0, -1.0)
    assert gate.decide(settings, 100, good, None, clusters).promote


def test_length_bias_and_below_chance_are_warned_in_words(project, manager):
    """A reward–length Spearman of −0.51 was shown as a bare number (issue 24)."""
    from rewardmodel.metrics import warnings_for

    biased = {"length_correlation": {"spearman": -0.51, "pearson": -0.4}, "heldout_accuracy": 0.357}
    said = warnings_for(biased)
    assert len(said) == 2 and "ρ -0.51" in said[0] and "shorter" in said[0] and "below chance" in said[1]
    assert warnings_for({"length_correlation": {"spearman": 0.1}, "heldout_accuracy": 0.8}) == []
    assert warnings_for({"length_correlation": {"spearman": float("nan")}}) == []
    RewardModelVersion.objects.create(project=project, number=1, status=RewardModelVersion.REJECTED, path="v1",
                                      base_model="tiny", job_key="w1", metrics=biased)
    client = APIClient()
    client.force_authenticate(manager)
    row = client.get(f"/api/projects/{project.pk}/reward-models/").json()["results"][0]
    assert row["warnings"] == said
