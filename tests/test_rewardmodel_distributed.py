"""Training across processes (issue 11, part 3): torchrun + DDP on CPU (gloo), started by the Celery task; two
processes take the single-process steps; a killed process requeues the job, which resumes from the checkpoint."""

from __future__ import annotations

import numpy as np
import psutil
import pytest

from rewardmodel import distributed
from rewardmodel.backbones import load_backbone
from rewardmodel.models import RewardModelVersion, TrainingRun
from rewardmodel.tasks import train_reward_model
from rewardmodel.trainer import TrainConfig, train
from rewardmodel.training import run_training
from tests.test_rewardmodel_training import FAST, add_rankings
from tests.test_rewardmodel_units import examples

pytestmark = pytest.mark.usefixtures("model_root")


def test_the_torchrun_command():
    one = distributed.command("/jobs/v3", 4)
    assert one[1:4] == ["-m", "torch.distributed.run", "--nproc-per-node=4"] and "--standalone" in one
    assert one[-3:] == ["-m", "rewardmodel.distributed", "/jobs/v3"]
    two = distributed.command("/jobs/v3", 8, nodes=2, endpoint="gpu-a:29400", node_rank=1, job_id="v3")
    assert {"--nnodes=2", "--rdzv-backend=c10d", "--rdzv-endpoint=gpu-a:29400", "--rdzv-id=v3", "--node-rank=1"} <= set(
        two)
    with pytest.raises(ValueError, match="VERDICT_TRAIN_RDZV_ENDPOINT"):
        distributed.command("/jobs/v3", 8, nodes=2)
    assert distributed.processes("auto") == 1  # no GPU here
    with pytest.raises(ValueError, match="at least 1"):
        distributed.processes(0)


def test_two_processes_take_the_single_process_steps(tiny, tmp_path):
    config = TrainConfig(lr=2e-3, batch_rankings=5, max_length=32, seed=4, epochs=2, device="cpu", num_threads=1)
    data = examples(22)  # 22 = 4 batches of 5 and one of 2: the short batch splits 1 + 1
    single = train(*load_backbone(tiny), data, config)
    double = distributed.run(tmp_path / "job", str(tiny), config, data, tmp_path / "ckpt.pt", 0, per_node=2)
    assert double.steps == single.steps == 10
    assert np.allclose(double.losses, single.losses, atol=1e-4)
    a = dict(single.model.named_parameters())
    b = dict(double.model.named_parameters())
    assert max(float((a[n] - b[n]).detach().abs().max()) for n in a) < 1e-3


def test_sharded_fsdp_takes_the_same_steps_and_resumes_from_its_checkpoint(tiny, tmp_path):
    config = TrainConfig(lr=2e-3, batch_rankings=5, max_length=32, seed=4, epochs=2, device="cpu", num_threads=1,
                         sharding="fsdp")
    data = examples(22)
    single = train(*load_backbone(tiny), data, config)  # one process: sharding does not apply
    sharded = distributed.run(tmp_path / "job", str(tiny), config, data, tmp_path / "ckpt.pt", 4, per_node=2)
    assert np.allclose(sharded.losses, single.losses, atol=1e-4)
    a, b = dict(single.model.named_parameters()), dict(sharded.model.named_parameters())
    assert max(float((a[n] - b[n]).detach().abs().max()) for n in a) < 1e-3
    # The run left its step-8 checkpoint (gathered from both shards): a second run resumes there, same result.
    again = distributed.run(tmp_path / "job", str(tiny), config, data, tmp_path / "ckpt.pt", 4, per_node=2)
    assert again.resumed_from == 8 and np.allclose(again.losses, sharded.losses, atol=1e-5)
    with pytest.raises(ValueError, match="full fine-tuning"):
        TrainConfig(sharding="fsdp", lora_r=8).checked()


@pytest.mark.django_db
def test_the_celery_task_trains_across_two_processes(project, make_task, rater, rater2, tiny, settings, lenient_gate):
    settings.VERDICT_TRAIN_PROCESSES = 2
    add_rankings(project, make_task, [rater, rater2], 8)
    out = train_reward_model.apply(args=(project.pk,), kwargs={"backbone": str(tiny), "overrides": FAST},
                                   task_id="ddp-job").get()
    version = RewardModelVersion.objects.get(pk=out["version_id"])
    assert version.status in (RewardModelVersion.READY, RewardModelVersion.REJECTED)
    assert version.metrics["processes"] == 2 and version.metrics["train_rankings"] > 0
    assert (version.directory / "model.safetensors").is_file() and not (version.directory / "job").exists()
    run = TrainingRun.objects.get(celery_task_id="ddp-job")
    assert run.status == TrainingRun.SUCCEEDED and run.step == run.total > 0


@pytest.mark.django_db
def test_a_killed_process_requeues_the_job_and_it_resumes(project, make_task, rater, rater2, tiny, settings,
                                                          lenient_gate):
    settings.VERDICT_TRAIN_PROCESSES = 2
    settings.VERDICT_CHECKPOINT_EVERY = 1
    add_rankings(project, make_task, [rater, rater2], 30)
    slow = {**FAST, "batch_rankings": 1}  # many short steps, so the job is caught midway
    killed = []

    def kill_a_rank(step, total, loss):
        if step >= 3 and not killed:
            ranks = [p for p in psutil.Process().children(recursive=True)
                     if "rewardmodel.distributed" in " ".join(p.cmdline()) and "torch.distributed.run" not in
                     " ".join(p.cmdline())]
            ranks[-1].kill()
            killed.append(step)

    first = run_training(project.pk, task_id="killed-rank", backbone=str(tiny), overrides=slow,
                         progress_hook=kill_a_rank)
    assert killed and first["interrupted"]
    run = TrainingRun.objects.get(celery_task_id="killed-rank")
    assert run.status == TrainingRun.QUEUED and "training process failed" in run.message and run.attempts == 1
    half = RewardModelVersion.objects.get(pk=first["version_id"])
    assert half.status == RewardModelVersion.TRAINING and (half.directory / "checkpoint.pt").is_file()
    # The requeued delivery (same task id) resumes from rank 0's last checkpoint instead of starting over.
    again = run_training(project.pk, task_id="killed-rank", backbone=str(tiny), overrides=slow)
    half.refresh_from_db()
    assert again["version_id"] == half.pk and half.status in (RewardModelVersion.READY, RewardModelVersion.REJECTED)
    assert killed[0] <= half.metrics["resumed_from_step"] < run.total
