"""Celery tasks: training on `gpu` (acks_late, killed-worker safe, one per project); the retrain check on `default`."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Q
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
    return run_training(int(project_id), task_id=task_id, trigger=trigger, backbone=backbone, overrides=overrides)


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


def _retrain_if_due(policy) -> bool:
    from rewardmodel.launch import launch_training
    from rewardmodel.models import TrainingRun
    from rewardmodel.training import new_rankings_since_last_version

    now = timezone.now()
    recent = now - timedelta(hours=6)  # an older queued/running row is a lost job, not a busy project
    # A running training heartbeats its project lock; a "running" row whose lock has expired belongs to a
    # worker that died (SIGKILL, OOM, lost host), whose message may not come back for hours: retrain now.
    busy = TrainingRun.objects.filter(project=policy.project, created_at__gte=recent).filter(
        Q(status=TrainingRun.QUEUED)
        | Q(status=TrainingRun.RUNNING, project__training_lock__expires_at__gt=now))
    if busy.exists():
        return False
    new = new_rankings_since_last_version(policy.project_id)
    if new < policy.min_new_rankings:
        return False
    log.info("retraining %s: %d new rankings", policy.project, new)
    launch_training(policy.project, trigger="schedule")
    return True
