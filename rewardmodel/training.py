"""Train one reward-model version for a project: snapshot → train → evaluate → write atomically → register → gate.

Safe against a worker killed at any point: weights are written to a temporary folder and renamed into place only
when complete, the version row becomes `ready` only after that, and promotion happens last, in one transaction.
A redelivered job (same job key) finds its finished version and returns it instead of writing a second one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max
from django.utils import timezone

from config import shutdown
from config.db_retry import reconnect_if_dropped, retrying
from rewardmodel import distributed, eval_sets, gate, locks, registry
from rewardmodel import metrics as m
from rewardmodel.example_file import Subset
from rewardmodel.models import RetrainPolicy, RewardModelVersion, TrainingRun
from rewardmodel.signals import training_finished
from rewardmodel.snapshot import Snapshot, build_snapshot, trainable_rankings
from rewardmodel.trainer import (
    TrainConfig,
    TrainingInterrupted,
    load_checkpoint,
    predict,
    save_checkpoint,
    train,
)

log = logging.getLogger(__name__)
ProgressHook = Callable[[int, int, float], None]


def job_key(project_id: int, snapshot_sha: str, base_model: str, config: dict) -> str:
    payload = json.dumps([project_id, snapshot_sha, base_model, config], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def build_model(base_model: str, seed: int, chat_template: str = ""):
    """(model, tokenizer) with the reward head initialised from `seed`: the head is new (random) in every version, and
    the seed is part of the job key, so it must decide the head as well as the data order."""
    from rewardmodel.backbones import load_backbone
    from rewardmodel.trainer import set_seed

    set_seed(seed)
    return load_backbone(base_model, chat_template=chat_template)


def check_max_length(base: str, max_length: int) -> None:
    """Refuse a max_length the backbone has no positions for (it would fail deep in the embedding lookup)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(base, local_files_only=True)
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if positions is None:
        return
    # RoBERTa-style models number positions from padding_idx + 1, so two of their slots are never usable.
    usable = positions - (config.pad_token_id + 1 if config.model_type in ("roberta", "xlm-roberta", "camembert")
                          and config.pad_token_id is not None else 0)
    if max_length > usable:
        raise ValueError(f"max_length {max_length} is more than the {usable} positions backbone {base} has; "
                         f"set max_length ≤ {usable}")


def resolve_settings(project_id: int, backbone: str | None, overrides: dict | None) -> tuple[str, TrainConfig]:
    from rewardmodel.backbones import default_backbone_path

    policy = RetrainPolicy.objects.filter(project_id=project_id).first()
    options = dict(policy.hyperparameters if policy else {})
    options.update(overrides or {})
    config = TrainConfig.from_dict(options)
    base = backbone or (policy.backbone_path if policy and policy.backbone_path else "") or str(default_backbone_path())
    if not (Path(base) / "config.json").is_file():
        raise FileNotFoundError(f"backbone folder {base} has no config.json")
    check_max_length(base, config.max_length)
    return str(Path(base).resolve()), config


@dataclass
class HeldoutDiffs:
    """Per held-out pair: r_winner − r_loser under the new version and under the active one (None if none), and the
    held-out ranking each pair came from (the bootstrap resamples whole rankings)."""

    new: np.ndarray
    active: np.ndarray | None
    ranking_of_pair: np.ndarray


def _heldout_texts(snap: Snapshot, heldout: list[int]) -> tuple[list[str], list[str], list[int]]:
    """The held-out rankings' (prompt, completion) texts in a row, and where each ranking's completions start."""
    prompts, texts, owners = [], [], []
    for i in heldout:
        e = snap.examples[i]
        prompts.extend([e.prompt] * len(e.completions))
        texts.extend(e.completions)
        owners.append(len(prompts) - len(e.completions))
    return prompts, texts, owners


def _pair_diffs(snap: Snapshot, heldout: list[int], owners: list[int], r: np.ndarray) -> np.ndarray:
    """r_winner − r_loser for every pair of the held-out rankings."""
    return np.array([r[base + w] - r[base + lo] for base, i in zip(owners, heldout, strict=True)
                     for w, lo in snap.examples[i].pairs], dtype=np.float64)


# The held-out curve measured while training reads at most this many held-out rankings (spread over the set) at
# each of its points: bounded cost on a large project. The version's held-out accuracy reads them all, once.
CURVE_HELDOUT_RANKINGS = 200


