"""manage.py train_reward_model --project X [--sync] [--backbone PATH] [--epochs N] [--set key=value ...]"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from annotation.importer import find_project
from annotation.models import Project


class Command(BaseCommand):
    help = "Train a reward model for a project: enqueue on the gpu queue, or run in this process with --sync."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project id or name")
        parser.add_argument("--sync", action="store_true", help="train in this process instead of enqueuing")
        parser.add_argument("--backbone", help="local model folder (default: the policy's, else MiniLM)")
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="a TrainConfig option, JSON value (e.g. --set lr=3e-5 --set max_length=128)")

    def handle(self, *args, **opts):
        try:
            project = find_project(opts["project"])
        except Project.DoesNotExist as exc:
            raise CommandError(str(exc)) from None
        overrides = {}
        for item in opts["set"]:
            name, sep, raw = item.partition("=")
            if not sep:
                raise CommandError(f"--set wants KEY=VALUE, got {item!r}")
            try:
                overrides[name] = json.loads(raw)
            except json.JSONDecodeError:
                overrides[name] = raw
        if opts["epochs"] is not None:
            overrides["epochs"] = opts["epochs"]
        from rewardmodel.models import RetrainPolicy
        from rewardmodel.trainer import TrainConfig

        policy = RetrainPolicy.objects.filter(project=project).first()
        try:  # refused here, not on a worker hours later
            TrainConfig.from_dict({**(policy.hyperparameters if policy else {}), **overrides})
        except ValueError as exc:
            raise CommandError(f"training options: {exc}") from None
        if opts["sync"]:
            from rewardmodel.training import run_training

            try:
                result = run_training(project.pk, trigger="manual", backbone=opts["backbone"], overrides=overrides)
            except (ValueError, FileNotFoundError) as exc:
                raise CommandError(str(exc)) from exc
            if result.get("reason"):
                self.stderr.write(f"version {result['version_id']}: {result['reason']}")
            self.stdout.write(json.dumps(result))
        else:
            from rewardmodel.launch import launch_training

            async_result = launch_training(project, trigger="manual", backbone=opts["backbone"], overrides=overrides)
            task = async_result.parent or async_result
            self.stdout.write(f"queued training of {project} as task {task.id}")
