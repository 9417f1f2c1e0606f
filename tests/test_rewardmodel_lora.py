"""Memory and speed (issue 11, part 2): the memory plan, gradient checkpointing and accumulation, and LoRA through
peft: adapters saved as safetensors in the registry, loaded for scoring, merged on request for export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from django.core.management import CommandError, call_command

from rewardmodel import memory, scoring
from rewardmodel.backbones import load_backbone
from rewardmodel.models import RewardModelVersion
from rewardmodel.testing import make_tiny_decoder
from rewardmodel.trainer import TrainConfig, train
from rewardmodel.training import run_training
from tests.test_rewardmodel_decoders import ANSWERS, PROMPTS
from tests.test_rewardmodel_training import FAST, add_rankings
from tests.test_rewardmodel_units import examples

GiB = 2**30


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return make_tiny_decoder(tmp_path_factory.mktemp("llama-lora") / "backbone", "llama", hidden=64)


def test_the_memory_plan_follows_model_size_and_device():
    cpu = memory.plan(22_000_000, "cpu", None, False, lora_r=None, gradient_checkpointing=None)
    assert (cpu.precision, cpu.lora_r, cpu.gradient_checkpointing) == ("fp32", 0, False)
    small = memory.plan(500_000_000, "cuda", 80 * GiB, True, lora_r=None, gradient_checkpointing=None)
    assert (small.precision, small.lora_r, small.gradient_checkpointing) == ("bf16", 0, False)  # 8 GB of state
    big = memory.plan(7_000_000_000, "cuda", 80 * GiB, True, lora_r=None, gradient_checkpointing=None)
    assert (big.lora_r, big.gradient_checkpointing) == (memory.AUTO_LORA_R, True) and "112.0 GiB" not in big.why
    old_gpu = memory.plan(100_000_000, "cuda", 16 * GiB, False)
    assert old_gpu.precision == "fp16"
    asked = memory.plan(7_000_000_000, "cuda", 80 * GiB, True, precision="fp32", gradient_checkpointing=False, lora_r=0)
    assert (asked.precision, asked.gradient_checkpointing, asked.lora_r) == ("fp32", False, 0)  # as given
    with pytest.raises(ValueError, match="needs a CUDA device"):
        memory.plan(1000, "cpu", None, False, precision="bf16")


def test_bad_training_options_are_refused_before_training():
    with pytest.raises(ValueError, match="keep must be one of"):
        TrainConfig.from_dict({"keep": "middle"})
    with pytest.raises(ValueError, match="grad_accum must be from 1 to 64"):
        TrainConfig.from_dict({"grad_accum": 0})
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainConfig.from_dict({"precision": "int8"})


def test_gradient_checkpointing_changes_memory_not_results(llama):
    config = dict(lr=3e-3, batch_rankings=4, max_length=64, seed=2, device="cpu")
    plain = train(*load_backbone(llama), examples(12), TrainConfig(**config, gradient_checkpointing=False))
    saved = train(*load_backbone(llama), examples(12), TrainConfig(**config, gradient_checkpointing=True))
    assert saved.resolved["gradient_checkpointing"] and not plain.resolved["gradient_checkpointing"]
    assert np.allclose(plain.losses, saved.losses, atol=1e-5)


def test_gradient_accumulation_takes_fewer_steps_over_the_same_data(llama):
    config = dict(lr=3e-3, batch_rankings=2, max_length=64, seed=2, device="cpu")
    one = train(*load_backbone(llama), examples(12), TrainConfig(**config))
    three = train(*load_backbone(llama), examples(12), TrainConfig(**config, grad_accum=3))
    assert (one.steps, three.steps) == (6, 2) and one.n_forwards == three.n_forwards == 12 * 4


def test_lora_trains_only_adapters_and_the_head(llama):
    model, tok = load_backbone(llama)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    states = []
    result = train(model, tok, examples(16), TrainConfig(lr=5e-3, batch_rankings=4, max_length=64, seed=1, epochs=2,
                                                         device="cpu", lora_r=4),
                   checkpoint=states.append, checkpoint_every=2)
    wrapped = result.model
    assert result.resolved["lora_r"] == 4 and wrapped is not model
    trainable = {n for n, p in wrapped.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "score" in n for n in trainable)
    assert set(states[0]["model"]) == trainable  # a checkpoint holds the adapters and the head, not the base
    merged = wrapped.merge_and_unload()
    changed = [n for n, p in merged.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert "score.weight" in changed and any("q_proj" in n for n in changed)
    assert result.losses[-1] < result.losses[0]


@pytest.mark.usefixtures("model_root")
def test_a_lora_version_is_adapters_in_the_registry_and_merges_on_export(project, make_task, rater, rater2, llama,
                                                                          tmp_path, lenient_gate):
    add_rankings(project, make_task, [rater, rater2], 8)
    out = run_training(project.pk, task_id="lora", backbone=str(llama),
                       overrides={**FAST, "max_length": 64, "lora_r": 4})
    version = RewardModelVersion.objects.get(pk=out["version_id"])
    files = {p.name for p in version.directory.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "metrics.json"} <= files
    assert "model.safetensors" not in files  # the base is not copied into every version
    assert version.metrics["resolved"]["lora_r"] == 4
    scores = scoring.score(version, PROMPTS, ANSWERS)

    call_command("export_reward_model", project=str(project.pk), number=version.number, out=str(tmp_path / "m"),
                 merge=True)
    merged = tmp_path / "m"
    assert (merged / "model.safetensors").is_file() and not (merged / "adapter_config.json").exists()
    assert json.loads((merged / "metrics.json").read_text())["resolved"]["lora_r"] == 4
    model, _ = load_backbone(merged)
    assert type(model).__name__ == "LlamaForSequenceClassification"  # an ordinary model: no peft needed to use it
    assert np.allclose(scoring.score(merged, PROMPTS, ANSWERS), scores, atol=1e-4)

    call_command("export_reward_model", project=project.name, number=version.number, out=str(tmp_path / "a"))
    assert (tmp_path / "a" / "adapter_model.safetensors").is_file()
    with pytest.raises(CommandError, match="is not empty"):
        call_command("export_reward_model", project=project.name, number=version.number, out=str(tmp_path / "a"))
    with pytest.raises(CommandError, match="has no version 9"):
        call_command("export_reward_model", project=project.name, number=9, out=str(tmp_path / "b"))