def heldout_probe(tokenizer, snap: Snapshot, heldout: list[int], config: TrainConfig):
    """A callable model → held-out pairwise accuracy on a bounded sample of the held-out rankings (None without any),
    for the trainer's curve."""
    stride = max(1, -(-len(heldout) // CURVE_HELDOUT_RANKINGS))
    sample = heldout[::stride]
    prompts, texts, owners = _heldout_texts(snap, sample)

    def accuracy(model) -> float | None:
        if not texts:
            return None
        rewards, _ = predict(model, tokenizer, prompts, texts, config.max_length, keep=config.keep)
        return m.pairwise_accuracy(_pair_diffs(snap, sample, owners, rewards.numpy()))

    return accuracy


def evaluate(model, tokenizer, snap: Snapshot, heldout: list[int], config: TrainConfig, compare_to=None,
             parent=None) -> tuple[dict, HeldoutDiffs]:
    """Held-out metrics of `model`; with `compare_to`/`parent` also their accuracy and the flip rate."""
    from rewardmodel import scoring

    prompts, texts, owners = _heldout_texts(snap, heldout)
    rewards, truncated = predict(model, tokenizer, prompts, texts, config.max_length, keep=config.keep)
    rewards = rewards.numpy()

    def diffs_of(r: np.ndarray) -> np.ndarray:
        return _pair_diffs(snap, heldout, owners, r)

    diffs = diffs_of(rewards)
    ranking_of_pair = np.array([i for i in heldout for _ in snap.examples[i].pairs], dtype=np.int64)
    lengths = np.array([len(t) for t in texts], dtype=np.float64)
    result = {
        "heldout_rankings": len(heldout),
        "heldout_pairs": int(diffs.size),
        "heldout_accuracy": m.pairwise_accuracy(diffs),
        "length_correlation": m.length_correlation(rewards, lengths),
        "reward_mean": float(rewards.mean()) if rewards.size else None,
        "reward_std": float(rewards.std()) if rewards.size else None,
        "reward_vs_length": [[float(a), float(b)] for a, b in list(zip(lengths, rewards, strict=True))[:500]],
        "heldout_truncated": truncated,
        **m.calibration(diffs, config.seed),
    }
    active_diffs = None
    for label, other in (("active", compare_to), ("parent", parent)):
        if other is None or not diffs.size:
            continue
        other_rewards = scoring.score(other, prompts, texts)
        other_diffs = diffs_of(other_rewards.astype(np.float64))
        result[f"{label}_version"] = other.number
        result[f"{label}_heldout_accuracy"] = m.pairwise_accuracy(other_diffs)
        if label == "active":
            active_diffs = other_diffs
        if label == "parent":
            result["flip_rate_vs_parent"] = m.flip_rate(diffs, other_diffs)
    return result, HeldoutDiffs(diffs, active_diffs, ranking_of_pair)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_version_dir(final: Path, model, tokenizer, files: dict[str, dict]) -> None:
    """save_pretrained (safetensors) + tokenizer + JSON files into a temp folder, fsync, then rename into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        for name, content in files.items():
            (tmp / name).write_text(json.dumps(content, indent=2, sort_keys=True))
        _fsync_tree(tmp)
        if final.exists():  # left by a worker killed after the rename but before its DB commit: never used
            shutil.rmtree(final)
        os.rename(tmp, final)
        _fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _claim_version(project_id: int, key: str, base_model: str, config: dict, snap_info: dict) -> RewardModelVersion:
    """The version row for this job key: reuse an unfinished one (redelivery), else create the next number."""
    with transaction.atomic():
        # We hold the project's training lock, so any other version still "training" belongs to a dead worker.
        RewardModelVersion.objects.filter(project_id=project_id, status=RewardModelVersion.TRAINING).exclude(
            job_key=key).update(status=RewardModelVersion.FAILED)
        existing = RewardModelVersion.objects.select_for_update().filter(job_key=key).first()
        if existing is not None:
            return existing
        number = (RewardModelVersion.objects.filter(project_id=project_id).aggregate(n=Max("number"))["n"] or 0) + 1
        return RewardModelVersion.objects.create(
            project_id=project_id, number=number, job_key=key, base_model=base_model, config=config,
            snapshot=snap_info, path=f"project-{project_id}/v{number}", parent=registry.active_version(project_id))


def run_training(project_id: int, task_id: str | None = None, trigger: str = "manual", backbone: str | None = None,
                 overrides: dict | None = None, progress_hook: ProgressHook | None = None, worker: str = "") -> dict:
    """Train (or find, if this exact job already finished) a version; returns {project_id, version_id, promoted}.

    `worker` names the Celery node that took this delivery (kept on the run: which machine trained it)."""
    task_id = task_id or f"sync-{uuid.uuid4().hex}"
    run, _ = TrainingRun.objects.get_or_create(celery_task_id=task_id, project_id=project_id,
                                               defaults={"trigger": trigger})
    if run.status in (TrainingRun.SUCCEEDED, TrainingRun.SKIPPED):
        # A stale redelivery (the broker's visibility timeout) of a job the reaper already requeued and finished.
        return {"project_id": project_id, "version_id": run.version_id, "already_done": True,
                "promoted": bool(run.version_id and run.version.is_active)}
    TrainingRun.objects.filter(pk=run.pk).update(attempts=F("attempts") + 1)
    run.refresh_from_db(fields=["attempts"])
    if run.attempts > settings.VERDICT_MAX_DELIVERIES:
        # Only a lost worker redelivers a message (acks_late): a job that took its worker down every time would
        # otherwise come back for ever.
        _finish(run, TrainingRun.FAILED, run.version, f"gave up: started {run.attempts} times and its worker was "
                "lost each time (killed, out of memory?); see the worker's log")
        return {"project_id": project_id, "version_id": None, "promoted": False, "gave_up": run.message}
    run.status, run.started_at, run.message, run.worker = TrainingRun.RUNNING, timezone.now(), "", worker[:255]
    run.save(update_fields=["status", "started_at", "message", "worker"])
    if locks.acquire(project_id, task_id):
        TrainingRun.objects.filter(project_id=project_id, status=TrainingRun.RUNNING).exclude(pk=run.pk).update(
            status=TrainingRun.FAILED, finished_at=timezone.now(), message="worker lost (its lock expired)")
    else:
        run.status, run.finished_at = TrainingRun.SKIPPED, timezone.now()
        run.message = "another training of this project is running"
        run.save(update_fields=["status", "finished_at", "message"])
        return {"project_id": project_id, "version_id": None, "promoted": False, "skipped": run.message}
    version = None
    # Heartbeats from a thread while loading, training, evaluating and saving: the lock lapses only if this
    # process dies, and then tasks.requeue_lost_trainings puts the job back within minutes.
    alive = locks.KeepAlive(project_id, task_id).start()
    try:
        base_model, config = resolve_settings(project_id, backbone, overrides)
        pinned = _pinned_rankings(run)
        snap = build_snapshot(project_id, pinned, source=training_source(project_id))
        train_idx, held_idx = snap.split(config.holdout_fraction, config.split_seed,
                                         stream_pairs=gate.GateSettings.for_project(project_id).min_heldout_pairs)
        if not train_idx:
            raise ValueError(f"project {project_id} has no ranking with a strict preference to train on")
        snap_info = snap.describe(train_idx, held_idx)
        stored_config = {**config.to_dict(), "base_model": base_model}
        key = job_key(project_id, snap.sha256, base_model, config.to_dict())
        version = _claim_version(project_id, key, base_model, stored_config, snap_info)
        if version.status in (RewardModelVersion.READY, RewardModelVersion.REJECTED):
            log.info("job %s already produced version %s; not training again", key[:12], version.number)
            _finish(run, TrainingRun.SUCCEEDED, version, "already trained (redelivered job)")
            return {"project_id": project_id, "version_id": version.pk, "promoted": version.is_active,
                    "reason": version.gate_reason, "already_done": True}
        version.status = RewardModelVersion.TRAINING
        version.save(update_fields=["status"])
        run.version = version
        run.save(update_fields=["version"])

        last_write = [0.0]

        def on_step(step: int, total: int, loss: float) -> None:
            now = time.monotonic()
            if step == total or now - last_write[0] > 1.0:
                last_write[0] = now
                # A dropped connection is reopened and the write tried again: a blip costs no delivery.
                retrying(lambda: TrainingRun.objects.filter(pk=run.pk).update(
                    step=step, total=total, progress=step / max(1, total), message=f"loss {loss:.4f}"),
                    "a training's progress")
                if not locks.heartbeat(project_id, task_id):
                    raise RuntimeError("lost the training lock (heartbeat expired); giving up this attempt")
            if progress_hook:
                progress_hook(step, total, loss)

        def on_curve(curve: list) -> None:
            retrying(lambda: TrainingRun.objects.filter(pk=run.pk).update(curve=m.clean(curve)),
                     "a training's held-out curve")

        model, tokenizer = build_model(base_model, config.seed, config.chat_template)
        saved = version.directory / CHECKPOINT
        examples = Subset(snap.examples, train_idx)  # read from the snapshot's file as training reaches them
        processes, nodes = distributed.processes(), settings.VERDICT_TRAIN_NODES
        try:
            # Checkpoints every few steps too: a worker lost without warning (SIGKILL, OOM, a dead node) is
            # redelivered and resumes from the last one instead of starting over.
            if processes > 1 or nodes > 1:
                del model  # each process of the job loads its own
                result = distributed.run(version.directory / "job", base_model, config, examples, saved,
                                         settings.VERDICT_CHECKPOINT_EVERY, processes, nodes,
                                         settings.VERDICT_TRAIN_RDZV_ENDPOINT, on_step, should_stop=shutdown.requested,
                                         checkpoint_every_s=settings.VERDICT_CHECKPOINT_EVERY_S)
            else:
                resume = load_checkpoint(saved) if saved.is_file() else None
                result = train(model, tokenizer, examples, config, on_step, should_stop=shutdown.requested,
                               checkpoint=lambda state: save_checkpoint(state, saved), resume=resume,
                               checkpoint_every=settings.VERDICT_CHECKPOINT_EVERY,
                               checkpoint_every_s=settings.VERDICT_CHECKPOINT_EVERY_S,
                               heldout_accuracy=heldout_probe(tokenizer, snap, held_idx, config), on_curve=on_curve)
        except TrainingInterrupted as stop:
            return _give_back(run, version, stop)
        except distributed.ProcessFailed as failed:
            return _give_back(run, version, failed, lost=True)
        saved.unlink(missing_ok=True)
        model = result.model  # with LoRA, the PEFT wrapper: saved as adapters
        reconnect_if_dropped("a training's evaluation")  # the connection may have been dropped while it trained
        active = registry.active_version(project_id)
        parent = version.parent if version.parent and version.parent.status == RewardModelVersion.READY else None
        evaluation, heldout_diffs = evaluate(model, tokenizer, snap, held_idx, config, compare_to=active,
                                             parent=parent)
        evaluation["eval_sets"] = eval_sets.evaluate(model, tokenizer, project_id, config.max_length, config.keep)
        metrics = m.clean({
            **evaluation,
            "loss_curve": result.losses,
            "heldout_curve": result.curve,
            "train_rankings": result.n_rankings,
            "train_pairs": result.n_pairs,
            "train_truncated": result.truncated,
            "train_completions_cut": result.completions_cut,
            "truncation_keeps": f"the completion's {config.keep}",
            "truncated": result.truncated + evaluation["heldout_truncated"],
            "train_seconds": result.seconds,
            "pairs_per_second": result.n_pairs / result.seconds if result.seconds else None,
            "device": result.device,
            "trigger": trigger,
            "resumed_from_step": result.resumed_from or None,
            "resolved": result.resolved,
            "processes": processes * nodes,
            "peak_memory_mib": result.peak_memory_mib,
        })
        write_version_dir(version.directory, model.cpu(), tokenizer, {
            "training_config.json": stored_config, "snapshot.json": snap_info, "metrics.json": metrics})
        decision = gate.decide(gate.GateSettings.for_project(project_id), result.n_rankings, heldout_diffs.new,
                               heldout_diffs.active if active is not None else None, heldout_diffs.ranking_of_pair,
                               seed=config.seed)
        def register() -> None:
            with transaction.atomic():
                version.metrics = metrics
                version.gate = m.clean(decision.as_dict())
                version.status = RewardModelVersion.READY if decision.promote else RewardModelVersion.REJECTED
                version.save(update_fields=["metrics", "gate", "status"])
                if decision.promote:
                    registry.promote(version)
                _finish(run, TrainingRun.SUCCEEDED, version, decision.reason)

        retrying(register, "registering a trained version")  # the whole transaction again, after a reconnect
        return {"project_id": project_id, "version_id": version.pk, "promoted": decision.promote,
                "reason": decision.reason}
    except BaseException as exc:
        if version is not None and version.status == RewardModelVersion.TRAINING:
            RewardModelVersion.objects.filter(pk=version.pk, status=RewardModelVersion.TRAINING).update(
                status=RewardModelVersion.FAILED)
        _finish(run, TrainingRun.FAILED, version, f"{type(exc).__name__}: {exc}"[:2000])
        raise
    finally:
        alive.stop()
        locks.release(project_id, task_id)


CHECKPOINT = "checkpoint.pt"


def _pinned_rankings(run: TrainingRun) -> list[int] | None:
    """A job resumed after a shutdown trains on the rankings it started with, so its checkpoint still fits."""
    version = run.version
    if version is None or version.status != RewardModelVersion.TRAINING:
        return None
    if not (version.directory / CHECKPOINT).is_file():
        return None
    return _seen_ids(version.snapshot)


SEEN_KEYS = ("ranking_ids", "skipped_ranking_ids", "zero_weight_ranking_ids")


def _seen_ids(snapshot: dict) -> list[int]:
    """Every ranking a snapshot looked at: trained on, without a pair (all tied: they must not count as new
    forever and retrain in a loop), or weighing 0."""
    return [i for key in SEEN_KEYS for i in snapshot.get(key, [])]


def training_source(project_id: int) -> str:
    policy = RetrainPolicy.objects.filter(project_id=project_id).first()
    return policy.training_source if policy else RetrainPolicy.RANKINGS


def _give_back(run: TrainingRun, version: RewardModelVersion, stop, lost: bool = False) -> dict:
    """Put the job back on the queue (same task id) for the next worker to resume from the checkpoint.

    A worker shutting down (`stop` is TrainingInterrupted) hands over cleanly, which does not count toward the cap
    on deliveries; a process of a distributed job that died (`lost`) does, as a lost worker would.
    """
    from rewardmodel.launch import send

    why = (f"{stop}; requeued to resume from its last checkpoint" if lost
           else f"{stop} by a worker shutdown; checkpoint saved, requeued to resume")
    TrainingRun.objects.filter(pk=run.pk).update(
        status=TrainingRun.QUEUED, started_at=None, step=stop.step, total=stop.total, message=why[:2000],
        **({} if lost else {"attempts": F("attempts") - 1}))
    run.refresh_from_db()
    transaction.on_commit(lambda: send(run))
    log.warning("training run %s: %s", run.pk, why)
    return {"project_id": run.project_id, "version_id": version.pk, "promoted": False, "interrupted": True}


def _finish(run: TrainingRun, status: str, version, message: str) -> None:
    run.status, run.version, run.message, run.finished_at = status, version, message, timezone.now()
    if status == TrainingRun.SUCCEEDED:
        run.progress = 1.0
    run.save(update_fields=["status", "version", "message", "finished_at", "progress"])
    # After the run's write commits (with the version's registration); robust: a listener never fails a training.
    transaction.on_commit(lambda: training_finished.send(sender=TrainingRun, run=run), robust=True)


def new_rankings_since_last_version(project_id: int) -> int:
    last = (RewardModelVersion.objects.filter(project_id=project_id, status__in=[RewardModelVersion.READY,
                                                                                 RewardModelVersion.REJECTED])
            .order_by("-number").first())
    trainable = trainable_rankings(project_id)
    if last is None:
        return trainable.count()
    if connection.vendor == "postgresql":
        # In the database: a large project's snapshot lists millions of ids, too many to read into Python on every
        # beat tick. The seen ids are unnested from the snapshot's JSON and anti-joined (a hash join, spilling to
        # disk if it must: never a scan of the list per ranking).
        sql, params = trainable.order_by().values("id").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH seen AS (SELECT x::bigint AS id FROM {RewardModelVersion._meta.db_table} v, "
                "jsonb_array_elements_text(" + " || ".join(
                    f"COALESCE(v.snapshot->'{key}', '[]'::jsonb)" for key in SEEN_KEYS) + ") AS x WHERE v.id = %s) "
                f"SELECT count(*) FROM ({sql}) AS r WHERE NOT EXISTS (SELECT 1 FROM seen WHERE seen.id = r.id)",
                [last.pk, *params])
            return cursor.fetchone()[0]
    seen = set(_seen_ids(last.snapshot))
    return sum(1 for i in trainable.values_list("id", flat=True).iterator() if i not in seen)


def model_root() -> Path:
    return Path(settings.VERDICT_MODEL_ROOT)
