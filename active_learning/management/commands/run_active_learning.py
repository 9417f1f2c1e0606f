"""manage.py run_active_learning --project X [--strategy S] [--batch-size B] [--seed N] [--queue]"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from active_learning.pipeline import RoundError, run_round
from active_learning.selection import POLICIES
from annotation.importer import find_project
from annotation.models import Project


class Command(BaseCommand):
    help = "Run one active-learning round for a project now (or queue it on the gpu queue with --queue)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project id or name")
        parser.add_argument("--strategy", choices=POLICIES, help="default: the project's policy")
        parser.add_argument("--batch-size", type=int, help="default: the project's policy")
        parser.add_argument("--seed", type=int)
        parser.add_argument("--queue", action="store_true", help="send to Celery instead of running here")

    def handle(self, *args, **opts):
        try:
            project = find_project(opts["project"])
        except Project.DoesNotExist as exc:
            raise CommandError(str(exc)) from None
        if opts["queue"]:
            from active_learning.tasks import run_round as task

            res = task.delay(project.pk, strategy=opts["strategy"], batch_size=opts["batch_size"], seed=opts["seed"])
            self.stdout.write(f"queued task {res.id}")
            return
        try:
            rnd = run_round(project, opts["strategy"], opts["batch_size"], seed=opts["seed"])
        except RoundError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"round {rnd.pk}: {rnd.status}, {rnd.items.count()} selected")
        self.stdout.write(json.dumps(rnd.summary, indent=2))
