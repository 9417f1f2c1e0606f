"""A training rides out a dropped database connection (config.db_retry) instead of failing and spending a delivery,
and checkpoints by time as well as by step. On main, pg_terminate_backend during step 6/80 failed the task with
OperationalError; the sweep requeued it as attempt 3 of 3, from step 1 (the first checkpoint was at step 50)."""

from __future__ import annotations

import pytest
from django.db import connection

from rewardmodel.backbones import load_backbone
from rewardmodel.models import RewardModelVersion, TrainingRun
from rewardmodel.trainer import TrainConfig, train
from rewardmodel.training import run_training
from tests.test_rewardmodel_training import FAST, add_rankings


def terminate_backends_of_this_test() -> int:
    """What an operator's pg_terminate_backend (or a failover) does: every connection to the test database, ours
    included, is closed by the server. Returns how many were."""
    import psycopg

    db = connection.settings_dict
    with psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
                         dbname="postgres", autocommit=True) as admin:
        rows = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND "
                             "pid <> pg_backend_pid()", [db["NAME"]]).fetchall()
    return len(rows)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("model_root")
def test_a_dropped_connection_mid_training_costs_no_delivery(project, make_task, rater, rater2, tiny, lenient_gate):
    if connection.vendor != "postgresql":
        pytest.skip("pg_terminate_backend is PostgreSQL's")
    add_rankings(project, make_task, [rater, rater2], 8)
    dropped = []

    def hook(step, total, loss):
        if step == 2 and not dropped:
            dropped.append(terminate_backends_of_this_test())

    result = run_training(project.pk, task_id="blip-1", backbone=str(tiny),
                          overrides={**FAST, "batch_rankings": 1, "epochs": 2}, progress_hook=hook)
    assert dropped and dropped[0] >= 1
    run = TrainingRun.objects.get(celery_task_id="blip-1")
    assert run.status == TrainingRun.SUCCEEDED and run.attempts == 1, run.message
    assert RewardModelVersion.objects.get(pk=result["version_id"]).status == RewardModelVersion.READY


def test_checkpoints_come_by_time_as_well_as_by_step(tiny):
    from tests.test_rewardmodel_units import examples as synthetic

    examples = synthetic(12, seed=1)
    config = TrainConfig(lr=1e-3, batch_rankings=2, max_length=32, device="cpu")
    by_step, by_time, never = [], [], []
    train(*load_backbone(tiny), examples, config, checkpoint=by_step.append, checkpoint_every=4)
    train(*load_backbone(tiny), examples, config, checkpoint=by_time.append, checkpoint_every=0,
          checkpoint_every_s=1e-9)
    result = train(*load_backbone(tiny), examples, config, checkpoint=never.append, checkpoint_every=0,
                   checkpoint_every_s=3600)
    assert [s["step"] for s in by_step] == [4]
    assert [s["step"] for s in by_time] == list(range(1, result.steps))  # every step but the last
    assert never == []
