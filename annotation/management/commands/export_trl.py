"""manage.py export_trl --project X [--ties drop|mark] [-o out.jsonl|out.parquet] — TRL prompt/chosen/rejected pairs."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.exporter import TIE_POLICIES, iter_trl_pairs
from annotation.importer import find_project
from annotation.management.commands.export_rankings import write_rows
from annotation.models import Project
from config.progress import CommandProgress


class Command(BaseCommand):
    # Data commands skip the system checks: they would load the whole URL configuration and the API schema
    # generator (~1 s) to check what `manage.py check`, `migrate` and every server start check anyway.
    requires_system_checks = []
    help = ("Export a project's rankings as TRL preference pairs (JSONL or Parquet: prompt, chosen, rejected, "
            "metadata), streamed.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project id or exact name")
        parser.add_argument("--ties", choices=TIE_POLICIES, default="drop", help="drop tied pairs or mark them")
        parser.add_argument("--include-flagged", action="store_true", help="keep rankings that carry a flag")
        parser.add_argument("-o", "--output", help="output file, .jsonl or .parquet (default: JSONL on stdout)")

    def handle(self, *args, project: str, ties: str, include_flagged: bool, output: str | None, **options) -> None:
        try:
            target = find_project(project)
        except Project.DoesNotExist as exc:
            raise CommandError(str(exc)) from None
        rows = iter_trl_pairs(target, ties=ties, exclude_flagged=not include_flagged)
        bar = CommandProgress(self.stderr, unit="pairs") if output else None
        n = write_rows(rows, output, self.stdout, "trl_ties" if ties == "mark" else "trl", bar)
        if output:
            self.stderr.write(f"Wrote {n} pairs to {output}")
