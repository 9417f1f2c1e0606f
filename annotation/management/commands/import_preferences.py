"""manage.py import_preferences --project X FILE [--dataset NAME] — pairs or rankings others made, streamed."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.importer import ImportFailed, find_project
from annotation.models import Project
from annotation.preference_import import import_preferences
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

    def handle(self, *args, path: str, project: str, dataset: str, **options) -> None:
        try:
            target = find_project(project)
        except Project.DoesNotExist as exc:
            raise CommandError(str(exc)) from None
        file = Path(path)
        if not file.is_file():
            raise CommandError(f"no such file: {path}")
        bar = CommandProgress(self.stderr)
        try:
            summary = import_preferences(target, file, dataset,
                                         progress=lambda done, total: bar("importing", done, total))
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
