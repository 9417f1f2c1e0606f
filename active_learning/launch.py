"""Start a selection round now, from a request (the API's POST, the admin's "Run a selection round" button and
action): one round at a time per project, its row at once, its Celery job once the request's transaction commits."""

from __future__ import annotations

from django.db import transaction

from active_learning.models import SelectionRound
from active_learning.pipeline import create_round
from annotation.models import Project


class RoundBusy(Exception):
    """A round of the project is still queued or running: the caller answers 409 and names it."""

    def __init__(self, rnd: SelectionRound):
        self.round = rnd
        super().__init__(f"selection round {rnd.pk} of this project is still {rnd.status}; follow it, then run "
                         "another")


def busy_round(project: Project) -> SelectionRound | None:
    return (SelectionRound.objects.filter(project=project, status__in=[SelectionRound.QUEUED, SelectionRound.RUNNING])
            .order_by("-created_at", "-id").first())


def queue_round(project: Project, strategy: str | None = None, batch_size: int | None = None,
                seed: int | None = None) -> SelectionRound:
    """Record an on-demand round (the policy fills what is not given) and queue its job; RoundBusy if one is queued
    or running, pipeline.RoundError for a bad strategy or batch size."""
    from active_learning.tasks import run_round

    with transaction.atomic():
        # The project row is the lock: two clicks at once must not both find no round and queue two.
        Project.objects.select_for_update().filter(pk=project.pk).first()
        busy = busy_round(project)
        if busy is not None:
            raise RoundBusy(busy)
        rnd, _ = create_round(project, strategy, batch_size, trigger=SelectionRound.ON_DEMAND, seed=seed)
        transaction.on_commit(lambda: run_round.delay(project.pk, round_id=rnd.pk))
    return rnd
