"""Celery tasks (queue `gpu`): a round after every retrain, and rounds on demand."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from active_learning.models import ActiveLearningPolicy, SelectionRound
from active_learning.pipeline import create_round, execute_round
from annotation.models import Project

log = logging.getLogger(__name__)
SOFT_LIMIT, HARD_LIMIT = settings.VERDICT_AL_SOFT_TIME_LIMIT, settings.VERDICT_AL_TIME_LIMIT


def _report(rnd: SelectionRound) -> dict:
    return {"round_id": rnd.pk, "status": rnd.status, "selected": rnd.summary.get("selected", 0)}


@shared_task(name="active_learning.tasks.route_after_training", soft_time_limit=SOFT_LIMIT, time_limit=HARD_LIMIT)
def route_after_training(result: dict) -> dict:
    """Chained after `rewardmodel` training with its result {"project_id", "version_id", "promoted"}.

    Runs one round with the project's policy.  A redelivered message for the same training run finds the
    round it already created (dedupe key 'trained:<version id>') and does not route twice.
    """
    if not isinstance(result, dict) or "project_id" not in result:
        raise ValueError(f"expected the training result dict with project_id, got {result!r}")
    if result.get("interrupted"):  # a worker shutdown: the training was requeued, and routes when it finishes
        return {"round_id": None, "status": "training interrupted; requeued", "selected": 0}
    if not result.get("version_id"):  # skipped (another training ran) or given up: no new model to route by
        return {"round_id": None, "status": "no version trained", "selected": 0}
    project = Project.objects.get(pk=result["project_id"])
    policy = ActiveLearningPolicy.for_project(project)
    if not policy.enabled:
        return {"round_id": None, "status": "disabled", "selected": 0}
    key = f"trained:{result.get('version_id')}"
    rnd, _created = create_round(project, trigger=SelectionRound.AFTER_TRAINING, dedupe_key=key)
    return _report(execute_round(rnd))


@shared_task(name="active_learning.tasks.run_round", soft_time_limit=SOFT_LIMIT, time_limit=HARD_LIMIT)
def run_round(
    project_id: int,
    strategy: str | None = None,
    batch_size: int | None = None,
    round_id: int | None = None,
    seed: int | None = None,
    trigger: str = SelectionRound.ON_DEMAND,
) -> dict:
    """A round on demand (API, CLI) or on a schedule; `round_id` runs a round the API already queued."""
    if round_id is not None:
        rnd = SelectionRound.objects.get(pk=round_id, project_id=project_id)
    else:
        rnd, _ = create_round(Project.objects.get(pk=project_id), strategy, batch_size, trigger=trigger, seed=seed)
    return _report(execute_round(rnd))


@shared_task(name="active_learning.tasks.requeue_lost_rounds", acks_late=True, soft_time_limit=60, time_limit=90)
def requeue_lost_rounds() -> list[int]:
    """Put back on the queue the rounds still 'running' after the hard time limit: their worker is gone (no live
    worker lets a round run past it). Beat runs this every 2 minutes."""
    cutoff = timezone.now() - timedelta(seconds=HARD_LIMIT + 60)
    requeued = []
    for round_id in SelectionRound.objects.filter(status=SelectionRound.RUNNING, started_at__lt=cutoff).values_list(
            "pk", flat=True):
        with transaction.atomic():
            rnd = SelectionRound.objects.select_for_update(skip_locked=True).filter(
                pk=round_id, status=SelectionRound.RUNNING, started_at__lt=cutoff).first()
            if rnd is None:
                continue
            rnd.status, rnd.error, rnd.progress, rnd.stage = SelectionRound.QUEUED, "worker lost; requeued", 0.0, ""
            rnd.save(update_fields=["status", "error", "progress", "stage"])
            transaction.on_commit(lambda rnd=rnd: run_round.delay(rnd.project_id, round_id=rnd.pk))
        log.warning("active-learning round %s lost its worker; requeued", rnd.pk)
        requeued.append(rnd.pk)
    return requeued
