"""manage.py import_jsonl --project NAME_OR_ID file.jsonl — all lines or none."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.importer import ImportFailed, find_project, import_jsonl
from annotation.models import Project

MAX_ERRORS_SHOWN = 200


class Command(BaseCommand):
    help = "Import prompts + completions from JSONL into a project (validates every line first; all or nothing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="JSONL file: one prompt with its completions per line")
        parser.add_argument("--project", required=True, help="project id or exact name")
        parser.add_argument("--create-project", action="store_true", help="create the project (by name) if absent")
        parser.add_argument("--k", type=int, default=4, help="completions per task for a new project (2–9)")
        parser.add_argument("--overlap", type=int, default=3, help="distinct raters per task for a new project")

    def handle(self, *args, path: str, project: str, create_project: bool, k: int, overlap: int, **options) -> None:
        target = self._project(project, create_project, k, overlap)
        try:
            with open(path, "rb") as fh:
                summary = import_jsonl(target, fh)
        except FileNotFoundError:
            raise CommandError(f"no such file: {path}") from None
        except ImportFailed as exc:
            for line_no, message in exc.errors[:MAX_ERRORS_SHOWN]:
                self.stderr.write(f"{path}:{line_no}: {message}")
            if len(exc.errors) > MAX_ERRORS_SHOWN:
                self.stderr.write(f"… and {len(exc.errors) - MAX_ERRORS_SHOWN} more errors")
            raise CommandError(f"{len(exc.errors)} error(s) in {path}; nothing was imported") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported into {target.name!r} (id {target.pk}): {summary.prompts} prompts, "
                f"{summary.completions} completions, {summary.tasks} tasks ({summary.gold_tasks} gold)"
            )
        )

    def _project(self, ref: str, create: bool, k: int, overlap: int) -> Project:
        try:
            return find_project(ref)
        except Project.DoesNotExist as exc:
            if not create:
                raise CommandError(f"{exc} (use --create-project to create it)") from None
        if not 2 <= k <= 9:
            raise CommandError("--k must be between 2 and 9")
        if overlap < 1:
            raise CommandError("--overlap must be at least 1")
        project = Project.objects.create(name=ref, k=k, overlap=overlap)
        self.stdout.write(f"Created project {project.name!r} (id {project.pk}, k={k}, overlap={overlap})")
        return project
