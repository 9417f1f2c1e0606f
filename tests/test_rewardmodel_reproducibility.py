"""Training is reproducible and refuses what cannot work: the seed decides the new reward head too, and a max_length
beyond the backbone's positions is refused before anything is written (issue 11, part 7)."""

from __future__ import annotations

import pytest
import torch

from rewardmodel.models import RewardModelVersion, TrainingRun
from rewardmodel.training import build_model, check_max_length, run_training
from tests.test_rewardmodel_training import FAST, add_rankings

pytestmark = pytest.mark.usefixtures("model_root")


def _head(model) -> torch.Tensor:
    return model.classifier.weight.detach().clone()


@pytest.fixture(scope="module")
def headless(tiny, tmp_path_factory):
    """The tiny backbone without its classifier, as a pretrained LM comes: the reward head is new at every load."""
    model, tokenizer = build_model(str(tiny), seed=0)
    folder = tmp_path_factory.mktemp("headless")
    model.bert.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def test_the_seed_decides_the_reward_head(headless):
    first, _ = build_model(str(headless), seed=7)
    torch.rand(1000)  # whatever else used the generator in between
    again, _ = build_model(str(headless), seed=7)
    other, _ = build_model(str(headless), seed=8)
    assert torch.equal(_head(first), _head(again))
    assert not torch.equal(_head(first), _head(other))


def test_max_length_beyond_the_backbones_positions_is_refused(tiny):
    check_max_length(str(tiny), 128)  # the tiny backbone has 128 positions
    with pytest.raises(ValueError, match="max_length 129 is more than the 128 positions"):
        check_max_length(str(tiny), 129)


def test_a_refused_max_length_writes_no_version(project, make_task, rater, tiny):
    add_rankings(project, make_task, [rater], 4)
    with pytest.raises(ValueError, match="positions"):
        run_training(project.pk, task_id="too-long", backbone=str(tiny), overrides={**FAST, "max_length": 4096})
    assert not RewardModelVersion.objects.filter(project=project).exists()
    run = TrainingRun.objects.get(celery_task_id="too-long")
    assert run.status == TrainingRun.FAILED and "max_length 4096" in run.message
