"""The versioned reward-model registry: which version is active, promotion and rollback.

Whether a freshly trained version is promoted is the promotion gate's call (``rewardmodel.gate``); an ML engineer
may still promote any finished version by hand (the admin action), which is recorded on the version.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from rewardmodel import gate
from rewardmodel.backbones import holds_model
from rewardmodel.models import RewardModelVersion
from rewardmodel.signals import version_promoted


def active_version(project) -> RewardModelVersion | None:
    project_id = getattr(project, "pk", project)
    return RewardModelVersion.objects.filter(project_id=project_id, is_active=True).first()


def version_for_routing(project) -> tuple[RewardModelVersion | None, str]:
    """The active version if it may drive active-learning routing (the gate's minimum sizes), else None and why."""
    version = active_version(project)
    if version is None:
        return None, "no active reward model"
    why_not = gate.ineligibility(gate.GateSettings.for_project(version.project_id),
                                 version.metrics.get("train_rankings"), version.metrics.get("heldout_pairs"))
    if why_not:
        return None, f"active version {version.number} not used ({why_not})"
    return version, ""


def promote(version: RewardModelVersion, by: str | None = None) -> RewardModelVersion:
    """Make `version` the project's only active version (any ready or rejected version may be promoted by hand).

    ``by`` names the person who promoted it by hand; the gate's record on the version then says so.
    """
    if version.status not in (RewardModelVersion.READY, RewardModelVersion.REJECTED):
        raise ValueError(f"version {version.number} is {version.status}; only finished versions can be promoted")
    if not holds_model(version.directory):
        raise FileNotFoundError(f"weights of version {version.number} are missing at {version.directory}")
    with transaction.atomic():
        RewardModelVersion.objects.select_for_update().filter(project_id=version.project_id)
        RewardModelVersion.objects.filter(project_id=version.project_id, is_active=True).exclude(
            pk=version.pk).update(is_active=False)
        version.is_active = True
        version.status = RewardModelVersion.READY
        version.promoted_at = timezone.now()
        fields = ["is_active", "status", "promoted_at"]
        if by is not None:
            earlier = version.gate.get("reason", "no gate decision")
            version.gate = {**version.gate, "promote": True, "manual": True,
                            "reason": f"promoted by hand by {by} (the gate had said: {earlier})"}
            fields.append("gate")
        version.save(update_fields=fields)
        # Once the promotion commits (with the training's registration when the gate promotes); robust: a listener
        # never undoes nor fails a promotion.
        transaction.on_commit(lambda: version_promoted.send(sender=RewardModelVersion, version=version, by=by,
                                                            rollback=False), robust=True)
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
        transaction.on_commit(lambda: version_promoted.send(sender=RewardModelVersion, version=previous, by=None,
                                                            rollback=True), robust=True)
    return previous
