"""Train one version across processes with torchrun (PyTorch DDP): every GPU of a machine, or several machines.

The Celery task's process stays the job's owner: it holds the project lock, evaluates, writes the registry and runs
the promotion gate, as for a single-process job (``rewardmodel.training``). For the training itself it writes the
job (backbone, config, rankings) to a folder under the version and starts

    python -m torch.distributed.run --nproc-per-node P [--nnodes N --rdzv-endpoint HOST:PORT] \\
        -m rewardmodel.distributed JOB_FOLDER

then follows rank 0's progress file (heartbeating the lock, updating the run) until torchrun exits. Each process
trains its share of every batch (``trainer.train`` with ``Distributed``; gloo on CPU, NCCL on GPUs). Only rank 0
writes: checkpoints every few steps, and at the end the trained model (or its LoRA adapters) into the job folder,
which the owner loads. A process that dies makes torchrun stop the others and exit non-zero: the owner raises
``ProcessFailed``, and the job goes back on the queue to resume from rank 0's last checkpoint.

Several machines: each other machine runs the same torchrun command with its ``--node-rank`` against the first
one's rendezvous endpoint (deploy/README.md); the job folder must be on storage they share (VERDICT_MODEL_ROOT).

The ranks' entry point (``main``) uses torch and transformers only, never Django.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

from rewardmodel.trainer import RankingExample, TrainConfig, TrainingInterrupted, TrainResult

JOB, PROGRESS, RESULT, TRAINED, LOG = "job.json", "progress.json", "result.json", "trained", "torchrun.log"


class ProcessFailed(RuntimeError):
    """A process of the job died (killed, out of memory, a lost node): torchrun stopped the job."""

    def __init__(self, code: int, step: int, total: int, log_tail: str):
        super().__init__(f"a training process failed (torchrun exit {code}) at step {step}/{total}: "
                         f"{log_tail[-500:]}")
        self.code, self.step, self.total = code, step, total


def processes(setting: str | int | None = None) -> int:
    """Processes per machine: VERDICT_TRAIN_PROCESSES, where "auto" means one per visible GPU (1 without GPUs)."""
    from django.conf import settings

    value = settings.VERDICT_TRAIN_PROCESSES if setting is None else setting
    if str(value).strip().lower() == "auto":
        import torch

        return max(1, torch.cuda.device_count())
    number = int(value)
    if number < 1:
        raise ValueError(f"VERDICT_TRAIN_PROCESSES must be 'auto' or at least 1, got {value!r}")
    return number


def command(folder: Path, per_node: int, nodes: int = 1, endpoint: str = "", node_rank: int | None = None,
            job_id: str = "verdict") -> list[str]:
    """The torchrun command line for this job (the first machine's; others add their own --node-rank)."""
    argv = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={per_node}"]
    if nodes > 1:
        if not endpoint:
            raise ValueError("training on several machines needs VERDICT_TRAIN_RDZV_ENDPOINT (host:port)")
        argv += [f"--nnodes={nodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={endpoint}", f"--rdzv-id={job_id}"]
        if node_rank is not None:
            argv.append(f"--node-rank={node_rank}")
    else:
        argv.append("--standalone")
    return [*argv, "-m", "rewardmodel.distributed", str(folder)]


def run(folder: Path, base_model: str, config: TrainConfig, examples: list[RankingExample], checkpoint: Path,
        checkpoint_every: int, per_node: int, nodes: int = 1, endpoint: str = "", progress=None, should_stop=None,
        poll_s: float = 0.5, checkpoint_every_s: float = 0) -> TrainResult:
    """Run the job to the end; returns rank 0's TrainResult with the trained model loaded (on CPU)."""
    from rewardmodel.backbones import load_backbone

    folder.mkdir(parents=True, exist_ok=True)
    for stale in (PROGRESS, RESULT):
        (folder / stale).unlink(missing_ok=True)
    (folder / JOB).write_text(json.dumps({
        "base_model": base_model, "config": config.to_dict(), "examples": [asdict(e) for e in examples],
        "checkpoint": str(checkpoint), "checkpoint_every": checkpoint_every,
        "checkpoint_every_s": checkpoint_every_s}))
    argv = command(folder, per_node, nodes, endpoint, node_rank=0 if nodes > 1 else None, job_id=folder.parent.name)
    step, total = 0, 0
    with open(folder / LOG, "ab") as log:
        # Its own session: stopping the job signals torchrun and every rank, nothing else.
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            while proc.poll() is None:
                time.sleep(poll_s)
                seen = _read_json(folder / PROGRESS)
                if seen and seen["step"] > step:
                    step, total = seen["step"], seen["total"]
                    if progress:
                        progress(step, total, seen["loss"])
                if should_stop is not None and should_stop():
                    _stop(proc)
                    raise TrainingInterrupted(step, total)
        except BaseException:
            _stop(proc)
            raise
    if proc.returncode != 0:
        raise ProcessFailed(proc.returncode, step, total, (folder / LOG).read_text(errors="replace")[-2000:])
    data = _read_json(folder / RESULT)
    known = {f.name for f in fields(TrainResult)} - {"model", "full_weights"}
    result = TrainResult(**{k: v for k, v in data.items() if k in known})
    result.model, _ = load_backbone(folder / TRAINED)
    return result


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def main(folder: Path) -> None:
    """One rank of the job (torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous)."""
    import torch
    import torch.distributed as torch_dist

    from rewardmodel.backbones import load_backbone
    from rewardmodel.trainer import Distributed, load_checkpoint, pick_device, save_checkpoint, set_seed, train

    job = json.loads((folder / JOB).read_text())
    config = TrainConfig.from_dict(job["config"])
    device = pick_device(config.device)
    # NCCL wants a GPU per process; more processes than GPUs (a check on a one-GPU machine) share them over gloo.
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    nccl = device.type == "cuda" and local_world <= torch.cuda.device_count()
    torch_dist.init_process_group("nccl" if nccl else "gloo")
    dist = Distributed(torch_dist.get_rank(), torch_dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    if device.type == "cpu" and not config.num_threads:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", 1))))
    set_seed(config.seed)  # the same new head on every rank (DDP also copies rank 0's weights to all at the start)
    model, tokenizer = load_backbone(job["base_model"], chat_template=config.chat_template)
    checkpoint = Path(job["checkpoint"])
    resume = load_checkpoint(checkpoint) if checkpoint.is_file() else None
    lead = dist.rank == 0

    def report(step: int, total: int, loss: float) -> None:
        _write_json(folder / PROGRESS, {"step": step, "total": total, "loss": loss})

    result = train(model, tokenizer, [RankingExample(**e) for e in job["examples"]], config,
                   progress=report if lead else None,
                   checkpoint=(lambda state: save_checkpoint(state, checkpoint)) if lead else None,
                   resume=resume, checkpoint_every=job["checkpoint_every"], dist=dist,
                   checkpoint_every_s=job.get("checkpoint_every_s", 0))
    if lead:
        trained = result.model
        if result.full_weights is not None:  # sharded: write the gathered weights into a whole model
            trained, _ = load_backbone(job["base_model"], chat_template=config.chat_template)
            trained.load_state_dict(result.full_weights)
        trained.save_pretrained(folder / TRAINED, safe_serialization=True)
        tokenizer.save_pretrained(folder / TRAINED)
        # Not asdict(): it would deep-copy the model.
        _write_json(folder / RESULT, {f.name: getattr(result, f.name) for f in fields(TrainResult)
                                      if f.name not in ("model", "full_weights")})
    torch_dist.barrier()
    torch_dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
