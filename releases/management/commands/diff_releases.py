"""manage.py diff_releases --project X A B [--json]: what release B holds that A did not, and the reverse."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from releases.diff import diff_releases, summary_lines
from releases.lookup import UnknownRelease, find_release


class Command(BaseCommand):
    requires_system_checks = []
    help = "Compare two dataset releases of a project: rankings added, removed and changed; pairs added and removed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("a", help="the older release (name or id)")
        parser.add_argument("b", help="the newer release (name or id)")
        parser.add_argument("--project", required=True, help="project id or exact name")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the whole diff as JSON")

    def handle(self, *args, a: str, b: str, project: str, as_json: bool, **options) -> None:
        try:
            diff = diff_releases(find_release(project, a), find_release(project, b))
        except UnknownRelease as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(diff, indent=2) if as_json else "\n".join(summary_lines(diff)))
