"""The held-out curve recorded while training: bounded points, on the run (API) and the version (plot), and resumed
with a checkpoint."""

from __future__ import annotations

import random

import pytest

from rewardmodel import plots
from rewardmodel.models import RewardModelVersion, TrainingRun
from rewardmodel.testing import synthetic_completions
from rewardmodel.trainer import CURVE_POINTS, curve_steps
from rewardmodel.training import run_training
from tests.test_api import client_for
from tests.test_rewardmodel_training import FAST, add_rankings

pytestmark = pytest.mark.usefixtures("model_root")


def test_curve_steps_are_bounded_and_end_at_the_last_step():
    assert curve_steps(5) == {1, 2, 3, 4, 5}  # a short run: every step
    many = curve_steps(10_000)
    assert len(many) == CURVE_POINTS and max(many) == 10_000 and min(many) == 500
    assert curve_steps(0) == set() and curve_steps(7, points=2) == {4, 7}


def test_a_tiny_training_records_its_heldout_curve(project, make_task, rater, rater2, tiny, make_user, client):
    add_rankings(project, make_task, [rater, rater2], 12)
    seen = []
    result = run_training(project.pk, task_id="curve-1", backbone=str(tiny), overrides={**FAST, "epochs": 3},
                          progress_hook=lambda step, total, loss: seen.append(
                              len(TrainingRun.objects.get(celery_task_id="curve-1").curve)))
    run = TrainingRun.objects.get(celery_task_id="curve-1")
    total = run.total
    assert total > 1 and len(run.curve) == min(total, CURVE_POINTS)
    assert seen[0] >= 1 and seen == sorted(seen)  # written while training, point by point
    assert [p[0] for p in run.curve] == sorted(curve_steps(total)) and run.curve[-1][0] == total
    for _step, loss, accuracy in run.curve:
        assert loss > 0 and 0 <= accuracy <= 1
    version = RewardModelVersion.objects.get(pk=result["version_id"])
    assert version.metrics["heldout_curve"] == run.curve

    body = client_for(rater).get(
        f"/api/projects/{project.pk}/training-runs/{run.pk}/").json()  # members see trainings
    assert body["curve"] == run.curve and body["status"] == "succeeded" and body["progress"] == 1.0
    assert client_for(make_user("outsider")).get(
        f"/api/projects/{project.pk}/training-runs/{run.pk}/").status_code == 404
    assert client_for(rater).get(f"/api/projects/{project.pk}/training-runs/999999/").status_code == 404

    assert plots.render("heldout", version.metrics)[:8] == b"\x89PNG\r\n\x1a\n"
    client.force_login(make_user("staffer", is_staff=True, is_superuser=True))
    page = client.get(f"/admin/rewardmodel/rewardmodelversion/{version.pk}/change/").content.decode()
    assert "held-out curve while training" in page
    png = client.get(f"/admin/rewardmodel/rewardmodelversion/{version.pk}/plot/heldout.png")
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    page = client.get(f"/admin/rewardmodel/trainingrun/{run.pk}/change/").content.decode()
    assert 'id="heldout-curve"' in page and 'name="curve"' not in page  # drawn, not an editable field
    png = client.get(f"/admin/rewardmodel/trainingrun/{run.pk}/curve.png")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"


def test_the_curve_survives_a_resume(tiny):
    """A run stopped mid-way and resumed from its checkpoint ends with the same curve as one run straight through."""
    from rewardmodel.trainer import RankingExample, TrainConfig, TrainingInterrupted, train
    from rewardmodel.training import build_model

    rng = random.Random(1)
    examples = []
    for i in range(16):
        comps = synthetic_completions(rng, 3)
        best_first = sorted(range(3), key=lambda j: -comps[j][1])
        pairs = [(best_first[a], best_first[b]) for a in range(3) for b in range(a + 1, 3)]
        examples.append(RankingExample(prompt=f"question {i}?", completions=[t for t, _ in comps], pairs=pairs))
    config = TrainConfig.from_dict({**FAST, "epochs": 2})
    calls = {"n": 0}

    def fake_accuracy(model) -> float:
        calls["n"] += 1
        return 0.5

    model, tokenizer = build_model(str(tiny), config.seed)
    straight = train(model, tokenizer, examples, config, heldout_accuracy=fake_accuracy, curve_points=4)
    assert len(straight.curve) == 4 and calls["n"] == 4
    saved = {}
    model, tokenizer = build_model(str(tiny), config.seed)
    with pytest.raises(TrainingInterrupted):
        train(model, tokenizer, examples, config, heldout_accuracy=fake_accuracy, curve_points=4,
              should_stop=lambda: True, checkpoint=saved.update)
    assert saved["curve"] == straight.curve[:len(saved["curve"])]
    model, tokenizer = build_model(str(tiny), config.seed)
    resumed = train(model, tokenizer, examples, config, heldout_accuracy=fake_accuracy, curve_points=4,
                    resume=saved)
    assert [p[0] for p in resumed.curve] == [p[0] for p in straight.curve]
