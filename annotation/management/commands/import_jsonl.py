"""manage.py import_jsonl --project NAME_OR_ID FILE — prompts and completions from JSONL or Parquet, all or none."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.import_runs import run_import
from annotation.importer import ImportFailed, find_or_create_project
from annotation.models import Project
from annotation.rows import TooLarge
from config.progress import CommandProgress

MAX_ERRORS_SHOWN = 200


class Command(BaseCommand):
    # Data commands skip the system checks: they would load the whole URL configuration and the API schema
    # generator (~1 s) to check what `manage.py check`, `migrate` and every server start check anyway.
    requires_system_checks = []
    help = ("Import prompts + completions from JSONL (.jsonl, .jsonl.gz) or Parquet into a project: every line is "
            "checked first, then written in batches; all or nothing.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help=".jsonl, .jsonl.gz or .parquet file: one prompt with its completions per row")
        parser.add_argument("--project", required=True, help="project id or exact name")
        parser.add_argument("--create-project", action="store_true", help="create the project (by name) if absent")
        parser.add_argument("--k", type=int, default=4, help="completions per task for a new project (2–9)")
        parser.add_argument("--overlap", type=int, default=3, help="distinct raters per task for a new project")

    def handle(self, *args, path: str, project: str, create_project: bool, k: int, overlap: int, **options) -> None:
        file = Path(path)
        if not file.is_file():
            raise CommandError(f"no such file: {path}")
        target = self._project(project, create_project, k, overlap)
        bar = CommandProgress(self.stderr, unit="tasks")
        try:
            _, summary = run_import(target, file, name=file.name, size=file.stat().st_size, progress=bar)
        except ImportFailed as exc:
            bar.close()
            for line_no, message in exc.errors[:MAX_ERRORS_SHOWN]:
                self.stderr.write(f"{path}:{line_no}: {message}")
            if exc.total > MAX_ERRORS_SHOWN:
                self.stderr.write(f"… and {exc.total - MAX_ERRORS_SHOWN} more errors")
            raise CommandError(f"{exc.total} error(s) in {path}; nothing was imported") from None
        except TooLarge as exc:
            bar.close()
            raise CommandError(f"{path}: {exc}; nothing was imported (raise {exc.setting} to allow it)") from None
        bar.close()
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported into {target.name!r} (id {target.pk}): {summary.prompts} prompts, "
                f"{summary.completions} completions, {summary.tasks} tasks ({summary.gold_tasks} gold)"
            )
        )

    def _project(self, ref: str, create: bool, k: int, overlap: int) -> Project:
        try:
            project, created = find_or_create_project(ref, create, k, overlap)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if created:
            self.stdout.write(f"Created project {project.name!r} (id {project.pk}, k={k}, overlap={overlap})")
        return project
