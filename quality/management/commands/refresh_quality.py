"""manage.py refresh_quality --project X: fit consensus and rater reliability now, with a progress bar."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from annotation.importer import find_project
from annotation.models import Project


class Command(BaseCommand):
    help = "Refresh a project's rater quality, task consensus and training weights in this process."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project id or name")

    def handle(self, *args, **opts):
        from quality.refresh import refresh_project

        try:
            project = find_project(opts["project"])
        except Project.DoesNotExist as exc:
            raise CommandError(str(exc)) from None
        tty = sys.stderr.isatty()

        def bar(fraction: float, stage: str) -> None:
            filled = int(30 * fraction)
            line = f"[{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%} {stage}"
            self.stderr.write(("\r" + line.ljust(90)) if tty else line, ending="" if tty else "\n")

        report = refresh_project(project, progress=bar)
        if tty:
            self.stderr.write("")
        self.stdout.write(json.dumps(report.summary))
