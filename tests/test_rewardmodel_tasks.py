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
