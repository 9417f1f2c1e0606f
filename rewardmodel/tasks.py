"""Celery tasks: training on `gpu` (acks_late, killed-worker safe, one per project); the retrain check on `default`."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

log = logging.getLogger(__name__)

SOFT_LIMIT = settings.VERDICT_RM_SOFT_TIME_LIMIT
HARD_LIMIT = settings.VERDICT_RM_TIME_LIMIT


@shared_task(name="rewardmodel.tasks.train_reward_model", bind=True, acks_late=True, reject_on_worker_lost=True,
             soft_time_limit=SOFT_LIMIT, time_limit=HARD_LIMIT)
def train_reward_model(self, project_id: int, trigger: str = "manual", backbone: str | None = None,
                       overrides: dict | None = None) -> dict:
    """Train a version for the project; a redelivered message (same task id) resumes instead of duplicating."""
    from rewardmodel.training import run_training

    task_id = self.request.id or None
    return run_training(int(project_id), task_id=task_id, trigger=trigger, backbone=backbone, overrides=overrides,
                        worker=self.request.hostname or "")


@shared_task(name="rewardmodel.tasks.check_retrain_schedules", acks_late=True, soft_time_limit=120, time_limit=150)
def check_retrain_schedules() -> list[int]:
    """Launch training for every enabled policy whose project got ≥ min_new_rankings since its last version.

    Each project's decision is taken holding its policy row (SELECT … FOR UPDATE SKIP LOCKED): two workers (or two
    beats) checking at once cannot both launch; the second skips the project, then sees the queued run.
    """
    from rewardmodel.models import RetrainPolicy

    launched = []
    for policy_id in RetrainPolicy.objects.filter(enabled=True).values_list("pk", flat=True):
        with transaction.atomic():
            policy = (RetrainPolicy.objects.select_for_update(skip_locked=True, of=("self",))
                      .select_related("project").filter(pk=policy_id, enabled=True).first())
            if policy is not None and _retrain_if_due(policy):
                launched.append(policy.project_id)
    return launched


@shared_task(name="rewardmodel.tasks.requeue_lost_trainings", acks_late=True, soft_time_limit=60, time_limit=90)
def requeue_lost_trainings() -> list[int]:
    """Put back on the queue, under their own task id, the runs whose worker was lost (kill -9, OOM, a lost host).

    A live training keeps its project lock fresh from a background thread (locks.KeepAlive); a RUNNING run whose
    lock has lapsed, started longer than one TTL ago, has no worker. Beat runs this every 2 minutes, so such a job is
    back within TTL + 2 min instead of the broker's visibility timeout (hours). Should the broker also redeliver the
    old message later, run_training finds the run finished and does nothing.
    """
    from rewardmodel.models import TrainingRun

    return _requeue_lost_among(TrainingRun.objects.all())


def _requeue_lost_among(runs) -> list[int]:
    """Requeue every lost run of `runs` (the beat task: all runs; the retrain check: its project's); their ids."""
    return [run_id for run_id in _lost_runs(runs).values_list("pk", flat=True) if _requeue_lost(run_id)]


def _lost_runs(runs):
    """RUNNING runs whose worker is gone: their project lock (heartbeated by a live training) has lapsed, and they
    started more than one lock TTL ago (a run that just started may not hold its lock yet)."""
    from rewardmodel.models import TrainingRun

    now = timezone.now()
    alive = Q(project__training_lock__owner=F("celery_task_id"), project__training_lock__expires_at__gt=now)
    return runs.filter(status=TrainingRun.RUNNING,
                       started_at__lt=now - timedelta(seconds=settings.VERDICT_RM_LOCK_TTL)).exclude(alive)


def _requeue_lost(run_id: int) -> bool:
    """Put one lost run back on the queue under its own task id (it resumes from its checkpoint); False if it is not
    lost after all, or another check got there first."""
    from rewardmodel.launch import send
    from rewardmodel.models import TrainingRun

    with transaction.atomic():
        run = _lost_runs(TrainingRun.objects.select_for_update(skip_locked=True, of=("self",))).filter(
            pk=run_id).first()
        if run is None:
            return False
        run.status, run.started_at = TrainingRun.QUEUED, None
        run.message = f"worker lost at step {run.step}/{run.total}; requeued (delivery {run.attempts + 1})"
        run.save(update_fields=["status", "started_at", "message"])
        transaction.on_commit(lambda run=run: send(run))
    log.warning("training run %s lost its worker; requeued as %s", run.pk, run.celery_task_id)
    return True


def _retrain_if_due(policy) -> bool:
    from rewardmodel.launch import launch_training
    from rewardmodel.models import TrainingRun
    from rewardmodel.training import new_rankings_since_last_version

    recent = timezone.now() - timedelta(hours=6)  # an older queued/running row is a lost job, not a busy project
    project_runs = TrainingRun.objects.filter(project=policy.project, created_at__gte=recent)
    # A run whose worker died is given back to the queue now (it resumes from its checkpoint) rather than trained a
    # second time from scratch next to its own redelivery; it keeps the project busy like any queued run.
    _requeue_lost_among(project_runs)
    if project_runs.filter(status__in=[TrainingRun.QUEUED, TrainingRun.RUNNING]).exists():
        return False
    new = new_rankings_since_last_version(policy.project_id)
    if new < policy.min_new_rankings:
        return False
    log.info("retraining %s: %d new rankings", policy.project, new)
    launch_training(policy.project, trigger="schedule")
    return True
