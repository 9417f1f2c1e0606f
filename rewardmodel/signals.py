"""Signals rewardmodel sends so that higher apps can react without rewardmodel importing them.

Both are sent after the write they announce commits (``transaction.on_commit``), so a receiver reads what was
recorded. The notifications app listens (webhooks).

``training_finished`` is sent when a TrainingRun is recorded as succeeded or failed (``rewardmodel.training``).
``version_promoted`` is sent when a RewardModelVersion becomes the project's active one (``rewardmodel.registry``):
by the promotion gate or by hand (``by`` names the person; None for the gate), or by a rollback (``rollback`` True).
"""

from django.dispatch import Signal

training_finished = Signal()  # kwargs: run (a TrainingRun, succeeded or failed)
version_promoted = Signal()  # kwargs: version, by (str | None), rollback (bool)
