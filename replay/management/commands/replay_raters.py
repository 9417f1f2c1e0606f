"""manage.py replay_raters --url http://127.0.0.1:8000 --dataset pandalm --arm routing|plain [...]"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings as django_settings
from django.core.management.base import BaseCommand, CommandError

from replay import datasets
from replay.loop import ARMS, Replay, ReplaySettings
from verdict_client import ApiError


class Command(BaseCommand):
    help = ("Closed-loop replay: simulated raters work the running server's rater API with real human labels, "
            "while its worker retrains and (arm 'routing') routes; records every version and its test accuracy.")

    def add_arguments(self, parser):
        d = ReplaySettings()
        parser.add_argument("--url", required=True, help="the running server, e.g. http://127.0.0.1:8000")
        parser.add_argument("--dataset", choices=sorted(datasets.DATASETS), default=d.dataset)
        parser.add_argument("--arm", choices=ARMS, default=d.arm)
        parser.add_argument("--strategy", default=d.strategy, help="active-learning strategy of the routing arm")
        parser.add_argument("--seed", type=int, default=d.seed)
        parser.add_argument("--raters", type=int, default=d.raters)
        parser.add_argument("--budget", type=int, default=d.budget, help="labels in all")
        parser.add_argument("--retrain-every", type=int, default=d.retrain_every)
        parser.add_argument("--test-size", type=int, default=d.test_size)
        parser.add_argument("--pool-size", type=int, default=d.pool_size, help="0: every pair not in the test set")
        parser.add_argument("--al-batch", type=int, default=d.al_batch)
        parser.add_argument("--backbone", default=d.backbone, help="local model folder (default: MiniLM)")
        parser.add_argument("--train", default=json.dumps(d.train), help="TrainConfig fields as JSON")
        parser.add_argument("--min-train-rankings", type=int, default=d.min_train_rankings)
        parser.add_argument("--min-heldout-pairs", type=int, default=d.min_heldout_pairs)
        parser.add_argument("--trigger", choices=["beat", "send"], default=d.trigger,
                            help="who starts retraining: beat (running) or the replay sending beat's check")
        parser.add_argument("--wait-timeout", type=float, default=d.wait_timeout)
        parser.add_argument("--project", help="project name (default: replay <dataset> <arm> seed <seed>)")
        parser.add_argument("--state", help="record file (default: var/replay/<project>.json)")

    def handle(self, *args, **o):
        try:
            train = json.loads(o["train"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--train is not JSON: {exc}") from exc
        s = ReplaySettings(
            dataset=o["dataset"], arm=o["arm"], strategy=o["strategy"], seed=o["seed"], raters=o["raters"],
            budget=o["budget"], retrain_every=o["retrain_every"], test_size=o["test_size"],
            pool_size=o["pool_size"], al_batch=o["al_batch"], backbone=o["backbone"], train=train,
            min_train_rankings=o["min_train_rankings"], min_heldout_pairs=o["min_heldout_pairs"],
            trigger=o["trigger"], wait_timeout=o["wait_timeout"])
        try:
            s.validate()
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        name = o["project"] or f"replay {s.dataset} {s.arm} seed {s.seed}"
        state = Path(o["state"] or Path(django_settings.VAR_DIR) / "replay" / f"{name.replace(' ', '_')}.json")
        replay = Replay(s, name, o["url"], state, log=lambda line: self.stderr.write(line))
        try:
            record = replay.run()
        except (FileNotFoundError, ApiError, TimeoutError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        curve = record.get("curve", [])
        final = curve[-1]["test_accuracy"] if curve else None
        self.stdout.write(json.dumps({"project": name, "state": str(state), "labels": record.get("final_labels"),
                                      "versions": len(record.get("versions", {})), "final_test_accuracy": final}))
