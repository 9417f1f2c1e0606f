"""Recording imports so people can watch them: an ImportRun row per import, its live progress in the cache; and
imports too big for a web request, run as a background job.

The import itself is one transaction (all or nothing), so nothing it writes is visible until it commits. The run's
row is written before and after, outside that transaction; in between, ``(phase, done, total)`` goes to the cache
(Redis in production, shared by every web process) at most twice a second, and :func:`live` merges it in. The API
(``GET /api/projects/{id}/imports/``), the admin, ``manage.py import_jsonl`` and ``import_preferences`` all go
through here.

An API upload of more than ``VERDICT_IMPORT_SYNC_ROWS`` lines (or one whose scan did not finish in the request's
budget) is :func:`queue_import`-ed: its bytes wait in the database (``ImportUpload``), and ``annotation.tasks``
runs it on a worker (:func:`run_queued`) with the same all-or-nothing write. A worker lost mid-import leaves nothing
written (its transaction rolls back); the redelivered job starts over, at most ``VERDICT_MAX_DELIVERIES`` times.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotation.importer import ImportFailed, ImportSummary, Progress, import_jsonl, scan_file
from annotation.models import ImportRun, ImportUpload, Project
from annotation.preference_import import PreferenceImportSummary, import_preferences
from annotation.rows import RowSource, TooLarge
from annotation.signals import import_finished

ERRORS_KEPT = 100
PROGRESS_EVERY_S = 0.5
CACHE_S = 24 * 3600


def _key(run_id: int) -> str:
    return f"import-run:{run_id}"


def _recorder(run: ImportRun, also: Progress | None) -> Callable[[str, int, int | None], None]:
    last = 0.0

    def record(phase: str, done: int, total: int | None) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_S or (total and done >= total):
            last = now
            cache.set(_key(run.pk), {"phase": phase, "rows_done": done, "rows_total": total}, CACHE_S)
        if also:
            also(phase, done, total)

    return record


def _new_run(project: Project, user, name: str, size: int | None, status: str = ImportRun.RUNNING) -> ImportRun:
    return ImportRun.objects.create(project=project, created_by=user if getattr(user, "pk", None) else None,
                                    source=name[:300], size_bytes=size, status=status)


def run_import(project: Project, source, *, user=None, name: str = "upload", size: int | None = None,
               progress: Progress | None = None) -> tuple[ImportRun, ImportSummary]:
    """Import `source` into `project` (``annotation.importer.import_jsonl``), recorded as an ImportRun.
    Raises ImportFailed or TooLarge as the importer does (with ``import_id`` set); the run is marked failed with its
    first errors."""
    run = _new_run(project, user, name, size)
    return run, _execute(run, source, progress)


def run_preference_import(project: Project, path, *, dataset: str = "", user=None,
                          progress: Progress | None = None) -> tuple[ImportRun, PreferenceImportSummary]:
    """Import preference data (``annotation.preference_import``) recorded as an ImportRun, like a task import: its
    progress, summary or first errors in the admin and at ``GET …/imports/``."""
    from pathlib import Path

    path = Path(path)
    run = _new_run(project, user, path.name, path.stat().st_size)

    def preferences(target, source, progress):
        return import_preferences(target, source, dataset,
                                  progress=lambda done, total: progress("writing", done, total))

    return run, _execute(run, path, progress, importer=preferences, rows_of=lambda summary: summary.rows)


def _execute(run: ImportRun, source, progress: Progress | None, importer=None, rows_of=None):
    """Run `importer` (task import by default) on `source`, recording the outcome on `run`."""
    importer = importer or (lambda target, source, progress: import_jsonl(target, source, progress=progress))
    rows_of = rows_of or (lambda summary: summary.tasks)
    try:
        summary = importer(run.project, source, _recorder(run, progress))
    except ImportFailed as exc:
        _finish(run, ImportRun.FAILED, error_count=exc.total, errors=[list(e) for e in exc.errors[:ERRORS_KEPT]])
        exc.import_id = run.pk
        raise
    except TooLarge as exc:
        _finish(run, ImportRun.FAILED, error_count=1, errors=[[0, str(exc)]])
        exc.import_id = run.pk
        raise
    except BaseException as exc:
        _finish(run, ImportRun.FAILED, error_count=1, errors=[[0, f"the import stopped: {exc!r}"[:1000]]])
        raise
    _finish(run, ImportRun.SUCCEEDED, summary=summary.as_dict(), rows_done=rows_of(summary),
            rows_total=rows_of(summary))
    return summary


def import_upload(project: Project, data: bytes, *, user=None, name: str = "upload"
                  ) -> tuple[ImportRun, ImportSummary | None]:
    """An API upload: its bounds scanned within the request's budget, then imported now when it is small (the
    summary comes back), else queued for a worker (the summary is None; the run is queued). Raises ImportFailed or
    TooLarge, with ``import_id``, for a file refused in the request."""
    rows = RowSource.of(data)
    run = _new_run(project, user, name, len(data))
    try:
        scan = scan_file(rows, stop_after=settings.VERDICT_IMPORT_REQUEST_SCAN_BYTES)
    except (ImportFailed, TooLarge) as exc:
        _finish(run, ImportRun.FAILED, error_count=1, errors=[[0, str(exc)]])
        exc.import_id = run.pk
        raise
    if scan.complete and scan.rows <= settings.VERDICT_IMPORT_SYNC_ROWS:
        return run, _execute(run, rows, None)
    _queue(run, data, scan.rows if scan.complete else None)
    return run, None


def _queue(run: ImportRun, data: bytes, rows_total: int | None) -> None:
    """Keep the upload's bytes and queue the run's import on a worker."""
    from annotation.tasks import run_queued_import  # the Celery task module imports this one

    with transaction.atomic():
        ImportRun.objects.filter(pk=run.pk).update(status=ImportRun.QUEUED, rows_total=rows_total)
        run.status, run.rows_total = ImportRun.QUEUED, rows_total
        ImportUpload.objects.create(run=run, data=data)
        transaction.on_commit(lambda: run_queued_import.delay(run.pk))


def run_queued(run_id: int) -> str:
    """The worker's side of :func:`queue_import`: run it once, whatever the broker redelivers. Returns the status."""
    with transaction.atomic():
        run = ImportRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status not in (ImportRun.QUEUED, ImportRun.RUNNING):
            return run.status if run else "gone"
        ImportRun.objects.filter(pk=run.pk).update(attempts=F("attempts") + 1, status=ImportRun.RUNNING)
        run.refresh_from_db()
    if run.attempts > settings.VERDICT_MAX_DELIVERIES:
        _finish(run, ImportRun.FAILED, error_count=1, errors=[[0, (
            f"gave up: started {run.attempts} times and its worker was lost each time; nothing was imported")]])
        ImportUpload.objects.filter(run=run).delete()
        return run.status
    upload = ImportUpload.objects.filter(run=run).first()
    if upload is None:
        _finish(run, ImportRun.FAILED, error_count=1, errors=[[0, "the upload is gone; nothing was imported"]])
        return run.status
    data = bytes(upload.data)
    del upload
    try:
        _execute(run, RowSource.of(data), None)
    except (ImportFailed, TooLarge):
        pass  # recorded on the run, which is where its caller looks
    finally:
        if run.status != ImportRun.RUNNING:  # finished either way: the bytes are no longer needed
            ImportUpload.objects.filter(run=run).delete()
    return run.status


def _finish(run: ImportRun, status: str, **fields) -> None:
    live(run)
    for name, value in {"status": status, "finished_at": timezone.now(), **fields}.items():
        setattr(run, name, value)
    run.save()
    cache.delete(_key(run.pk))
    # After the row's write commits (at once outside a transaction); robust: a listener's error never fails an import.
    transaction.on_commit(lambda: import_finished.send(sender=ImportRun, run=run), robust=True)


def live(run: ImportRun) -> ImportRun:
    """The run with its latest progress from the cache, while it is running."""
    if run.status == ImportRun.RUNNING:
        for name, value in (cache.get(_key(run.pk)) or {}).items():
            setattr(run, name, value)
    return run
