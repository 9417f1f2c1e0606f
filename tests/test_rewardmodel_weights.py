"""Training uses rater quality: per-ranking weights in the snapshot and the loss, and the consensus as a source."""

from __future__ import annotations

import pytest
import torch

from annotation.models import Ranking
from quality.refresh import refresh_project
from rewardmodel.models import RetrainPolicy, RewardModelVersion
from rewardmodel.snapshot import build_snapshot
from rewardmodel.trainer import ranking_loss
from rewardmodel.training import new_rankings_since_last_version, run_training
from tests.test_rewardmodel_training import FAST, add_rankings

pytestmark = pytest.mark.usefixtures("model_root")


def test_weighted_loss_is_the_weighted_mean_of_the_rankings_losses():
    rewards = torch.tensor([2.0, 0.0, 1.0, 3.0])
    pairs = torch.tensor([[0, 1], [2, 3]])
    owner = torch.tensor([0, 1])
    per = -torch.nn.functional.logsigmoid(torch.tensor([2.0, -2.0]))
    plain = ranking_loss(rewards, pairs, owner, 2, 0.0, 0.0)
    assert plain == pytest.approx(per.mean().item())
    weighted = ranking_loss(rewards, pairs, owner, 2, 0.0, 0.0, torch.tensor([1.0, 0.25]))
    assert weighted == pytest.approx(((per[0] + 0.25 * per[1]) / 1.25).item())
    only_first = ranking_loss(rewards, pairs, owner, 2, 0.0, 0.0, torch.tensor([1.0, 0.0]))
    assert only_first == pytest.approx(per[0].item())


def test_snapshot_carries_weights_and_leaves_out_excluded_raters(project, make_task, rater, rater2):
    add_rankings(project, make_task, [rater, rater2], 6)
    plain = build_snapshot(project.pk)
    Ranking.objects.filter(rater=rater).update(weight=0.5)
    Ranking.objects.filter(rater=rater2).update(weight=0.0)
    snap = build_snapshot(project.pk)
    assert {e.weight for e in snap.examples} == {0.5} and len(snap.examples) == 6
    excluded = set(Ranking.objects.filter(rater=rater2).values_list("id", flat=True))
    assert set(snap.zero_weight_ids) == excluded
    assert snap.sha256 != plain.sha256  # weights are part of what was trained on
    info = snap.describe(*snap.split(0.2, 0))
    assert info["zero_weight_ranking_ids"] and info["weights"]["mean"] == 0.5
    # Rankings weighing 0 were seen: they do not count as new and retrain a project in a loop.
    RewardModelVersion.objects.create(project=project, number=1, status=RewardModelVersion.READY, path="x",
                                      base_model="x", job_key="k", snapshot=info)
    assert new_rankings_since_last_version(project.pk) == 0


def test_training_on_the_consensus(project, make_task, rater, rater2, tiny, lenient_gate):
    add_rankings(project, make_task, [rater, rater2], 10)
    refresh_project(project)
    policy, _ = RetrainPolicy.objects.get_or_create(project=project)
    policy.training_source = RetrainPolicy.CONSENSUS
    policy.save()
    project.consensus_threshold = 0.6
    project.save()
    snap = build_snapshot(project.pk, source="consensus")
    assert snap.source == "consensus" and len(snap.examples) == 10  # one example per task, not per ranking
    assert len(snap.contributing_ids) == 20
    result = run_training(project.pk, backbone=str(tiny), overrides=FAST)
    version = RewardModelVersion.objects.get(pk=result["version_id"])
    assert version.snapshot["source"] == "consensus" and version.snapshot["n_tasks"] == 10
    assert new_rankings_since_last_version(project.pk) == 0


def test_unknown_training_source_is_refused(project):
    with pytest.raises(ValueError, match="unknown training source"):
        build_snapshot(project.pk, source="votes")
