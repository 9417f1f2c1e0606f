"""Training end to end with the database: snapshot, registry, idempotency, lock, promotion, a killed worker."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from annotation.models import Assignment, Ranking
from rewardmodel import locks, registry, scoring
from rewardmodel.models import RewardModelVersion, TrainingLock, TrainingRun
from rewardmodel.snapshot import build_snapshot
from rewardmodel.testing import synthetic_completions
from rewardmodel.training import run_training

FAST = {"lr": 2e-3, "batch_rankings": 4, "max_length": 48, "seed": 3, "device": "cpu", "holdout_fraction": 0.25}


pytestmark = pytest.mark.usefixtures("model_root")  # conftest: a model store of its own per test


def kill_training_midway(sigkill_when, project, tiny, tmp_path, task_id: str, at_step: int = 1) -> None:
    """Run a training as job `task_id` in a subprocess and SIGKILL it after step `at_step`, as a crash would."""
    marker = tmp_path / "started"
    script = f"""
import django, time, pathlib
django.setup()
from rewardmodel.training import run_training
def hook(step, total, loss):
    if step < {at_step}:
        return
    pathlib.Path({str(marker)!r}).touch()
    time.sleep(60)
run_training({project.pk}, task_id={task_id!r}, backbone={str(tiny)!r}, overrides={FAST!r}, progress_hook=hook)
"""
    sigkill_when(["-c", script], marker.exists, "training subprocess", timeout=90)


def add_rankings(project, make_task, raters, n_prompts: int, seed: int = 0, tie: bool = False):
    rng = random.Random(seed)
    for _ in range(n_prompts):
        comps = synthetic_completions(rng, project.k)
        task = make_task(project, texts=[t for t, _ in comps])
        ids = list(task.completions.order_by("id").values_list("id", flat=True))
        best_first = [cid for cid, (_, q) in sorted(zip(ids, comps, strict=True), key=lambda x: -x[1][1])]
        order = [[best_first[0]], best_first[1:3], [best_first[3]]] if tie else [[c] for c in best_first]
        for rater in raters:
            a = Assignment.objects.create(task=task, rater=rater, status=Assignment.SUBMITTED,
                                          expires_at=timezone.now() + timedelta(minutes=5), display_order=ids)
            Ranking.objects.create(assignment=a, task=task, rater=rater, order=order, display_order=ids)


def test_snapshot_hash_is_stable_and_split_is_by_prompt(project, make_task, rater, rater2):
    add_rankings(project, make_task, [rater, rater2], 10)
    one, two = build_snapshot(project.pk), build_snapshot(project.pk)
    assert one.sha256 == two.sha256 and len(one.ranking_ids) == 20
    assert sum(len(e.pairs) for e in one.examples) == 20 * 6
    train, held = one.split(0.3, seed=1)
    assert train and held and set(train).isdisjoint(held)
    assert {one.prompt_ids[i] for i in train}.isdisjoint({one.prompt_ids[i] for i in held})
    assert one.split(0.3, seed=1) == (train, held)
    add_rankings(project, make_task, [rater], 1, seed=9)
    assert build_snapshot(project.pk).sha256 != one.sha256


def test_ties_give_fewer_pairs_in_snapshot(project, make_task, rater):
    add_rankings(project, make_task, [rater], 3, tie=True)
    snap = build_snapshot(project.pk)
    assert [len(e.pairs) for e in snap.examples] == [5, 5, 5]


def test_flagged_rankings_are_not_trained_on(project, make_task, rater):
    from rewardmodel.training import new_rankings_since_last_version

    add_rankings(project, make_task, [rater], 3)
    flagged = Ranking.objects.order_by("id").first()
    flagged.flags = ["unsafe"]
    flagged.save(update_fields=["flags"])
    snap = build_snapshot(project.pk)
    assert len(snap.examples) == 2 and flagged.pk not in snap.ranking_ids
    assert new_rankings_since_last_version(project.pk) == 2
    # A redelivered job rebuilds exactly the stored ids, whatever they are.
    assert build_snapshot(project.pk, ranking_ids=[flagged.pk]).ranking_ids == [flagged.pk]


def test_training_writes_a_safetensors_version_and_promotes_it(project, make_task, rater, rater2, tiny, model_root,
                                                              lenient_gate):
    add_rankings(project, make_task, [rater, rater2], 12)
    result = run_training(project.pk, task_id="t-1", backbone=str(tiny), overrides=FAST)
    version = RewardModelVersion.objects.get(pk=result["version_id"])
    assert result["promoted"] and version.is_active and version.status == RewardModelVersion.READY
    assert registry.active_version(project) == version and version.number == 1
    files = {p.name for p in version.directory.iterdir()}
    assert {"model.safetensors", "config.json", "training_config.json", "snapshot.json", "metrics.json"} <= files
    assert not any(f.endswith((".bin", ".pkl", ".pt")) for f in files)
    assert not [p for p in version.directory.parent.iterdir() if p.name.startswith(".tmp")]
    for key in ("heldout_accuracy", "ece_before", "ece_after", "temperature", "loss_curve", "length_correlation",
                "truncated", "reliability_after", "heldout_pairs"):
        assert key in version.metrics
    assert len(version.metrics["loss_curve"]) == version.metrics["train_pairs"] // 6 // 4 + (
        1 if version.metrics["train_rankings"] % 4 else 0)
    snap = json.loads((version.directory / "snapshot.json").read_text())
    assert snap["sha256"] == version.snapshot["sha256"] and snap["n_rankings"] == 24
    run = TrainingRun.objects.get(celery_task_id="t-1")
    assert run.status == TrainingRun.SUCCEEDED and run.progress == 1.0 and run.version == version
    assert not TrainingLock.objects.exists()
    scores = scoring.score(version, ["q", "q"], ["a clear and correct answer", "wrong nonsense"])
    assert scores.shape == (2,)
    assert scoring.embed(version, ["q"], ["a"]).shape == (1, 32)


def test_redelivered_job_never_writes_a_second_version(project, make_task, rater, tiny):
    add_rankings(project, make_task, [rater], 8)
    first = run_training(project.pk, task_id="same", backbone=str(tiny), overrides=FAST)
    again = run_training(project.pk, task_id="same", backbone=str(tiny), overrides=FAST)
    assert again["version_id"] == first["version_id"] and again.get("already_done")
    assert RewardModelVersion.objects.filter(project=project).count() == 1


def test_truncation_is_counted_not_dropped(project, make_task, rater, tiny):
    add_rankings(project, make_task, [rater], 6)
    for prompt in project.prompts.all():
        prompt.text = "background " * 80
        prompt.save()
    result = run_training(project.pk, backbone=str(tiny), overrides={**FAST, "max_length": 24})
    version = RewardModelVersion.objects.get(pk=result["version_id"])
    assert version.metrics["truncated"] == 6 * 4
    assert version.metrics["train_rankings"] + version.metrics["heldout_rankings"] == 6


def test_lock_allows_one_training_per_project(project, make_task, rater, tiny):
    add_rankings(project, make_task, [rater], 6)
    assert locks.acquire(project.pk, "worker-a")
    assert not locks.acquire(project.pk, "worker-b")
    assert locks.acquire(project.pk, "worker-a")  # the same job (a redelivery) takes its lock back
    skipped = run_training(project.pk, task_id="worker-b", backbone=str(tiny), overrides=FAST)
    assert skipped["version_id"] is None and skipped["skipped"]
    assert TrainingRun.objects.get(celery_task_id="worker-b").status == TrainingRun.SKIPPED
    TrainingLock.objects.filter(project=project).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert locks.acquire(project.pk, "worker-b")  # an expired lock (dead worker) is taken over
    locks.release(project.pk, "worker-b")
    assert not TrainingLock.objects.exists()


def test_promotion_rule_and_rollback(project, make_task, rater, rater2, tiny, lenient_gate):
    add_rankings(project, make_task, [rater, rater2], 10)
    v1 = RewardModelVersion.objects.get(pk=run_training(project.pk, backbone=str(tiny), overrides=FAST)["version_id"])
    second = run_training(project.pk, backbone=str(tiny), overrides={**FAST, "seed": 4, "lr": 1e-7})
    v2 = RewardModelVersion.objects.get(pk=second["version_id"])
    assert v2.parent == v1 and v2.number == 2
    m = v2.metrics
    assert m["active_version"] == 1 and "flip_rate_vs_parent" in m
    above_chance = "does not clear chance" not in v2.gate_reason
    assert second["promoted"] == (above_chance and v2.gate["ci_high"] >= -v2.gate["margin"])
    assert second["reason"] == v2.gate_reason
    assert v2.gate["accuracy_delta"] == pytest.approx(m["heldout_accuracy"] - m["active_heldout_accuracy"])
    assert v2.status == (RewardModelVersion.READY if second["promoted"] else RewardModelVersion.REJECTED)
    registry.promote(v2, by="manager")
    assert registry.active_version(project) == v2
    v2.refresh_from_db()
    assert v2.gate["manual"] and v2.gate_reason.startswith("promoted by hand by manager")
    assert RewardModelVersion.objects.filter(project=project, is_active=True).count() == 1
    assert registry.rollback(project) == v1
    assert registry.active_version(project) == v1
    with pytest.raises(ValueError):
        registry.rollback(project)


@pytest.mark.django_db(transaction=True)
def test_killed_worker_leaves_active_model_intact_and_resumes(project, make_task, rater, rater2, tiny, model_root,
                                                               tmp_path, lenient_gate, sigkill_when, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("needs a database a subprocess can share (PostgreSQL)")
    add_rankings(project, make_task, [rater, rater2], 8)
    v1 = RewardModelVersion.objects.get(pk=run_training(project.pk, backbone=str(tiny), overrides=FAST)["version_id"])
    add_rankings(project, make_task, [rater], 4, seed=5)
    monkeypatch.setenv("VERDICT_CHECKPOINT_EVERY", "1")  # the worker checkpoints every step; killed after step 2
    kill_training_midway(sigkill_when, project, tiny, tmp_path, "killed-job", at_step=2)
    assert registry.active_version(project) == v1
    half = RewardModelVersion.objects.get(project=project, number=2)
    assert half.status == RewardModelVersion.TRAINING and not half.is_active
    assert not (half.directory / "config.json").exists()
    assert (v1.directory / "model.safetensors").is_file()
    assert TrainingRun.objects.get(celery_task_id="killed-job").status == TrainingRun.RUNNING
    # The broker redelivers the same message (same task id): it takes over the lock and finishes that version.
    again = run_training(project.pk, task_id="killed-job", backbone=str(tiny), overrides=FAST)
    assert again["version_id"] == half.pk
    half.refresh_from_db()
    assert half.status in (RewardModelVersion.READY, RewardModelVersion.REJECTED)
    assert RewardModelVersion.objects.filter(project=project).count() == 2
    assert (half.directory / "model.safetensors").is_file()
    assert half.metrics["resumed_from_step"] == 2  # from the killed worker's last checkpoint, not from scratch
    assert not (half.directory / "checkpoint.pt").exists()


def test_all_tied_rankings_do_not_count_as_new_forever(project, make_task, rater):
    from rewardmodel.training import new_rankings_since_last_version

    add_rankings(project, make_task, [rater], 3)
    task = make_task(project)
    ids = list(task.completions.values_list("id", flat=True))
    a = Assignment.objects.create(task=task, rater=rater, status=Assignment.SUBMITTED,
                                  expires_at=timezone.now() + timedelta(minutes=5), display_order=ids)
    tied = Ranking.objects.create(assignment=a, task=task, rater=rater, order=[ids], display_order=ids)
    snap = build_snapshot(project.pk)
    assert snap.skipped_ids == [tied.pk] and tied.pk not in snap.ranking_ids
    assert new_rankings_since_last_version(project.pk) == 4
    RewardModelVersion.objects.create(project=project, number=1, status=RewardModelVersion.READY, path="v1",
                                      base_model="tiny", job_key="k1", snapshot=snap.describe(*snap.split(0.25, 0)))
    assert new_rankings_since_last_version(project.pk) == 0
