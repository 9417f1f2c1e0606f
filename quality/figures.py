"""The figures of a project's quality page, read once for both the admin page and the API."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from annotation.models import Membership, Project
from quality.models import PauseEvent, QualityReport, RaterQuality, TaskConsensus

CONTESTED_SHOWN = 50
EVENTS_SHOWN = 50


def _round(value, digits=4):
    return None if value is None else round(float(value), digits)


def rater_rows(project: Project) -> list[dict]:
    """Every rater with quality figures, least reliable first."""
    members = dict(Membership.objects.filter(project=project).values_list("user_id", "paused"))
    reasons = dict(Membership.objects.filter(project=project, paused=True).values_list("user_id", "paused_reason"))
    # A judge's account carries the judge's name (feedback.rankings.account_of): show that, not "judge-7".
    judges = set(RaterQuality.objects.filter(project=project, is_judge=True).values_list("rater_id", flat=True))
    names = {pk: (first_name or username) if pk in judges else username for pk, username, first_name in
             get_user_model().objects.filter(rater_quality__project=project).values_list(
                 "pk", "username", "first_name")}
    rows = []
    for q in RaterQuality.objects.filter(project=project).order_by("reliability", "rater_id"):
        rows.append({
            "rater_id": q.rater_id,
            "username": names.get(q.rater_id, str(q.rater_id)),
            "is_judge": q.is_judge,
            "rankings": q.rankings,
            "evidence": _round(q.evidence, 1),
            "reliability": _round(q.reliability),
            "reliability_low": _round(q.reliability_low),
            "reliability_high": _round(q.reliability_high),
            "tie_propensity": _round(q.tie_propensity),
            "gold_accuracy": _round(q.gold_accuracy),
            "gold_tasks": q.gold_tasks,
            "loo_agreement": _round(q.loo_agreement),
            "loo_pairs": q.loo_pairs,
            "crowd_agreement": _round(q.crowd_agreement),
            "crowd_pairs": q.crowd_pairs,
            "crowd_interval": [_round(v) for v in q.crowd_interval] if q.crowd_interval else None,
            "position_bias": _round(q.position_bias),
            "position_expected": _round(q.position_expected),
            "position_p": None if q.position_p is None else float(f"{q.position_p:.3g}"),
            "median_time_s": _round(q.median_time_s, 2),
            "speed_z": _round(q.speed_z, 2),
            "training_weight": _round(q.training_weight),
            "flags": q.flags,
            "paused": bool(members.get(q.rater_id, False)),
            "paused_reason": reasons.get(q.rater_id, ""),
        })
    return rows


def contested_tasks(project: Project, limit: int = CONTESTED_SHOWN) -> list[dict]:
    """The tasks whose consensus is least sure (below the project's threshold), least sure first."""
    rows = (TaskConsensus.objects.filter(task__project=project, confidence__lt=project.consensus_threshold)
            .select_related("task").order_by("confidence", "task_id")[:limit])
    return [{"task_id": c.task_id, "confidence": _round(c.confidence), "rankings": c.rankings,
             "target": None if project.serves_to_all(c.task) else project.task_target(c.task),
             "is_gold": c.task.is_gold, "status": c.task.status, "order": c.order, "pairs": c.pairs}
            for c in rows]


def pause_events(project: Project, limit: int = EVENTS_SHOWN) -> list[dict]:
    return [{"rater_id": e.rater_id, "username": e.rater.get_username(), "paused": e.paused, "reason": e.reason,
             "by": e.by.get_username() if e.by else None, "at": e.at.isoformat()}
            for e in PauseEvent.objects.filter(project=project).select_related("rater", "by")[:limit]]


def report_dict(project: Project) -> dict:
    report = QualityReport.objects.filter(project=project).first()
    if report is None:
        return {"status": "never", "progress": 0.0, "stage": "", "summary": {}, "started_at": None,
                "finished_at": None, "message": ""}
    queued = report.status == QualityReport.RUNNING and report.stage == QualityReport.QUEUED_STAGE
    return {"status": "queued" if queued else report.status, "progress": report.progress, "stage": report.stage,
            "summary": report.summary,
            "started_at": report.started_at.isoformat() if report.started_at else None,
            "finished_at": report.finished_at.isoformat() if report.finished_at else None,
            "message": report.message}


def quality_page(project: Project) -> dict:
    return {
        "project_id": project.pk,
        "settings": {f: getattr(project, f) for f in (
            "reliability_threshold", "min_rater_evidence", "pause_unreliable", "consensus_threshold",
            "min_overlap", "max_overlap", "gold_rate")},
        "report": report_dict(project),
        "raters": rater_rows(project),
        "contested_tasks": contested_tasks(project),
        "pause_events": pause_events(project),
    }
