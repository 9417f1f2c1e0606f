"""Warm shutdown for long jobs: when a Celery worker is asked to stop (SIGTERM: a deploy, `docker stop`, a
Kubernetes eviction), a running training checkpoints at its next step and gives its job back, instead of holding the
worker until its grace period ends in SIGKILL.

The worker's main process receives SIGTERM; the task may run in a pool child that does not. So the main process
leaves a marker file named after its pid (``worker_shutting_down``), and the training polls ``requested()``, which
looks for a marker of its own process or of its parent, once per step (one stat call).
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings


def _marker(pid: int) -> Path:
    return Path(settings.VAR_DIR) / "shutdown" / str(pid)


def announce() -> None:
    """This process (a worker's main process) is shutting down."""
    path = _marker(os.getpid())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def clear() -> None:
    """A worker starting under a reused pid must not inherit an old marker."""
    _marker(os.getpid()).unlink(missing_ok=True)


def requested() -> bool:
    return _marker(os.getpid()).exists() or _marker(os.getppid()).exists()
