"""Celery tasks of the serving app (queue `default`): retention of captured samples, the Goodhart watch."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="serving.tasks.purge_captured_samples", acks_late=True, soft_time_limit=600, time_limit=660)
def purge_captured_samples() -> int:
    """Delete captured samples past their project's retention (beat runs this daily)."""
    from serving.capture import purge

    return purge()


@shared_task(name="serving.tasks.watch_policy_runs", acks_late=True, soft_time_limit=900, time_limit=960)
def watch_policy_runs() -> int:
    """A pass of the Goodhart watch over every capturing project's policy runs (beat, every 10 minutes)."""
    from serving.watch import watch_all

    return watch_all()
