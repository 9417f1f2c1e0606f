"""manage.py export_reward_model --project X [--number N] --out DIR [--merge]"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.importer import find_project
from annotation.models import Project
from rewardmodel import registry
from rewardmodel.exporter import export_version
from rewardmodel.models import RewardModelVersion


class Command(BaseCommand):
    help = ("Export a reward-model version (default: the active one) as a folder transformers loads; --merge folds a "
            "LoRA version's adapters into its base model.")

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project id or name")
        parser.add_argument("--number", type=int, help="version number (default: the active version)")
        parser.add_argument("--out", required=True, help="folder to write (must not exist, or be empty)")
        parser.add_argument("--merge", action="store_true", help="merge LoRA adapters into the base model")

    def handle(self, *args, **opts):
        try:
            project = find_project(opts["project"])
        except Project.DoesNotExist as exc:
            raise CommandError(str(exc)) from None
        if opts["number"] is None:
            version = registry.active_version(project)
            if version is None:
                raise CommandError(f"{project} has no active version; name one with --number")
        else:
            version = RewardModelVersion.objects.filter(project=project, number=opts["number"]).first()
            if version is None:
                raise CommandError(f"{project} has no version {opts['number']}")
        if version.status not in (RewardModelVersion.READY, RewardModelVersion.REJECTED):
            raise CommandError(f"version {version.number} is {version.status}: only finished versions export")
        try:
            written = export_version(version, Path(opts["out"]), merge=opts["merge"])
        except (FileNotFoundError, FileExistsError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(written))
