"""Recording imports so people can watch them: an ImportRun row per import, its live progress in the cache.

The import itself is one transaction (all or nothing), so nothing it writes is visible until it commits. The run's
row is written before and after, outside that transaction; in between, ``(phase, done, total)`` goes to the cache
(Redis in production, shared by every web process) at most twice a second, and :func:`live` merges it in. The API
(``GET /api/projects/{id}/imports/``), the admin and ``manage.py import_jsonl`` all go through here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.core.cache import cache
from django.utils import timezone

from annotation.importer import ImportFailed, ImportSummary, Progress, import_jsonl
from annotation.models import ImportRun, Project

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


def run_import(project: Project, source, *, user=None, name: str = "upload", size: int | None = None,
               progress: Progress | None = None) -> tuple[ImportRun, ImportSummary]:
    """Import `source` into `project` (``annotation.importer.import_jsonl``), recorded as an ImportRun.
    Raises ImportFailed as the importer does (with ``import_id`` set); the run is marked failed with its first
    errors."""
    run = ImportRun.objects.create(project=project, created_by=user if getattr(user, "pk", None) else None,
                                   source=name[:300], size_bytes=size)
    try:
        summary = import_jsonl(project, source, progress=_recorder(run, progress))
    except ImportFailed as exc:
        _finish(run, ImportRun.FAILED, error_count=exc.total, errors=[list(e) for e in exc.errors[:ERRORS_KEPT]])
        exc.import_id = run.pk
        raise
    except BaseException as exc:
        _finish(run, ImportRun.FAILED, error_count=1, errors=[[0, f"the import stopped: {exc!r}"[:1000]]])
        raise
    _finish(run, ImportRun.SUCCEEDED, summary=summary.as_dict(), rows_done=summary.tasks, rows_total=summary.tasks)
    return run, summary


def _finish(run: ImportRun, status: str, **fields) -> None:
    live(run)
    for name, value in {"status": status, "finished_at": timezone.now(), **fields}.items():
        setattr(run, name, value)
    run.save()
    cache.delete(_key(run.pk))


def live(run: ImportRun) -> ImportRun:
    """The run with its latest progress from the cache, while it is running."""
    if run.status == ImportRun.RUNNING:
        for name, value in (cache.get(_key(run.pk)) or {}).items():
            setattr(run, name, value)
    return run
