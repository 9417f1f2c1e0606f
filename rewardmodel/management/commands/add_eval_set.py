"""manage.py add_eval_set --project X --name NAME FILE [--replace] — held-out pairs every new version is scored on."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.importer import ImportFailed, find_project
from annotation.models import Project
from rewardmodel.eval_sets import add_eval_set


class Command(BaseCommand):
    help = ("Attach an evaluation set (pairs: prompt/chosen/rejected or HH transcripts, optional subset) to a project; "
            "every version trained afterwards reports its accuracy per subset.")

    def add_arguments(self, parser):
        parser.add_argument("path", help=".jsonl, .jsonl.gz or .parquet file of pairs")
        parser.add_argument("--project", required=True, help="project id or name")
        parser.add_argument("--name", required=True, help="the set's name, e.g. rewardbench")
        parser.add_argument("--replace", action="store_true", help="replace the project's set of that name")

    def handle(self, *args, **opts):
        try:
            project = find_project(opts["project"])
        except Project.DoesNotExist as exc:
            raise CommandError(str(exc)) from None
        if not Path(opts["path"]).is_file():
            raise CommandError(f"no such file: {opts['path']}")
        try:
            eval_set = add_eval_set(project, opts["name"], Path(opts["path"]), replace=opts["replace"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        except ImportFailed as exc:
            if all(row == 0 for row, _ in exc.errors):  # about the set or the file, not a row
                raise CommandError("; ".join(message for _, message in exc.errors)) from None
            for row, message in exc.errors:
                self.stderr.write(f"{opts['path']}:{row}: {message}")
            raise CommandError(f"{len(exc.errors)} error(s); no evaluation set was added") from None
        subsets = sorted(set(eval_set.pairs.values_list("subset", flat=True)))
        self.stdout.write(json.dumps({"eval_set": eval_set.name, "pairs": eval_set.pairs.count(), "subsets": subsets}))
