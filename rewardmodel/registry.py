"""The versioned reward-model registry: which version is active, promotion and rollback.

Promotion rule: a new version is promoted when the project has no active version, or when its held-out pairwise
accuracy is at least the active version's accuracy on the *same* held-out pairs (the new version's held-out split,
scored by both). With no held-out pairs there is nothing to compare, so it is promoted only if nothing is active.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from rewardmodel.models import RewardModelVersion


def active_version(project) -> RewardModelVersion | None:
    project_id = getattr(project, "pk", project)
    return RewardModelVersion.objects.filter(project_id=project_id, is_active=True).first()


def should_promote(new_accuracy: float | None, active_accuracy: float | None, has_active: bool) -> bool:
    if not has_active:
        return True
    if new_accuracy is None or active_accuracy is None:
        return False
    return new_accuracy >= active_accuracy


def promote(version: RewardModelVersion) -> RewardModelVersion:
    """Make `version` the project's only active version (any ready or rejected version may be promoted by hand)."""
    if version.status not in (RewardModelVersion.READY, RewardModelVersion.REJECTED):
        raise ValueError(f"version {version.number} is {version.status}; only finished versions can be promoted")
    if not (version.directory / "config.json").is_file():
        raise FileNotFoundError(f"weights of version {version.number} are missing at {version.directory}")
    with transaction.atomic():
        RewardModelVersion.objects.select_for_update().filter(project_id=version.project_id)
        RewardModelVersion.objects.filter(project_id=version.project_id, is_active=True).exclude(
            pk=version.pk).update(is_active=False)
        version.is_active = True
        version.status = RewardModelVersion.READY
        version.promoted_at = timezone.now()
        version.save(update_fields=["is_active", "status", "promoted_at"])
    return version


def rollback(project) -> RewardModelVersion:
    """Re-activate the most recently promoted version before the active one; raises if there is none."""
    current = active_version(project)
    if current is None:
        raise ValueError("the project has no active reward model to roll back")
    previous = (RewardModelVersion.objects.filter(project_id=current.project_id, promoted_at__isnull=False,
                                                  status=RewardModelVersion.READY)
                .exclude(pk=current.pk).filter(promoted_at__lte=current.promoted_at).order_by("-promoted_at").first())
    if previous is None:
        raise ValueError("no earlier promoted version to roll back to")
    with transaction.atomic():
        RewardModelVersion.objects.filter(pk=current.pk).update(is_active=False)
        previous.is_active = True
        previous.save(update_fields=["is_active"])
    return previous
