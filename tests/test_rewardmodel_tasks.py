"""Celery task guards on the real services: the retrain decision under a row lock (two checks at once launch one
training), and the cap on deliveries of a job whose worker keeps getting lost."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections

from active_learning.models import SelectionRound
from active_learning.pipeline import execute_round
from annotation.assignment import next_assignment
from annotation.submission import RankingPayload, submit_ranking
from rewardmodel import tasks, training
from rewardmodel.models import RetrainPolicy, RewardModelVersion, TrainingRun


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_two_retrain_checks_at_once_launch_one_training(project, rater, make_task, monkeypatch):
    from config.celery import app

    make_task(project)
    a = next_assignment(project, rater)
    submit_ranking(a, RankingPayload(order=[[c] for c in a.display_order]))
    RetrainPolicy.objects.create(project=project, enabled=True, min_new_rankings=1)
    real_count = training.new_rankings_since_last_version

    def slow_count(project_id):  # widen the check-then-act window that the lock closes
        time.sleep(0.5)
        return real_count(project_id)

    monkeypatch.setattr(training, "new_rankings_since_last_version", slow_count)
    results, barrier = [], threading.Barrier(2)

    def check():
        barrier.wait()
        try:
            results.append(tasks.check_retrain_schedules())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=check) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(results) == [[], [project.pk]]
        assert TrainingRun.objects.filter(project=project).count() == 1
        assert tasks.check_retrain_schedules() == []  # and later checks see the queued run
    finally:
        app.control.purge()  # the launched job must not reach another test's worker


@pytest.mark.django_db
def test_a_training_whose_worker_is_lost_every_time_is_given_up(project, settings):
    run = TrainingRun.objects.create(project=project, celery_task_id="lost-job",
                                     attempts=settings.VERDICT_MAX_DELIVERIES)
    result = training.run_training(project.pk, task_id="lost-job")
    run.refresh_from_db()
    assert run.status == TrainingRun.FAILED and "gave up: started 4 times" in run.message
    assert result["version_id"] is None and "gave_up" in result and not RewardModelVersion.objects.exists()


@pytest.mark.django_db
def test_a_round_whose_worker_is_lost_every_time_is_given_up(project, settings):
    rnd = SelectionRound.objects.create(project=project, strategy="random", batch_size=1,
                                        status=SelectionRound.RUNNING, attempts=settings.VERDICT_MAX_DELIVERIES)
    rnd = execute_round(rnd)
    assert rnd.status == SelectionRound.FAILED and rnd.error.startswith("gave up: started 4 times")
    assert not rnd.items.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs a database a subprocess can share")
@pytest.mark.timeout(300)
@pytest.mark.django_db(transaction=True)
def test_a_training_whose_worker_was_killed_is_requeued_within_minutes_and_finished_once(
        project, make_task, rater, rater2, tiny, model_root, tmp_path, lenient_gate, sigkill_when, settings,
        monkeypatch):
    """kill -9 of the process running a training: its lock lapses (no keep-alive thread any more), the reaper puts
    the job back under its own task id, a real worker over Redis finishes it, and the version is written once."""
    from celery.contrib.testing.worker import start_worker

    from active_learning.models import ActiveLearningPolicy
    from config.celery import app
    from tests.test_rewardmodel_training import FAST, add_rankings, kill_training_midway

    if not settings.REDIS_URL:
        pytest.skip("needs Redis")
    settings.VERDICT_RM_LOCK_TTL = 3
    monkeypatch.setenv("VERDICT_RM_LOCK_TTL", "3")
    ActiveLearningPolicy.objects.create(project=project, enabled=False)
    add_rankings(project, make_task, [rater, rater2], 8)
    run = TrainingRun.objects.create(project=project, celery_task_id="killed-job", trigger="manual",
                                     backbone=str(tiny), overrides=FAST)
    kill_training_midway(sigkill_when, project, tiny, tmp_path, "killed-job")
    run.refresh_from_db()
    assert run.status == TrainingRun.RUNNING and run.attempts == 1
    assert tasks.requeue_lost_trainings() == []  # the lock has not lapsed yet: it may still be alive

    time.sleep(4)  # past the TTL: nothing renews a dead process' lock
    try:
        with start_worker(app, queues=["default", "gpu"], perform_ping_check=False, concurrency=1, pool="solo",
                          shutdown_timeout=30):
            assert tasks.requeue_lost_trainings() == [run.pk]
            assert tasks.requeue_lost_trainings() == []  # once
            deadline = time.monotonic() + 180
            while TrainingRun.objects.get(pk=run.pk).status in (TrainingRun.QUEUED, TrainingRun.RUNNING):
                assert time.monotonic() < deadline, "the requeued training never finished"
                time.sleep(0.5)
        run.refresh_from_db()
        assert run.status == TrainingRun.SUCCEEDED and run.attempts == 2, run.message
        assert RewardModelVersion.objects.filter(project=project).count() == 1
        # A late redelivery of the original message (the broker's visibility timeout) changes nothing.
        late = training.run_training(project.pk, task_id="killed-job", backbone=str(tiny), overrides=FAST)
        assert late["already_done"] and late["version_id"] == run.version_id
        assert TrainingRun.objects.get(pk=run.pk).attempts == 2
    finally:
        app.control.purge()


@pytest.mark.django_db
def test_a_round_still_running_after_its_hard_limit_is_requeued(project, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    from active_learning.tasks import HARD_LIMIT, requeue_lost_rounds
    from config.celery import app

    old = timezone.now() - timedelta(seconds=HARD_LIMIT + 120)
    lost = SelectionRound.objects.create(project=project, strategy="random", batch_size=1,
                                         status=SelectionRound.RUNNING, started_at=old)
    fresh = SelectionRound.objects.create(project=project, strategy="random", batch_size=1,
                                          status=SelectionRound.RUNNING, started_at=timezone.now())
    try:
        with django_capture_on_commit_callbacks(execute=True) as sent:
            assert requeue_lost_rounds() == [lost.pk]
        assert len(sent) == 1  # run_round for that round, on the broker
        lost.refresh_from_db()
        fresh.refresh_from_db()
        assert lost.status == SelectionRound.QUEUED and lost.error == "worker lost; requeued"
        assert fresh.status == SelectionRound.RUNNING
    finally:
        app.control.purge()


@pytest.fixture
def worker_mid_training(project, make_task, rater, rater2, tiny, model_root, lenient_gate, settings, tmp_path):
    """A real Celery worker process (queue gpu, prefork) on this test's database and Redis, already 20 steps into a
    training launched as the platform does; yields (worker process, its TrainingRun). Lock TTL 3 s."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from active_learning.models import ActiveLearningPolicy
    from config.celery import app
    from rewardmodel.launch import launch_training
    from tests.test_rewardmodel_training import FAST, add_rankings

    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip("needs PostgreSQL and Redis, shared with a worker process")
    settings.VERDICT_RM_LOCK_TTL = 3
    ActiveLearningPolicy.objects.create(project=project, enabled=False)
    add_rankings(project, make_task, [rater, rater2], 8)
    db = connection.settings_dict
    env = {**os.environ, "VERDICT_MODE": "test", "VERDICT_MODEL_ROOT": str(model_root), "VERDICT_RM_LOCK_TTL": "3",
           "VERDICT_VAR_DIR": str(tmp_path),
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"}
    worker = subprocess.Popen([str(Path(sys.executable).parent / "celery"), "-A", "config", "worker", "-Q", "gpu",
                               "--concurrency", "1", "--loglevel", "INFO"], cwd=Path(__file__).resolve().parents[1],
                              env=env, start_new_session=True)
    try:
        launch_training(project, backbone=str(tiny), overrides={**FAST, "epochs": 20, "batch_rankings": 1})
        run = TrainingRun.objects.get(project=project)
        deadline = time.monotonic() + 120
        while TrainingRun.objects.get(pk=run.pk).step < 20:
            assert worker.poll() is None and time.monotonic() < deadline, "the training never got going"
            time.sleep(0.2)
        yield worker, run
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        app.control.purge()  # nothing left for another test's worker


def _finish_with_a_new_worker(run: TrainingRun, reap: bool = False) -> list[int]:
    """Run an in-process worker until the run succeeds (calling the reaper as beat would, if asked)."""
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    requeued = []
    with start_worker(app, queues=["gpu", "default"], perform_ping_check=False, concurrency=1, pool="solo",
                      shutdown_timeout=30):
        deadline = time.monotonic() + 180
        while TrainingRun.objects.get(pk=run.pk).status != TrainingRun.SUCCEEDED:
            assert time.monotonic() < deadline, f"the training never finished: {TrainingRun.objects.get(pk=run.pk)}"
            if reap:
                requeued += tasks.requeue_lost_trainings()
            time.sleep(0.5)
    return requeued


@pytest.mark.timeout(300)
@pytest.mark.django_db(transaction=True)
def test_sigterm_checkpoints_a_training_and_the_next_worker_resumes_it(worker_mid_training):
    """SIGTERM to a real worker mid-training: at its next step the training saves a checkpoint, puts its job back
    and the worker exits at once (no wait for the whole training); another worker resumes from that step."""
    import os
    import signal

    worker, run = worker_mid_training
    stopped_at = time.monotonic()
    os.kill(worker.pid, signal.SIGTERM)
    worker.wait(timeout=60)
    assert time.monotonic() - stopped_at < 30  # a warm shutdown that did not wait for the whole training
    run.refresh_from_db()
    assert run.status == TrainingRun.QUEUED and "checkpoint saved" in run.message, run.message
    version = RewardModelVersion.objects.get(project=run.project)
    assert version.status == RewardModelVersion.TRAINING and (version.directory / "checkpoint.pt").is_file()
    interrupted_at = run.step
    assert 20 <= interrupted_at < run.total

    assert _finish_with_a_new_worker(run) == []
    run.refresh_from_db()
    version.refresh_from_db()
    assert run.attempts == 1, run.message  # a hand-over, not a lost delivery
    assert version.metrics["resumed_from_step"] == interrupted_at
    assert len(version.metrics["loss_curve"]) == run.total and RewardModelVersion.objects.count() == 1
    assert not (version.directory / "checkpoint.pt").exists()


@pytest.mark.timeout(300)
@pytest.mark.django_db(transaction=True)
def test_kill_9_of_a_workers_main_process_mid_training_ends_with_one_finished_training(worker_mid_training):
    """SIGKILL of a real worker's main process (and, as a lost host would, of its pool child): the message stays
    unacknowledged in Redis for hours, but the lock lapses, the reaper requeues the run and another worker
    finishes it: one version, the run succeeded."""
    import os
    import signal

    worker, run = worker_mid_training
    os.killpg(worker.pid, signal.SIGKILL)  # the main process and its pool child: nothing runs any more
    worker.wait(timeout=30)
    lost_at = time.monotonic()
    assert _finish_with_a_new_worker(run, reap=True) == [run.pk]
    run.refresh_from_db()
    assert run.attempts == 2 and RewardModelVersion.objects.filter(project=run.project).count() == 1
    assert time.monotonic() - lost_at < 120
