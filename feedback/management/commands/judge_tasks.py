"""manage.py judge_tasks --project X --judge NAME [--limit N]: let an AI judge rank the project's tasks it has not
ranked yet, with a progress bar; prints the run's summary as JSON."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from annotation.importer import find_project
from annotation.models import Project


class Command(BaseCommand):
    help = "Run an AI judge over a project's tasks (both orders per pair, within its budget; resumable)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project id or name")
        parser.add_argument("--judge", required=True, help="the judge's name in that project")
        parser.add_argument("--limit", type=int, default=None, help="tasks at most in this run")

    def handle(self, *args, **opts):
        from feedback.backends import JudgeUnavailable
        from feedback.models import Judge
        from feedback.runs import run_judge

        if opts["limit"] is not None and opts["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        try:
            project = find_project(opts["project"])
        except Project.DoesNotExist as exc:
            raise CommandError(str(exc)) from None
        judge = Judge.objects.filter(project=project, name=opts["judge"]).first()
        if judge is None:
            names = ", ".join(Judge.objects.filter(project=project).values_list("name", flat=True)) or "none"
            raise CommandError(f"project {project.name!r} has no judge {opts['judge']!r} (its judges: {names})")
        if not judge.enabled:
            raise CommandError(f"judge {judge.name!r} is disabled")
        tty = sys.stderr.isatty()

        def bar(done: int, total: int) -> None:
            filled = int(30 * done / max(total, 1))
            line = f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} tasks"
            self.stderr.write(("\r" + line.ljust(60)) if tty else line, ending="" if tty else "\n")

        try:
            summary = run_judge(judge, opts["limit"], progress=bar)
        except JudgeUnavailable as exc:
            raise CommandError(f"{exc} (what was answered is kept: run it again to continue)") from None
        if tty:
            self.stderr.write("")
        if summary.stopped_by == "budget":
            self.stderr.write(f"stopped: judge {judge.name!r} has spent its budget of {judge.budget}")
        self.stdout.write(json.dumps(summary.as_dict()))
