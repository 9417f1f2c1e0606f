"""manage.py train_reward_model --project X [--sync] [--backbone PATH] [--epochs N] [--set key=value ...]"""

from __future__ import annotations

import json
import sys
import time

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
                result = run_training(project.pk, trigger="manual", backbone=opts["backbone"], overrides=overrides,
                                      progress_hook=self._progress_bar())
            except (ValueError, FileNotFoundError) as exc:
                raise CommandError(str(exc)) from exc
            if sys.stderr.isatty():
                self.stderr.write("")
            if result.get("reason"):
                self.stderr.write(f"version {result['version_id']}: {result['reason']}")
            self.stdout.write(json.dumps(result))
        else:
            from rewardmodel.launch import launch_training

            async_result = launch_training(project, trigger="manual", backbone=opts["backbone"], overrides=overrides)
            task = async_result.parent or async_result
            self.stdout.write(f"queued training of {project} as task {task.id}")

    def _progress_bar(self):
        """Steps, loss and time left on stderr: a bar redrawn in place on a terminal, else a line per 10 %."""
        tty, started, last = sys.stderr.isatty(), time.monotonic(), {"decile": -1}

        def hook(step: int, total: int, loss: float) -> None:
            fraction = step / max(total, 1)
            elapsed = time.monotonic() - started
            left = elapsed / fraction - elapsed if fraction else 0.0
            line = (f"[{'#' * int(30 * fraction)}{'.' * (30 - int(30 * fraction))}] step {step}/{total} "
                    f"loss {loss:.4f} · {elapsed:.0f} s, about {left:.0f} s left")
            if tty:
                self.stderr.write("\r" + line.ljust(90), ending="")
            elif int(10 * fraction) > last["decile"] or step == total:
                last["decile"] = int(10 * fraction)
                self.stderr.write(line)
        return hook
