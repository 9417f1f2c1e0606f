"""Closed-loop replay: simulated raters work a running Verdict over HTTP, answering with real human labels.

One replay is one *arm* on one project:

1. Set-up (idempotent, so a killed replay resumes): the dataset's pairs are split (seeded) into a fixed test set,
   never imported, and a pool. The project (K = 2, overlap 1) is created and the pool imported through the API as
   its manager; raters get API tokens; the retrain policy fires every ``retrain_every`` new rankings with the
   given backbone and gate minimums; the active-learning policy is on for the ``routing`` arm and off for
   ``plain`` (plain queue order: the pool's seeded order).
2. Raters take turns through the ordinary rater loop, ``POST …/tasks/next/`` then ``POST …/submit/``. Each
   answers with one real human vote on that pair (PandaLM: one of its 3 annotators; LLMFAO: one of its crowd
   workers; a tie is submitted as a tie), so the disagreement is the humans' own.
3. At every ``retrain_every`` labels the raters pause until the platform has retrained: beat's retrain check (or,
   with ``trigger="send"``, the same check sent to the worker by the replay) launches training on the worker, the
   promotion gate decides, and in the routing arm the chained active-learning round re-prioritises the queue.
4. Each finished version is recorded (labels so far, held-out accuracy and calibration, the gate's reason, wall
   time); whenever the active version changes, the fixed test set is scored through ``POST …/score/``.

The record is a JSON file written after every checkpoint; running the same replay again continues from the
database (rankings already submitted are kept, a rater's live lease is handed back to them).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.authtoken.models import Token

from active_learning.models import ActiveLearningPolicy, SelectionRound
from annotation.models import Completion, Membership, Project, Ranking
from replay import datasets
from rewardmodel.models import RetrainPolicy, TrainingRun
from verdict_client import ApiClient, ApiError

ARMS = ("routing", "plain")
SCORE_CHUNK = 12  # pairs per scoring call: 24 items of up to 256 tokens stay inside VERDICT_SCORE_MAX_TOKENS
RETRAIN_CHECK = "rewardmodel.tasks.check_retrain_schedules"
RETRIES = 8  # doubling waits up to 30 s: a replay of hours rides out a minute or two of an overloaded database


@dataclass
class ReplaySettings:
    dataset: str = "pandalm"
    arm: str = "routing"
    strategy: str = "auto"  # the platform's default policy
    seed: int = 0
    raters: int = 6
    budget: int = 300
    retrain_every: int = 50
    test_size: int = 200
    pool_size: int = 0  # 0: every pair not in the test set
    al_batch: int = 40
    backbone: str = ""  # blank: the project default (MiniLM)
    train: dict = field(default_factory=lambda: {"epochs": 2, "lr": 1e-4, "max_length": 128, "batch_rankings": 8,
                                                 "holdout_fraction": 0.25})
    min_train_rankings: int = 30
    min_heldout_pairs: int = 10
    trigger: str = "beat"  # or "send": the replay sends the retrain check itself (no beat needed)
    wait_timeout: float = 1800.0

    def validate(self) -> None:
        if self.arm not in ARMS:
            raise ValueError(f"arm must be one of {ARMS}, not {self.arm!r}")
        if self.trigger not in ("beat", "send"):
            raise ValueError("trigger must be 'beat' or 'send'")
        if self.dataset not in datasets.DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose one of {', '.join(datasets.DATASETS)}")
        for name in ("raters", "budget", "retrain_every", "test_size", "al_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


def split_pairs(n: int, test_size: int, pool_size: int, seed: int, prompts: list | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """(test, pool) pair indices, seeded. With each pair's prompt, whole prompts go to the test set (in a seeded
    order, until it holds at least `test_size` pairs): the datasets repeat item pairs across prompts' rows, and a
    split by pair would let a pool copy reveal a test answer. Without, a seeded permutation, the test set first."""
    if test_size >= n:
        raise ValueError(f"test_size {test_size} leaves no pool from {n} pairs")
    rng = np.random.default_rng(20_000 + seed)
    if prompts is None:
        perm = rng.permutation(n)
        test, pool = perm[:test_size], perm[test_size:]
    else:
        by_prompt: dict = {}
        for i, p in enumerate(prompts):
            by_prompt.setdefault(p, []).append(i)
        chosen: list[int] = []
        for key in rng.permutation(sorted(by_prompt)):
            if len(chosen) >= test_size:
                break
            chosen.extend(by_prompt[key])
        test = np.array(sorted(chosen), dtype=np.int64)
        pool = rng.permutation(np.setdiff1d(np.arange(n), test))
        if not len(pool):
            raise ValueError(f"test_size {test_size} leaves no pool from {n} pairs")
    return test, (pool[:pool_size] if pool_size else pool)


# --- set-up ------------------------------------------------------------------------------------


def _user_with_token(username: str, staff: bool = False) -> tuple[object, str]:
    user, created = get_user_model().objects.get_or_create(username=username, defaults={"is_staff": staff})
    if created:
        user.set_unusable_password()  # simulated raters only ever use their token
        user.save(update_fields=["password"])
    token, _ = Token.objects.get_or_create(user=user)
    return user, token.key


def import_lines(data: datasets.PreferenceData, pool: np.ndarray, dataset: str, seed: int) -> bytes:
    """The pool as Verdict JSONL: one K = 2 task per pair, its two answers in a seeded order (no label leaks)."""
    rng = random.Random(seed)
    lines = []
    for p in pool:
        a, b = data.pairs[int(p)]
        first, second = (a, b) if rng.random() < 0.5 else (b, a)
        lines.append(json.dumps({
            "id": f"{dataset}-{int(p)}",
            "prompt": data.items[first][0],
            "completions": [{"text": data.items[i][1], "model": f"item-{i}", "metadata": {"item": i}}
                            for i in (first, second)],
        }))
    return ("\n".join(lines) + "\n").encode()


def set_up(settings: ReplaySettings, project_name: str, base_url: str, data: datasets.PreferenceData,
           pool: np.ndarray) -> tuple[Project, str, list[str]]:
    """Create (or find) the project, its members, tokens and policies; import the pool once. Returns
    (project, manager token, rater tokens)."""
    _, manager_token = _user_with_token("replay-manager", staff=True)
    rater_tokens = []
    users = []
    for i in range(settings.raters):
        user, token = _user_with_token(f"replay-rater-{i + 1}")
        users.append(user)
        rater_tokens.append(token)
    manager = ApiClient(base_url, manager_token, retries=RETRIES)
    project = Project.objects.filter(name=project_name).first()
    if project is None:
        _, body = manager.post("/api/projects/", {"name": project_name, "k": 2, "overlap": 1,
                                                  "description": f"closed-loop replay of {settings.dataset}, "
                                                                 f"arm {settings.arm}, seed {settings.seed}"})
        project = Project.objects.get(pk=body["id"])
    for user in users:
        Membership.objects.get_or_create(project=project, user=user, defaults={"role": Membership.RATER})
    with transaction.atomic():
        RetrainPolicy.objects.update_or_create(project=project, defaults={
            "enabled": True, "min_new_rankings": settings.retrain_every, "backbone_path": settings.backbone,
            "hyperparameters": {**settings.train, "seed": settings.seed},
            "min_train_rankings": settings.min_train_rankings, "min_heldout_pairs": settings.min_heldout_pairs})
        ActiveLearningPolicy.objects.update_or_create(project=project, defaults={
            "enabled": settings.arm == "routing", "strategy": settings.strategy, "batch_size": settings.al_batch})
    if not project.tasks.exists():
        manager.post(f"/api/projects/{project.pk}/import/", import_lines(data, pool, settings.dataset, settings.seed),
                     content_type="application/x-ndjson")
    return project, manager_token, rater_tokens


# --- the simulated raters ----------------------------------------------------------------------


class Oracle:
    """Answers a task with one real human vote on its pair; simulated rater r mirrors a fixed real rater per pair."""

    def __init__(self, data: datasets.PreferenceData, project: Project, seed: int):
        self.data = data
        self.item_of = {cid: meta["item"] for cid, meta in
                        Completion.objects.filter(prompt__project=project).values_list("id", "metadata")
                        if isinstance(meta, dict) and "item" in meta}
        self.pair_of = {frozenset(p): n for n, p in enumerate(data.pairs)}
        self.offset = np.random.default_rng(30_000 + seed).integers(0, 1_000, size=len(data.pairs))

    def answer(self, rater: int, completion_ids: list[int]) -> list[list[int]]:
        c1, c2 = completion_ids
        by_item = {self.item_of[c1]: c1, self.item_of[c2]: c2}
        p = self.pair_of[frozenset(by_item)]
        votes = self.data.votes[p]
        vote = votes[(int(self.offset[p]) + rater) % len(votes)]
        preferred, other = self.data.pairs[p]
        if vote == 0:
            return [[c1, c2]]
        winner, loser = (preferred, other) if vote > 0 else (other, preferred)
        return [[by_item[winner]], [by_item[loser]]]


# --- the replay --------------------------------------------------------------------------------


@dataclass
class Replay:
    settings: ReplaySettings
    project_name: str
    base_url: str
    state_path: Path
    log: Callable[[str], None] = print
    record: dict = field(default_factory=dict)

    def run(self) -> dict:
        s = self.settings
        s.validate()
        data = datasets.load(s.dataset)
        test, pool = split_pairs(len(data.pairs), s.test_size, s.pool_size, s.seed,
                                 prompts=[data.items[a][0] for a, _ in data.pairs])
        project, manager_token, rater_tokens = set_up(s, self.project_name, self.base_url, data, pool)
        self.project = project
        self.manager = ApiClient(self.base_url, manager_token, retries=RETRIES)
        self.raters = [ApiClient(self.base_url, t, retries=RETRIES) for t in rater_tokens]
        self.oracle = Oracle(data, project, s.seed)
        self.test_pairs = [data.pairs[int(p)] for p in test]
        self.data = data
        self._load_record()
        started = self._start = time.monotonic() - self.record.get("elapsed_s", 0.0)
        turn = 0
        while True:
            labels = Ranking.objects.filter(task__project=project).count()
            if labels >= s.budget:
                break
            checkpoint = min(s.budget, (labels // s.retrain_every + 1) * s.retrain_every)
            before = labels
            labels, turn, exhausted = self._label_until(checkpoint, turn)
            if exhausted and labels == before:  # nothing new to train on: waiting would only time out
                self.log(f"[{self.project_name}] no task left for any rater at {labels} labels")
                break
            self.log(f"[{self.project_name}] {labels} labels; waiting for the platform to retrain")
            self._wait_for_training(labels)
            self.record["elapsed_s"] = time.monotonic() - started
            self._save()
            if exhausted:
                self.log(f"[{self.project_name}] no task left for any rater at {labels} labels")
                break
        self.record["finished"] = True
        self.record["elapsed_s"] = time.monotonic() - started
        self.record["final_labels"] = Ranking.objects.filter(task__project=self.project).count()
        self._save()
        return self.record

    # the rater loop

    def _label_until(self, target: int, turn: int) -> tuple[int, int, bool]:
        pid = self.project.pk
        labels = Ranking.objects.filter(task__project=self.project).count()
        idle = 0
        while labels < target:
            r = turn % len(self.raters)
            turn += 1
            status, assignment = self.raters[r].post(f"/api/projects/{pid}/tasks/next/")
            if status == 204:
                idle += 1
                if idle >= len(self.raters):
                    return labels, turn, True
                continue
            idle = 0
            order = self.oracle.answer(r, [c["id"] for c in assignment["completions"]])
            self.raters[r].post(f"/api/assignments/{assignment['id']}/submit/", {"order": order})
            labels += 1
        return labels, turn, False

    # waiting for the platform

    def _wait_for_training(self, labels: int) -> None:
        """Until a training that started after these labels finished (and, routing on, its round ran)."""
        s = self.settings
        since = self.record.setdefault("checkpoints", {}).get(str(labels))
        if since is None:
            since = time.time()
            self.record["checkpoints"][str(labels)] = since
        deadline = time.monotonic() + s.wait_timeout
        sent = 0.0
        while True:
            run = (TrainingRun.objects.filter(project=self.project, created_at__gte=_aware(since))
                   .exclude(status__in=[TrainingRun.QUEUED, TrainingRun.RUNNING]).order_by("created_at").first())
            if run is not None and (run.status != TrainingRun.SUCCEEDED or self._round_settled(run)):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"no finished training of {self.project} within {s.wait_timeout:.0f} s "
                                   "(is a worker on the gpu queue running, and beat or --trigger send?)")
            if s.trigger == "send" and time.monotonic() - sent > 15:
                from config.celery import app

                app.send_task(RETRAIN_CHECK, queue="default")
                sent = time.monotonic()
            time.sleep(1.0)
        self._record_versions(labels)

    def _round_settled(self, run: TrainingRun) -> bool:
        if self.settings.arm != "routing" or run.version_id is None:
            return True
        rnd = SelectionRound.objects.filter(project=self.project, dedupe_key=f"trained:{run.version_id}").first()
        return rnd is not None and rnd.status in (SelectionRound.DONE, SelectionRound.FAILED)

    # what the platform did

    def _record_versions(self, labels: int) -> None:
        versions = self.record.setdefault("versions", {})
        for row in self.manager.get(f"/api/projects/{self.project.pk}/reward-models/?limit=1000")["results"]:
            key = str(row["number"])
            if key in versions:
                continue
            m = row["metrics"]
            versions[key] = {
                "number": row["number"], "status": row["status"], "labels": labels,
                "train_rankings": m.get("train_rankings"), "heldout_pairs": m.get("heldout_pairs"),
                "heldout_accuracy": m.get("heldout_accuracy"), "ece_before": m.get("ece_before"),
                "ece_after": m.get("ece_after"), "temperature": m.get("temperature"),
                "gate_reason": row["gate_reason"], "promoted": row["promoted_at"] is not None,
                "wall_s": round(time.monotonic() - self._start, 1),
            }
            self.log(f"[{self.project_name}] v{row['number']} at {labels} labels: {row['gate_reason']}")
        self._evaluate_active(labels)

    def _evaluate_active(self, labels: int) -> None:
        """Score the fixed test set with whatever version is active now (through the scoring API)."""
        curve = self.record.setdefault("curve", [])
        correct, version = [], None
        for start in range(0, len(self.test_pairs), SCORE_CHUNK):
            chunk = self.test_pairs[start:start + SCORE_CHUNK]
            items = [{"prompt": self.data.items[i][0], "completion": self.data.items[i][1]}
                     for pair in chunk for i in pair]
            try:
                _, body = self.manager.post(f"/api/projects/{self.project.pk}/score/", {"items": items})
            except ApiError as exc:
                if exc.status == 404:  # nothing active yet
                    return
                raise
            scores = body["scores"]
            version = body["version"]
            correct += [1.0 if scores[2 * k] > scores[2 * k + 1] else 0.5 if scores[2 * k] == scores[2 * k + 1]
                        else 0.0 for k in range(len(chunk))]
        curve.append({"labels": labels, "version": version, "test_accuracy": float(np.mean(correct)),
                      "test_correct": "".join("1" if c == 1 else "h" if c == 0.5 else "0" for c in correct)})
        self.log(f"[{self.project_name}] {labels} labels: active v{version}, test accuracy {np.mean(correct):.3f}")

    # the record

    def _load_record(self) -> None:
        if self.state_path.is_file():
            self.record = json.loads(self.state_path.read_text())
        else:
            self.record = {"project": self.project_name, "project_id": self.project.pk,
                           "settings": asdict(self.settings), "test_pairs": len(self.test_pairs)}

    def _save(self) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.record, indent=1))
        tmp.replace(self.state_path)


def _aware(ts: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, tz=UTC)
