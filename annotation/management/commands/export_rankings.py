"""manage.py export_rankings --project X [-o out.jsonl|out.parquet] — one row per submitted ranking."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from annotation.exporter import iter_rankings, jsonl_lines, write_jsonl, write_parquet
from annotation.importer import find_project
from annotation.models import Project
from config.progress import CommandProgress


def write_rows(rows: Iterable[dict], output: str | None, stdout: OutputWrapper, kind: str,
               progress: CommandProgress | None = None) -> int:
    """Stream rows as JSONL to stdout, or to `output` (Parquet when it ends in .parquet) via a temp file renamed at
    the end (no half files)."""
    if progress:
        rows = _counted(rows, progress)
    if not output:
        n = 0
        for line in jsonl_lines(rows):
            stdout.write(line, ending="")
            n += 1
        return n
    target = Path(output)
    fd, tmp = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.", suffix=".tmp")
    try:
        if target.name.lower().endswith(".parquet"):
            os.close(fd)
            n = write_parquet(rows, tmp, kind)
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                n = write_jsonl(rows, fh)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        if progress:
            progress.close()
    return n


def _counted(rows: Iterable[dict], progress: CommandProgress) -> Iterator[dict]:
    n = 0
    for row in rows:
        yield row
        n += 1
        if n % 1000 == 0:
            progress("exporting", n)
    progress("exporting", n)


class Command(BaseCommand):
    # Data commands skip the system checks: they would load the whole URL configuration and the API schema
    # generator (~1 s) to check what `manage.py check`, `migrate` and every server start check anyway.
    requires_system_checks = []
    help = ("Export every submitted ranking of a project as JSONL or Parquet (task, prompt, completions, order, "
            "rater_id, …), streamed.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project id or exact name")
        parser.add_argument("--exclude-flagged", action="store_true", help="leave out rankings that carry a flag")
        parser.add_argument("-o", "--output", help="output file, .jsonl or .parquet (default: JSONL on stdout)")

    def handle(self, *args, project: str, exclude_flagged: bool, output: str | None, **options) -> None:
        try:
            target = find_project(project)
        except Project.DoesNotExist as exc:
            raise CommandError(str(exc)) from None
        bar = CommandProgress(self.stderr, unit="rankings") if output else None
        n = write_rows(iter_rankings(target, exclude_flagged=exclude_flagged), output, self.stdout, "rankings", bar)
        if output:
            self.stderr.write(f"Wrote {n} rankings to {output}")
