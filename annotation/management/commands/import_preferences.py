"""manage.py import_preferences --project X FILE [--dataset NAME] [--create-project [--k K]] — pairs or rankings
others made, streamed, recorded as an import run."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.import_runs import run_preference_import
from annotation.importer import ImportFailed, find_or_create_project
from annotation.rows import TooLarge
from config.progress import CommandProgress

MAX_ERRORS_SHOWN = 50


class Command(BaseCommand):
    # Data commands skip the system checks: they would load the whole URL configuration and the API schema
    # generator (~1 s) to check what `manage.py check`, `migrate` and every server start check anyway.
    requires_system_checks = []
    help = ("Import preference data (TRL prompt/chosen/rejected pairs, HH-RLHF transcripts, or rankings) from JSONL "
            "or Parquet as rankings with provenance; streamed, all rows or none.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help=".jsonl, .jsonl.gz or .parquet file")
        parser.add_argument("--project", required=True, help="project id or exact name")
        parser.add_argument("--dataset", default="", help="the dataset's name (default: the file's name)")
        parser.add_argument("--create-project", action="store_true", help="create the project (by name) if absent")
        parser.add_argument("--k", type=int, default=2, help="completions per task for a new project (2 for pairs)")
        parser.add_argument("--overlap", type=int, default=1, help="distinct raters per task for a new project")

    def handle(self, *args, path: str, project: str, dataset: str, create_project: bool, k: int, overlap: int,
               **options) -> None:
        file = Path(path)
        if not file.is_file():
            raise CommandError(f"no such file: {path}")
        try:
            target, created = find_or_create_project(project, create_project, k, overlap)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if created:
            self.stderr.write(f"Created project {target.name!r} (id {target.pk}, k={k}, overlap={overlap})")
        bar = CommandProgress(self.stderr)
        try:
            _, summary = run_preference_import(target, file, dataset=dataset, progress=bar)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        except TooLarge as exc:
            bar.close()
            raise CommandError(f"{path}: {exc}; nothing was imported (raise {exc.setting} to allow it)") from None
        except ImportFailed as exc:
            bar.close()
            for row, message in exc.errors[:MAX_ERRORS_SHOWN]:
                self.stderr.write(f"{path}:{row}: {message}")
            raise CommandError(f"{len(exc.errors)} error(s) in {path}; nothing was imported") from None
        bar.close()
        self.stdout.write(json.dumps(summary.as_dict()))
