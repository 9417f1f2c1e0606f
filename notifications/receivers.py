"""How notifications reacts to the lower apps' signals: each event becomes a delivery per subscribed webhook.

Every signal here is sent after its write commits (``transaction.on_commit``, robust), so the payload reads what was
recorded; a project without webhooks costs one query. The payloads carry ids, statuses and a few figures, never
text that raters or models wrote.
"""

from __future__ import annotations

from django.dispatch import receiver

from active_learning.signals import round_finished
from annotation.signals import import_finished
from notifications import delivery
from notifications.models import IMPORT_FINISHED, MODEL_PROMOTED, RATER_FLAGGED, ROUND_DONE, TRAINING_FINISHED
from quality.signals import rater_paused
from rewardmodel.signals import training_finished, version_promoted

MESSAGE_CHARS = 300  # a run's message or error, cut: the record is in Verdict


@receiver(import_finished, dispatch_uid="notifications-import-finished")
def on_import_finished(sender, run, **kwargs) -> None:
    delivery.enqueue(run.project_id, IMPORT_FINISHED, {
        "import_id": run.pk, "status": run.status, "source": run.source, "rows_done": run.rows_done,
        "rows_total": run.rows_total, "error_count": run.error_count,
        "tasks": (run.summary or {}).get("tasks"),
        "finished_at": _iso(run.finished_at),
    })


@receiver(training_finished, dispatch_uid="notifications-training-finished")
def on_training_finished(sender, run, **kwargs) -> None:
    version = run.version
    metrics = version.metrics if version is not None else {}
    delivery.enqueue(run.project_id, TRAINING_FINISHED, {
        "training_run_id": run.pk, "status": run.status, "trigger": run.trigger,
        "version_id": run.version_id, "version_number": version.number if version else None,
        "version_status": version.status if version else None,
        "promoted": bool(version and version.is_active),
        "accuracy": metrics.get("accuracy"), "heldout_pairs": metrics.get("heldout_pairs"),
        "message": (run.message or "")[:MESSAGE_CHARS],
        "finished_at": _iso(run.finished_at),
    })


@receiver(version_promoted, dispatch_uid="notifications-model-promoted")
def on_version_promoted(sender, version, by=None, rollback=False, **kwargs) -> None:
    delivery.enqueue(version.project_id, MODEL_PROMOTED, {
        "version_id": version.pk, "version_number": version.number,
        "how": "rollback" if rollback else "manual" if by else "gate",
        "accuracy": (version.metrics or {}).get("accuracy"),
        "promoted_at": _iso(version.promoted_at),
    })


@receiver(round_finished, dispatch_uid="notifications-round-done")
def on_round_finished(sender, round, **kwargs) -> None:  # noqa: A002  (the signal's own keyword)
    delivery.enqueue(round.project_id, ROUND_DONE, {
        "round_id": round.pk, "status": round.status, "strategy": round.strategy, "trigger": round.trigger,
        "model_version_id": round.model_version_id, "selected": (round.summary or {}).get("selected"),
        "error": (round.error or "")[:MESSAGE_CHARS],
        "finished_at": _iso(round.finished_at),
    })


@receiver(rater_paused, dispatch_uid="notifications-rater-flagged")
def on_rater_paused(sender, project, rater_id, reason, by=None, **kwargs) -> None:
    delivery.enqueue(project.pk, RATER_FLAGGED, {
        "rater_id": rater_id, "paused": True, "automatic": by is None, "reason": reason[:MESSAGE_CHARS],
    })


def _iso(when) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when else None
