"""A portable (PostgreSQL and SQLite) per-project training lock: a DB row with an expiry refreshed by heartbeats.

The owner is the Celery task id, so a redelivered message (same id) takes over the lock of its dead predecessor
at once, while any other job waits until the lock is released or expires.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

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
    """Extend the lock; False when someone else took it over (ours had expired)."""
    return bool(TrainingLock.objects.filter(project_id=project_id, owner=owner)
                .update(expires_at=timezone.now() + lock_ttl()))


def release(project_id: int, owner: str) -> None:
    TrainingLock.objects.filter(project_id=project_id, owner=owner).delete()
