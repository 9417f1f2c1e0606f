"""Enqueue a training, chained with active-learning routing (referenced by name: another module owns it)."""

from __future__ import annotations

import celery
from django.db import transaction

from annotation.models import Project
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

    run = TrainingRun.objects.create(project=project, celery_task_id=uuid(), trigger=trigger, overrides=overrides)
    transaction.on_commit(lambda: send(run))
    return run


class TrainingBusy(Exception):
    """A training of the project is queued or running: the caller answers 409 and names it."""


def train_now(project, trigger: str = "manual", overrides: dict | None = None) -> TrainingRun:
    """Train now (the API's POST, the admin's button and action): queue_training, unless a training of the project
    is queued or running (TrainingBusy)."""
    with transaction.atomic():
        # The project row is the lock: two clicks at once must not both find no run and queue two.
        Project.objects.select_for_update().filter(pk=project.pk).first()
        busy = TrainingRun.objects.filter(project=project, status__in=[TrainingRun.QUEUED, TrainingRun.RUNNING]).first()
        if busy is not None:
            raise TrainingBusy(f"training run {busy.pk} of this project is still {busy.status}; follow it, then "
                               "train again")
        return queue_training(project, trigger=trigger, overrides=overrides)


def send(run: TrainingRun):
    """Put a run's job on the queue under its own task id (a first launch, or a requeue of a lost one)."""
    signature = train_reward_model.s(run.project_id, run.trigger, run.backbone or None, run.overrides).set(
        task_id=run.celery_task_id)
    return celery.chain(signature, celery.signature(ROUTE_AFTER_TRAINING)).apply_async()
