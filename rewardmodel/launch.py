"""Enqueue a training, chained with active-learning routing (referenced by name: another module owns it)."""

from __future__ import annotations

import celery

from rewardmodel.models import TrainingRun
from rewardmodel.tasks import train_reward_model

ROUTE_AFTER_TRAINING = "active_learning.tasks.route_after_training"


def launch_training(project, trigger: str = "manual", backbone: str | None = None, overrides: dict | None = None):
    """Queue train_reward_model → route_after_training; a TrainingRun row shows it as queued in the admin."""
    from celery import uuid

    task_id = uuid()
    run = TrainingRun.objects.create(project=project, celery_task_id=task_id, trigger=trigger, backbone=backbone or "",
                                     overrides=overrides)
    return send(run)


def queue_training(project, trigger: str = "manual", overrides: dict | None = None) -> TrainingRun:
    """A training asked for from a request: its row now, its job once the request's transaction commits."""
    from celery import uuid
    from django.db import transaction

    run = TrainingRun.objects.create(project=project, celery_task_id=uuid(), trigger=trigger, overrides=overrides)
    transaction.on_commit(lambda: send(run))
    return run


def send(run: TrainingRun):
    """Put a run's job on the queue under its own task id (a first launch, or a requeue of a lost one)."""
    signature = train_reward_model.s(run.project_id, run.trigger, run.backbone or None, run.overrides).set(
        task_id=run.celery_task_id)
    return celery.chain(signature, celery.signature(ROUTE_AFTER_TRAINING)).apply_async()
