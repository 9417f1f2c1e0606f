"""Refresh a project's quality figures now, from a request (the API's POST, the admin's "Refresh quality" button and
action): one refresh at a time per project. The report is claimed at once (status running, stage 'queued', shown as
'queued'), so the progress panel that polls it never mistakes the previous refresh's 'done' for this one's, and a
second click, or beat's scheduled refresh, waits for it."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from annotation.models import Project
from quality.models import QualityReport


class RefreshBusy(Exception):
    """A refresh of the project is queued or running (and not stale): the caller answers 409."""


def queue_refresh(project: Project) -> QualityReport:
    """Claim the project's report as queued and queue the refresh once the transaction commits; RefreshBusy if a
    refresh is queued or running."""
    from quality.tasks import STALE_AFTER, refresh_quality

    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()  # two clicks at once: one refresh
        report, _ = QualityReport.objects.get_or_create(project=project, defaults={"stage": QualityReport.QUEUED_STAGE})
        if (report.status == QualityReport.RUNNING and report.started_at is not None
                and report.started_at > timezone.now() - STALE_AFTER):
            what = "queued" if report.stage == QualityReport.QUEUED_STAGE else f"running ({report.stage})"
            raise RefreshBusy(f"a quality refresh of this project is {what}; follow it, then refresh again")
        report.status, report.progress, report.stage = QualityReport.RUNNING, 0.0, QualityReport.QUEUED_STAGE
        report.started_at, report.finished_at, report.message = timezone.now(), None, ""
        report.save(update_fields=["status", "progress", "stage", "started_at", "finished_at", "message"])
        transaction.on_commit(lambda: refresh_quality.delay(project.pk, claimed=True))
    return report
