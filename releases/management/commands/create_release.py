"""manage.py create_release --project X --name v1 [--description …] [--license cc-by-4.0] [--include-eval]"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.importer import find_project
from annotation.models import Project
from config.progress import CommandProgress
from releases.build import ReleaseError, create_release


class Command(BaseCommand):
    requires_system_checks = []  # a data command (see annotation's export_trl)
    help = ("Freeze a project's trainable rankings as a named, immutable dataset release (no size limit, unlike "
            "the API).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project id or exact name")
        parser.add_argument("--name", required=True, help="the release's name, unique in the project (e.g. v1)")
        parser.add_argument("--description", default="", help="shown on the dataset card")
        parser.add_argument("--license", default="", help="the card's license id (blank: 'unknown')")
        parser.add_argument("--include-eval", action="store_true",
                            help="also freeze the evaluation stream's rankings, as the 'heldout' split")

    def handle(self, *args, project: str, name: str, description: str, license: str, include_eval: bool,
               **options) -> None:
        try:
            target = find_project(project)
        except Project.DoesNotExist as exc:
            raise CommandError(str(exc)) from None
        bar = CommandProgress(self.stderr, unit="rankings")
        try:
            release = create_release(target, name, description, license, include_eval, progress=bar)
        except ReleaseError as exc:
            raise CommandError(f"{exc.field}: {exc}") from None
        bar.close()
        splits = ", ".join(f"{s}: {c['rankings']:,} rankings, {c['pairs']:,} pairs" for s, c in release.splits.items())
        self.stdout.write(f"Release {release.name!r} (id {release.pk}) of {target.name!r}: {splits}; "
                          f"sha256 {release.sha256}")
