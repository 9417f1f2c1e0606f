"""A portable (PostgreSQL and SQLite) per-project training lock: a DB row with an expiry refreshed by heartbeats.

The owner is the Celery task id, so a redelivered message (same id) takes over the lock of its dead predecessor
at once, while any other job waits until the lock is released or expires.
"""

from __future__ import annotations

import threading
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from config.db_retry import retrying
from rewardmodel.models import TrainingLock


def lock_ttl() -> timedelta:
    return timedelta(seconds=settings.VERDICT_RM_LOCK_TTL)


def acquire(project_id: int, owner: str) -> bool:
    now = timezone.now()
    expires = now + lock_ttl()
    try:
        with transaction.atomic():
            lock = TrainingLock.objects.select_for_update().filter(project_id=project_id).first()
            if lock is None:
                TrainingLock.objects.create(project_id=project_id, owner=owner, expires_at=expires)
                return True
            if lock.owner == owner or lock.expires_at <= now:
                TrainingLock.objects.filter(pk=project_id).update(owner=owner, expires_at=expires)
                return True
            return False
    except IntegrityError:  # another worker created the row between our read and insert
        return False


def heartbeat(project_id: int, owner: str) -> bool:
    """Extend the lock; False when someone else took it over (ours had expired). A dropped database connection is
    reopened and the heartbeat tried again (config.db_retry): a blip must not cost the training its lock."""
    return bool(retrying(lambda: TrainingLock.objects.filter(project_id=project_id, owner=owner)
                         .update(expires_at=timezone.now() + lock_ttl()), "the training lock's heartbeat"))


def release(project_id: int, owner: str) -> None:
    TrainingLock.objects.filter(project_id=project_id, owner=owner).delete()


class KeepAlive:
    """Heartbeats the lock every third of its TTL from a background thread between start() and stop(), so loading,
    evaluation and saving (no training steps, hence no step heartbeats) keep it too. The thread dies with the
    process: a lost worker's lock expires within the TTL, and tasks.requeue_lost_trainings puts the job back."""

    def __init__(self, project_id: int, owner: str):
        self.project_id, self.owner = project_id, owner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lock-{project_id}", daemon=True)

    def start(self) -> KeepAlive:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            while not self._stop.wait(max(1.0, settings.VERDICT_RM_LOCK_TTL / 3)):
                if not heartbeat(self.project_id, self.owner):
                    return
        finally:
            connection.close()  # this thread's own database connection
