"""Celery jobs of the feedback app. A run is sent to its judge's queue (``Judge.queue``): `default` for an HTTP
endpoint (it waits on the network), `gpu` for a model loaded in the worker (local causal LM, reward model)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from feedback.backends import JudgeUnavailable
from feedback.models import JudgeRun
from feedback.runs import run_judge

log = logging.getLogger(__name__)


@shared_task(name="feedback.tasks.run_judge_job", acks_late=True, reject_on_worker_lost=True,
             soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT, time_limit=settings.CELERY_TASK_TIME_LIMIT)
def run_judge_job(run_id: int) -> dict:
    """Run a judge; progress on the JudgeRun row. A redelivery (lost worker) continues where the last one stopped;
    a finished run is not run again."""
    run = JudgeRun.objects.select_related("judge__project").get(pk=run_id)
    if run.status in (JudgeRun.DONE, JudgeRun.FAILED):
        return {"run_id": run.pk, "status": run.status}
    JudgeRun.objects.filter(pk=run.pk).update(status=JudgeRun.RUNNING, started_at=run.started_at or timezone.now(),
                                              attempts=run.attempts + 1)

    def progress(done: int, total: int) -> None:
        JudgeRun.objects.filter(pk=run.pk).update(tasks_done=done, tasks_total=total)

    try:
        summary = run_judge(run.judge, run.limit, progress=progress)
    except JudgeUnavailable as exc:
        JudgeRun.objects.filter(pk=run.pk).update(status=JudgeRun.FAILED, finished_at=timezone.now(),
                                                  message=f"{exc} (answered questions are kept: start a new run "
                                                          "to continue)")
        log.warning("judge run %s failed: %s", run.pk, exc)
        return {"run_id": run.pk, "status": JudgeRun.FAILED}
    message = f"stopped: the judge has spent its budget of {run.judge.budget}" if summary.stopped_by == "budget" else ""
    JudgeRun.objects.filter(pk=run.pk).update(status=JudgeRun.DONE, finished_at=timezone.now(),
                                              summary=summary.as_dict(), message=message)
    return {"run_id": run.pk, "status": JudgeRun.DONE, **summary.as_dict()}
