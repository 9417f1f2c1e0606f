"""The Celery app shared by web processes, CPU workers (queue `default`) and GPU workers (queue `gpu`)."""

import os

from celery import Celery
from celery.signals import beat_init, worker_init, worker_shutting_down
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("verdict")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("gpu"))
app.autodiscover_tasks()


def ensure_periodic_task(name: str, task: str, every_seconds: int, queue: str = "default") -> None:
    """A django-celery-beat entry (editable in the admin), created once by an app's post_migrate."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    if every_seconds % 60 == 0:  # shown as "every 10 minutes" in the admin
        every, _ = IntervalSchedule.objects.get_or_create(every=every_seconds // 60, period=IntervalSchedule.MINUTES)
    else:
        every, _ = IntervalSchedule.objects.get_or_create(every=every_seconds, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": every, "queue": queue})


@beat_init.connect
def _one_beat_only(sender=None, **kwargs) -> None:
    """A second beat would send every scheduled task twice: it exits instead (config/beat_lock.py)."""
    import sys

    from config.beat_lock import BeatAlreadyRunning, acquire

    try:
        acquire()
    except BeatAlreadyRunning as exc:
        print(f"beat: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


@worker_init.connect
def _forget_old_shutdown(**kwargs) -> None:
    from config import shutdown

    shutdown.clear()


@worker_shutting_down.connect
def _announce_shutdown(**kwargs) -> None:
    """Long trainings checkpoint and give their job back at their next step (config/shutdown.py)."""
    from config import shutdown

    shutdown.announce()


@app.task(name="verdict.ping")
def ping() -> str:
    """A no-op used by health checks and tests to prove a worker consumes the queue."""
    return "pong"
