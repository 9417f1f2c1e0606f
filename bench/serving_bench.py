"""Reward serving, measured on one running stack: the reward server against the same model in process, and a closed
RL loop in which a GRPO policy's reward comes from Verdict and simulated raters answer its captured groups.

One stack (like ``bench/loop_replay.py``): a fresh PostgreSQL database and Redis database, gunicorn (the web
processes only route scoring requests), one Celery worker on ``default,gpu``, Celery beat (retrain check every
``--beat-seconds``) and one reward server (``manage.py serve_rewards``). Data: LLMFAO (13 prompts, answers from 59
models, 124 crowd workers' votes), read in place from ../shared/data.

1. **Set-up.** A K = 4 project; ``--seed-pairs`` LLMFAO pairs of 9 prompts are imported and labelled by simulated
   raters (one real crowd vote each, ``replay.loop.Oracle``); the platform trains and promotes v1 (MiniLM).
2. **Throughput and latency.** Batches of 1, 16 and 64 (prompt, answer) items, called one after another, through
   ``POST /api/projects/{id}/score/`` (HTTP → gunicorn → Redis → reward server → back) and through
   ``rewardmodel.scoring.score`` in this process with the same version; the two alternate call by call so that the
   machine's noise falls on both. Also 4 concurrent callers of 16 items (the server batches them together).
3. **The closed loop.** TRL's GRPO trainer, a tiny Llama policy built from a config, whose action is which of the
   59 models' answers to give on each of 4 held-back LLMFAO prompts (its first generated token picks the answer:
   the reward model then judges real answers, which real votes can rank). ``verdict_client.VerdictReward`` scores
   every step and Verdict captures every group. Every ``--steps-per-round`` steps the trainer pauses while the
   platform works: an active-learning round turns captured groups into K-way tasks (``source=policy``), simulated
   raters rank them from the crowd's votes (a vote on the exact pair where the crowd has one, else the models'
   Bradley–Terry strengths from all crowd votes), beat's retrain check trains on the new rankings, the gate decides,
   and the reward server hot-swaps the promoted version; the next step's rewards say which version scored them.

    .venv/bin/python bench/serving_bench.py [--rounds 3] [--steps-per-round 3]

Writes bench/results/serving.json and serving.png. Needs PostgreSQL and Redis (as ``make test``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PY = sys.executable
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from loop_replay import BEAT_EVERY, flush_redis, fresh_database, manage, wait_for  # noqa: E402  (one stack recipe)

BATCHES = (1, 16, 64)
CALLS = {1: 40, 16: 20, 64: 10}
TRAIN = {"epochs": 2, "lr": 1e-4, "max_length": 128, "batch_rankings": 8, "holdout_fraction": 0.25}


# --- the stack ---------------------------------------------------------------------------------


def start_stack(env: dict, port: int, work: Path) -> dict[str, subprocess.Popen]:
    celery = [PY, "-m", "celery", "-A", "config"]
    commands = {
        "web": [PY, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2",
                "--threads", "4", "--timeout", "120"],
        "worker": [*celery, "worker", "-Q", "default,gpu", "--concurrency", "1", "--loglevel", "INFO",
                   "--hostname", "bench@%h"],
        "beat": [*celery, "beat", "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"],
        "rewards": [PY, str(ROOT / "manage.py"), "serve_rewards", "--max-wait-ms", "5"],
    }
    procs = {}
    for name, argv in commands.items():
        log = open(work / f"{name}.log", "w")  # noqa: SIM115 (open for the process' whole life)
        procs[name] = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
    return procs


def stop_stack(procs: dict[str, subprocess.Popen]) -> None:
    for proc in procs.values():
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for proc in procs.values():
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def wait_until(check, what: str, timeout: float = 1800, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)
    return value


# --- the simulated raters of captured groups ---------------------------------------------------


class GroupOracle:
    """Ranks a K-way task of LLMFAO answers as the crowd would: each pair by one real vote where the crowd compared
    exactly those two answers, else by the two models' Bradley–Terry strengths fitted on every crowd vote; the
    ranking orders the answers by their wins (Copeland), strengths breaking ties."""

    def __init__(self, data, seed: int):
        from quality.consensus import TIE, Votes, fit_bradley_terry

        self.data = data
        self.rng = random.Random(seed)
        self.item_of = {item: i for i, item in enumerate(data.items)}
        self.votes_on = {frozenset(p): (p, v) for p, v in zip(data.pairs, data.votes, strict=True)}
        models = sorted({m for m in data.models if m})
        self.model_index = {m: i for i, m in enumerate(models)}
        a, b, outcome = [], [], []
        for (first, second), votes in zip(data.pairs, data.votes, strict=True):
            for v in votes:
                a.append(self.model_index[data.models[first]])
                b.append(self.model_index[data.models[second]])
                outcome.append(0 if v > 0 else 1 if v < 0 else TIE)
        fit = Votes.from_arrays(np.zeros(len(a)), a, b, outcome, items=models)
        self.strength, _ = fit_bradley_terry(fit)

    def strength_of(self, item: int) -> float:
        return float(self.strength[self.model_index[self.data.models[item]]])

    def prefers(self, x: int, y: int) -> int:
        """+1 when x wins, −1 when y wins, 0 for a tie."""
        known = self.votes_on.get(frozenset((x, y)))
        if known is not None:
            (preferred, _), votes = known
            vote = self.rng.choice(votes)
            return vote if preferred == x else -vote
        return int(np.sign(self.strength_of(x) - self.strength_of(y)))

    def rank(self, prompt: str, completions: list[dict]) -> list[list[int]]:
        items = [self.item_of[(prompt, c["text"])] for c in completions]
        wins = [0.0] * len(items)
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                v = self.prefers(items[i], items[j])
                wins[i] += (v > 0) + 0.5 * (v == 0)
                wins[j] += (v < 0) + 0.5 * (v == 0)
        order = sorted(range(len(items)), key=lambda k: (-wins[k], -self.strength_of(items[k])))
        groups: list[list[int]] = []
        for k in order:  # equal wins and strength: one tied group
            if groups and wins[k] == wins[groups[-1][0]] and \
                    self.strength_of(items[k]) == self.strength_of(items[groups[-1][0]]):
                groups[-1].append(k)
            else:
                groups.append([k])
        return [[completions[k]["id"] for k in g] for g in groups]


def label_open_tasks(raters, project_id: int, answer) -> int:
    """Raters take turns through tasks/next → submit until none is served to anyone; returns the rankings made."""
    made, idle, turn = 0, 0, 0
    while idle < len(raters):
        rater = raters[turn % len(raters)]
        turn += 1
        status, assignment = rater.post(f"/api/projects/{project_id}/tasks/next/")
        if status == 204:
            idle += 1
            continue
        idle = 0
        rater.post(f"/api/assignments/{assignment['id']}/submit/", {"order": answer(turn % len(raters), assignment)})
        made += 1
    return made


# --- part 1: set-up ----------------------------------------------------------------------------


def set_up(args, url: str, data) -> dict:
    from active_learning.models import ActiveLearningPolicy
    from annotation.models import Membership, Project
    from replay.loop import Oracle, _user_with_token, import_lines
    from rewardmodel import registry
    from rewardmodel.models import RetrainPolicy, TrainingRun
    from serving.models import CapturePolicy
    from verdict_client import ApiClient

    rng = np.random.default_rng(args.seed)
    prompts = sorted({p for p, _ in data.items})
    policy_prompts = [prompts[i] for i in sorted(rng.choice(len(prompts), 4, replace=False))]
    seed_pool = [i for i, (a, _) in enumerate(data.pairs) if data.items[a][0] not in policy_prompts]
    seed_pool = rng.permutation(seed_pool)[: args.seed_pairs]

    _, manager_token = _user_with_token("bench-manager", staff=True)
    raters = [_user_with_token(f"bench-rater-{i + 1}") for i in range(args.raters)]
    manager = ApiClient(url, manager_token)
    _, body = manager.post("/api/projects/", {"name": "rl-loop", "k": 4, "overlap": 1,
                                              "description": "bench/serving_bench.py: the closed RL loop"})
    project = Project.objects.get(pk=body["id"])
    for user, _ in raters:
        Membership.objects.get_or_create(project=project, user=user, defaults={"role": Membership.RATER})
    retrain = {"enabled": False, "min_new_rankings": args.groups_per_round // 2, "backbone_path": "",
               "hyperparameters": {**TRAIN, "seed": args.seed}, "min_train_rankings": 24, "min_heldout_pairs": 3}
    RetrainPolicy.objects.update_or_create(project=project, defaults=retrain)
    ActiveLearningPolicy.objects.update_or_create(project=project, defaults={"enabled": True, "strategy": "auto",
                                                                             "batch_size": 8})
    CapturePolicy.objects.update_or_create(project=project, defaults={
        "enabled": True, "sample_rate": 1.0, "groups_per_round": args.groups_per_round})
    manager.post(f"/api/projects/{project.pk}/import/", import_lines(data, seed_pool, "llmfao", args.seed),
                 content_type="application/x-ndjson")

    rater_clients = [ApiClient(url, token) for _, token in raters]
    oracle = Oracle(data, project, args.seed)
    labelled = label_open_tasks(rater_clients, project.pk,
                                lambda r, a: oracle.answer(r, [c["id"] for c in a["completions"]]))
    RetrainPolicy.objects.filter(project=project).update(enabled=True)  # now beat trains v1 on all of them
    t0 = time.monotonic()

    def promoted():
        run = TrainingRun.objects.filter(project=project).exclude(
            status__in=[TrainingRun.QUEUED, TrainingRun.RUNNING]).first()
        if run is not None and registry.active_version(project) is None:
            raise SystemExit(f"the first training did not give an active version: {run.status}, {run.message}")
        return registry.active_version(project)

    version = wait_until(promoted, "v1 promoted")
    print(f"set-up: {labelled} seed rankings, v{version.number} active after {time.monotonic() - t0:.0f} s",
          flush=True)
    return {"project": project, "manager": manager, "raters": rater_clients, "manager_token": manager_token,
            "policy_prompts": policy_prompts, "seed_rankings": labelled}


# --- part 2: throughput and latency ------------------------------------------------------------


def throughput(args, ctx: dict, data) -> dict:
    from rewardmodel import registry, scoring
    from verdict_client import ApiClient

    project, manager = ctx["project"], ctx["manager"]
    version = registry.active_version(project)
    rng = np.random.default_rng(args.seed + 1)
    items = [data.items[i] for i in rng.permutation(len(data.items))]

    def batch(n: int, k: int) -> list[tuple[str, str]]:
        return [items[(k * n + j) % len(items)] for j in range(n)]

    def via_server(pairs) -> float:
        started = time.perf_counter()
        _, body = manager.post(f"/api/projects/{project.pk}/score/",
                               {"items": [{"prompt": p, "completion": c} for p, c in pairs]})
        assert body["served_by"].startswith("server:"), body["served_by"]
        return time.perf_counter() - started

    def in_process(pairs) -> float:
        started = time.perf_counter()
        scoring.score(version, [p for p, _ in pairs], [c for _, c in pairs])
        return time.perf_counter() - started

    in_process(batch(4, 0)), via_server(batch(4, 0))  # both warm: the model loaded on each side
    rows = []
    for n in BATCHES:
        seconds = {"server": [], "in_process": []}
        for k in range(CALLS[n]):
            pairs = batch(n, k)
            for arm, call in (("server", via_server), ("in_process", in_process))[:: 1 if k % 2 else -1]:
                seconds[arm].append(call(pairs))
        row = {"batch": n, "calls": CALLS[n]}
        for arm, s in seconds.items():
            s = np.array(s)
            row[arm] = {"items_per_s": round(n * len(s) / s.sum(), 2), "p50_ms": round(1000 * np.median(s), 1),
                        "p99_ms": round(1000 * np.quantile(s, 0.99), 1)}
        row["server_slowdown"] = round(row["in_process"]["items_per_s"] / row["server"]["items_per_s"], 3)
        rows.append(row)
        print(f"batch {n}: {json.dumps(row)}", flush=True)

    # Four callers at once, 16 items each: the reward server takes what waits and runs it as one batch.
    callers, n, per_caller = 4, 16, 8
    clients = [ApiClient(manager.base_url, ctx["manager_token"]) for _ in range(callers)]
    latencies: list[float] = []

    def caller(c: int) -> None:
        for k in range(per_caller):
            pairs = batch(n, 100 + c * per_caller + k)
            started = time.perf_counter()
            clients[c].post(f"/api/projects/{project.pk}/score/",
                            {"items": [{"prompt": p, "completion": x} for p, x in pairs]})
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    threads = [threading.Thread(target=caller, args=(c,)) for c in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    concurrent = {"callers": callers, "batch": n, "calls": callers * per_caller,
                  "items_per_s": round(callers * per_caller * n / wall, 2),
                  "p50_ms": round(1000 * float(np.median(latencies)), 1),
                  "p99_ms": round(1000 * float(np.quantile(latencies, 0.99)), 1)}
    print(f"concurrent: {json.dumps(concurrent)}", flush=True)
    return {"version": version.number, "rows": rows, "concurrent": concurrent,
            "goal": "server within 1.3x of in-process throughput at batch 64",
            "goal_met": bool(rows[-1]["server_slowdown"] <= 1.3)}


# --- part 3: the closed loop -------------------------------------------------------------------


def human_round(ctx: dict, oracle: GroupOracle) -> dict:
    """While the trainer waits: a round routes captured groups, raters rank them, the platform retrains, and the
    reward server swaps in what the gate promoted."""
    from active_learning.models import SelectionRound
    from annotation.models import RankingTask
    from rewardmodel import registry
    from rewardmodel.models import RetrainPolicy, TrainingRun
    from serving.models import CapturedSample

    project, manager, pid = ctx["project"], ctx["manager"], ctx["project"].pk
    started = time.monotonic()
    before = registry.active_version(project)
    tasks_before = RankingTask.objects.filter(project=project, source="policy").count()
    _, rnd = manager.post(f"/api/projects/{pid}/active-learning/rounds/", {})
    done = (SelectionRound.DONE, SelectionRound.FAILED)
    rnd = wait_until(lambda: SelectionRound.objects.filter(pk=rnd["id"], status__in=done).first(), "round", 600)
    since = time.time()
    ranked = label_open_tasks(ctx["raters"], pid, lambda r, a: oracle.rank(a["prompt"], a["completions"]))
    record = {"round": rnd.pk, "round_status": rnd.status, "round_strategy": rnd.strategy,
              "groups_captured": CapturedSample.objects.filter(project=project).values("group_key").distinct().count(),
              "policy_tasks": RankingTask.objects.filter(project=project, source="policy").count() - tasks_before,
              "rankings": ranked}
    if ranked < RetrainPolicy.objects.get(project=project).min_new_rankings:
        record["retrain"] = f"none: {ranked} new rankings is under the retrain policy's minimum"
    else:
        from datetime import UTC, datetime

        after = datetime.fromtimestamp(since - 1, tz=UTC)
        run = wait_until(lambda: TrainingRun.objects.filter(project=project, created_at__gte=after).exclude(
            status__in=[TrainingRun.QUEUED, TrainingRun.RUNNING]).order_by("created_at").first(), "retrain", 1800)
        version = run.version
        record |= {"training_run": run.pk, "training_status": run.status,
                   "version": version.number if version else None,
                   "gate_reason": version.gate_reason if version else run.message[:300],
                   "promoted": bool(version and version.promoted_at)}
        if version is not None:  # the round chained after this training, so the next step meets a settled queue
            wait_until(lambda: SelectionRound.objects.filter(project=project, dedupe_key=f"trained:{version.pk}",
                                                             status__in=done).exists(), "chained round", 600)
    after_version = registry.active_version(project)
    record |= {"active_before": before.number, "active_after": after_version.number,
               "wait_s": round(time.monotonic() - started, 1)}
    print(f"human round: {json.dumps(record)}", flush=True)
    return record


def closed_loop(args, ctx: dict, data, url: str, work: Path) -> dict:
    import torch
    from datasets import Dataset
    from transformers import LlamaConfig, LlamaForCausalLM, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rewardmodel.testing import make_tiny_tokenizer
    from verdict_client import VerdictReward

    oracle = GroupOracle(data, args.seed)
    prompts = ctx["policy_prompts"]
    answers = [[i for i, (p, _) in enumerate(data.items) if p == prompt] for prompt in prompts]
    reward = VerdictReward(url, ctx["manager_token"], ctx["project"].pk, run="grpo-loop", batch_size=64)
    steps: list[dict] = []

    def verdict(prompts, completions, completion_ids, prompt_index, trainer_state=None, **_):
        """The policy's first generated token picks which model's answer it gives; Verdict scores that answer."""
        chosen = [answers[i][(ids[0] if len(ids) else 0) % len(answers[i])]
                  for i, ids in zip(prompt_index, completion_ids, strict=True)]
        scores = reward(prompts=[data.items[i][0] for i in chosen], completions=[data.items[i][1] for i in chosen],
                        trainer_state=trainer_state)
        steps.append({"step": trainer_state.global_step if trainer_state else None, "version": reward.last_version,
                      "mean_reward": round(float(np.mean(scores)), 4), "distinct_answers": len(set(chosen)),
                      "crowd_strength": round(float(np.mean([oracle.strength_of(i) for i in chosen])), 4)})
        return scores

    verdict.__name__ = "verdict"
    rounds: list[dict] = []
    max_steps = args.rounds * args.steps_per_round + args.steps_per_round

    class HumanRounds(TrainerCallback):
        def on_step_end(self, _args, state, control, **kwargs):
            if state.global_step % args.steps_per_round == 0 and state.global_step < max_steps:
                rounds.append({"after_step": state.global_step, **human_round(ctx, oracle)})

    tokenizer = make_tiny_tokenizer(chat=False)
    tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(args.seed)
    policy = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                          num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                          max_position_embeddings=128, bos_token_id=tokenizer.bos_token_id,
                                          eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    train = Dataset.from_dict({"prompt": [f"question {i}: answer it" for i in range(len(prompts))] * 64,
                               "prompt_index": list(range(len(prompts))) * 64})
    config = GRPOConfig(output_dir=str(work / "grpo"), per_device_train_batch_size=4 * len(prompts),
                        num_generations=4,
                        max_completion_length=4, max_steps=max_steps, learning_rate=5e-3, logging_steps=1,
                        report_to=[], save_strategy="no", use_cpu=True, seed=args.seed, disable_tqdm=True)
    trainer = GRPOTrainer(model=policy, reward_funcs=[verdict], args=config, train_dataset=train,
                          processing_class=tokenizer, callbacks=[HumanRounds()])
    started = time.monotonic()
    trainer.train()
    return {"steps": steps, "rounds": rounds, "swaps": swaps_of(steps, rounds),
            "versions_used": sorted({s["version"] for s in steps}), "captured": reward.captured,
            "wall_s": round(time.monotonic() - started, 1)}


def swaps_of(steps: list[dict], rounds: list[dict]) -> list[dict]:
    """Per round that promoted a version: the first policy step scored with it. The reward server loads a promoted
    version in the background and answers with the old one meanwhile (no failed call), so the step right after a
    round may still be scored by the previous version."""
    swaps = []
    for r in rounds:
        if not r.get("promoted"):
            continue
        first = next((s["step"] for s in steps if s["version"] == r["version"]), None)
        swaps.append({"after_step": r["after_step"], "promoted": r["version"], "first_step_scored_with_it": first,
                      "steps_on_the_old_version": None if first is None else first - r["after_step"]})
    return swaps


# --- the report --------------------------------------------------------------------------------


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    rows = summary["throughput"]["rows"]
    x = np.arange(len(rows))
    for off, arm, label in ((-0.2, "server", "reward server (HTTP → Redis → serve_rewards)"),
                            (0.2, "in_process", "same model in process")):
        axes[0].bar(x + off, [r[arm]["items_per_s"] for r in rows], width=0.4, label=label)
    axes[0].set_xticks(x, [f"batch {r['batch']}" for r in rows])
    axes[0].set_ylabel("items / s (sequential calls)")
    axes[0].set_title("Scoring throughput, CPU")
    axes[0].legend(fontsize=8)
    loop = summary.get("loop")
    if loop:
        steps = [s for s in loop["steps"] if s["step"] is not None]
        axes[1].plot([s["step"] for s in steps], [s["mean_reward"] for s in steps], "o-", label="Verdict's reward")
        axes[1].plot([s["step"] for s in steps], [s["crowd_strength"] for s in steps], "s--",
                     label="crowd BT strength of the chosen answers")
        for r in loop["rounds"]:
            axes[1].axvline(r["after_step"], color="grey", lw=0.8)
            axes[1].annotate(f"v{r['active_after']}", (r["after_step"], axes[1].get_ylim()[1]), fontsize=8,
                             ha="left", va="top")
        axes[1].set_xlabel("GRPO step (grey: raters rank captured groups, retrain, hot-swap)")
        axes[1].set_title("Closed loop: GRPO on Verdict's reward")
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", default=["throughput", "loop"], choices=["throughput", "loop"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seed-pairs", type=int, default=96)
    ap.add_argument("--raters", type=int, default=12,
                    help="a rater ranks a prompt once: enough of them for every round over 4 prompts")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps-per-round", type=int, default=3)
    ap.add_argument("--groups-per-round", type=int, default=8)
    ap.add_argument("--port", type=int, default=8767)
    ap.add_argument("--postgres", default=os.environ.get("REPLAY_POSTGRES", "postgres://postgres@127.0.0.1:5432"))
    ap.add_argument("--db", default="verdict_serving_bench")
    ap.add_argument("--redis", default=os.environ.get("SERVING_BENCH_REDIS", "redis://127.0.0.1:6379/12"))
    ap.add_argument("--beat-seconds", type=int, default=5)
    ap.add_argument("--out", default=str(RESULTS / "serving.json"))
    args = ap.parse_args()

    t0 = time.time()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed bench still stops the stack it started
    work = Path(tempfile.mkdtemp(prefix="verdict-serving-"))
    env = {**os.environ, "VERDICT_THROTTLE_RATER": "100000/min", "VERDICT_THROTTLE_USER": "100000/min",
           "VERDICT_THROTTLE_SCORE": "100000/min", "VERDICT_MODE": "demo", "VERDICT_REWARD_SERVER": "required",
           "DATABASE_URL": fresh_database(args.postgres, args.db), "REDIS_URL": args.redis,
           "VERDICT_VAR_DIR": str(work), "VERDICT_MODEL_ROOT": str(work / "models"), "PYTHONUNBUFFERED": "1",
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "DJANGO_SETTINGS_MODULE": "config.settings"}
    flush_redis(args.redis)
    manage(env, "migrate", "--noinput")
    manage(env, "shell", "-c", BEAT_EVERY.format(seconds=args.beat_seconds))
    os.environ.update(env)
    import django

    django.setup()
    from replay import datasets

    data = datasets.load("llmfao")
    procs = start_stack(env, args.port, work)
    url = f"http://127.0.0.1:{args.port}"
    summary: dict = {"config": vars(args), "stack": "gunicorn 2×4 threads, 1 Celery worker, beat, 1 serve_rewards; "
                                                   "all on this machine's CPUs"}
    try:
        wait_for(url + "/accounts/login/")
        print(f"stack up at {url} (logs: {work})", flush=True)
        ctx = set_up(args, url, data)
        summary["seed_rankings"] = ctx["seed_rankings"]
        if "throughput" in args.parts:
            summary["throughput"] = throughput(args, ctx, data)
        if "loop" in args.parts:
            summary["loop"] = closed_loop(args, ctx, data, url, work)
    finally:
        stop_stack(procs)
    summary["runtime_s"] = round(time.time() - t0, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1))
    if "throughput" in summary:
        plot(summary, out.with_suffix(".png"))
    print(f"runtime {summary['runtime_s']} s → {out}")


if __name__ == "__main__":
    main()
