"""Celery tasks of the annotation app (queue `default`): imports too big for a web request."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings


@shared_task(name="annotation.tasks.run_queued_import", acks_late=True, reject_on_worker_lost=True,
             soft_time_limit=settings.VERDICT_IMPORT_SOFT_TIME_LIMIT,
             time_limit=settings.VERDICT_IMPORT_SOFT_TIME_LIMIT + 60)
def run_queued_import(run_id: int) -> str:
    """Run a queued API import (annotation.import_runs.queue_import); a redelivery of a finished one does nothing."""
    from annotation.import_runs import run_queued

    return run_queued(int(run_id))
