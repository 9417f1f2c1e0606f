"""Pausing raters from assignment, and un-pausing them: by a manager, or automatically by the quality refresh.

The pause itself is the membership's ``paused`` flag (annotation's assignment serves paused raters nothing); every
change is recorded as a ``PauseEvent`` with its reason and who made it. A manager's decision stands: the refresh
never re-pauses a rater a manager un-paused, nor un-pauses one a manager paused.
"""

from __future__ import annotations

from django.db import transaction

from annotation.models import Membership, Project, Ranking
from quality.models import PauseEvent, RaterQuality


class PauseError(ValueError):
    """The pause or un-pause cannot be done; the message says why."""


def _set(project: Project, rater_id: int, paused: bool, reason: str, by=None) -> bool:
    """Change the flag and record it; False when there was nothing to change."""
    with transaction.atomic():
        membership = Membership.objects.select_for_update().filter(project=project, user_id=rater_id).first()
        if membership is None:
            raise PauseError(f"user {rater_id} is not a member of {project}")
        if membership.paused == paused:
            return False
        membership.paused, membership.paused_reason = paused, reason[:300] if paused else ""
        membership.save(update_fields=["paused", "paused_reason"])
        PauseEvent.objects.create(project=project, rater_id=rater_id, paused=paused, reason=reason[:300], by=by)
        _reweigh(project, rater_id, paused)
        if paused:
            from quality.signals import rater_paused  # here: quality.signals imports refresh, which imports this

            transaction.on_commit(lambda: rater_paused.send(sender=Membership, project=project, rater_id=rater_id,
                                                            reason=reason[:300], by=by), robust=True)
        return True


def _reweigh(project: Project, rater_id: int, paused: bool) -> None:
    """A paused rater's rankings leave training at once (weight 0), not at the next refresh; un-paused, they get
    back the weight the last refresh gave them (1 before any)."""
    q = RaterQuality.objects.filter(project=project, rater_id=rater_id).first()
    weight = (q or RaterQuality()).weight_when(paused)
    if q is not None:
        RaterQuality.objects.filter(pk=q.pk).update(training_weight=weight)
    Ranking.objects.filter(task__project=project, rater_id=rater_id).update(weight=weight)


def pause(project: Project, rater_id: int, reason: str, by) -> bool:
    if not reason:
        raise PauseError("say why the rater is paused")
    return _set(project, rater_id, True, reason, by)


def unpause(project: Project, rater_id: int, reason: str, by) -> bool:
    return _set(project, rater_id, False, reason.strip() or "un-paused by a manager", by)


def _read_log(project: Project) -> tuple[set[int], set[int]]:
    """(raters a manager ever paused or un-paused: decisions the refresh leaves alone, raters whose current pause
    was made by the refresh), from one pass over the pause log."""
    manual: set[int] = set()
    current: dict[int, tuple[bool, bool]] = {}
    for rater_id, paused, by in (PauseEvent.objects.filter(project=project).order_by("at", "id")
                                 .values_list("rater_id", "paused", "by")):
        if by is not None:
            manual.add(rater_id)
        current[rater_id] = (paused, by is None)
    return manual, {r for r, (paused, automatic) in current.items() if paused and automatic}


def apply_automatic(project: Project, rows: list[RaterQuality]) -> dict[str, int]:
    """Pause unreliable raters (when the project says so) and un-pause the refresh's own pauses that no longer hold."""
    manual, automatic = _read_log(project)
    paused = unpaused = 0
    for q in rows:
        if project.pause_unreliable and q.unreliable and q.rater_id not in manual:
            reason = (f"reliability {q.reliability:.2f} [{q.reliability_low:.2f}, {q.reliability_high:.2f}] below "
                      f"{project.reliability_threshold:.2f} over {q.evidence:.0f} comparisons")
            paused += _set(project, q.rater_id, True, reason)
        elif q.rater_id in automatic and (not q.unreliable or not project.pause_unreliable):
            unpaused += _set(project, q.rater_id, False, "no longer below the reliability threshold"
                             if project.pause_unreliable else "the project no longer pauses unreliable raters")
    return {"paused": paused, "unpaused": unpaused}
