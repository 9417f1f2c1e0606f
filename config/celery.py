"""The Celery app shared by web processes, CPU workers (queue `default`) and GPU workers (queue `gpu`)."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("verdict")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("gpu"))
app.autodiscover_tasks()


@app.task(name="verdict.ping")
def ping() -> str:
    """A no-op used by health checks and tests to prove a worker consumes the queue."""
    return "pong"
