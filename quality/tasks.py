"""Celery tasks: refresh a project's quality figures, and (beat, every 10 minutes) every project with new rankings."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.db.models import Max, Q
from django.utils import timezone

log = logging.getLogger(__name__)

# A refresh still "running" after this long lost its worker; a new one may start.
STALE_AFTER = timedelta(minutes=30)


@shared_task(name="quality.tasks.refresh_quality", acks_late=True, soft_time_limit=900, time_limit=960)
def refresh_quality(project_id: int, claimed: bool = False) -> dict:
    """Refresh one project, unless a refresh of it is running. `claimed`: quality.launch marked the report 'queued'
    for this job, which is therefore not another refresh running."""
    from annotation.models import Project
    from quality.models import QualityReport
    from quality.refresh import refresh_project

    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return {"project_id": project_id, "skipped": "no such project"}
    running = QualityReport.objects.filter(project=project, status=QualityReport.RUNNING,
                                           started_at__gt=timezone.now() - STALE_AFTER)
    if claimed:
        running = running.exclude(stage=QualityReport.QUEUED_STAGE)
    if running.exists():
        return {"project_id": project_id, "skipped": "a refresh of this project is running"}
    report = refresh_project(project)
    return {"project_id": project_id, **{k: report.summary.get(k) for k in ("rankings", "raters", "seconds")}}


@shared_task(name="quality.tasks.refresh_stale_projects", acks_late=True, soft_time_limit=60, time_limit=90)
def refresh_stale_projects() -> list[int]:
    """Queue a refresh for every project with a ranking newer than its last refresh."""
    from annotation.models import Project

    queued = []
    from annotation.models import Ranking

    # Imported rankings have no rater to judge: they never make a project stale.
    projects = Project.objects.annotate(last_ranking=Max(
        "tasks__rankings__id", filter=Q(tasks__rankings__source=Ranking.RATER))).filter(last_ranking__isnull=False)
    for project in projects.select_related("quality_report"):
        report = getattr(project, "quality_report", None)
        seen = (report.summary or {}).get("last_ranking_id") if report else None
        if seen is None or project.last_ranking > seen:
            refresh_quality.delay(project.pk)
            queued.append(project.pk)
    return queued
