"""Celery tasks of the serving app (queue `default`): retention of captured samples."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="serving.tasks.purge_captured_samples", acks_late=True, soft_time_limit=600, time_limit=660)
def purge_captured_samples() -> int:
    """Delete captured samples past their project's retention (beat runs this daily)."""
    from serving.capture import purge

    return purge()
