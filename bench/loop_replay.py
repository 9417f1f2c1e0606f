"""Closed-loop replay through the running platform: routing on vs off, same seeds, same label budget.

For each seed and each arm (``plain``: the queue's own order; ``routing``: active-learning rounds after every
retrain) this starts nothing new but one replay (``manage.py replay_raters``) against one running stack:

* a fresh PostgreSQL database (``--db``, dropped and created) and a Redis database (``--redis-db``, flushed);
* ``manage.py run_demo``: the web server, one Celery worker on ``default,gpu`` and Celery beat, whose retrain
  check is set to run every ``--beat-seconds`` (10 minutes in a real deployment);
* simulated raters over HTTP with API tokens, answering with real human votes (see ``replay/loop.py``).

Every promoted version's accuracy on a fixed test set (never imported) is read through the scoring API. The
summary compares the arms paired by seed: labels the routing arm needs to reach the plain arm's final test
accuracy ÷ the labels the plain arm needs for it, and the gain in area under the learning curve, each with a 95 %
interval from resampling seeds and test pairs together.

    .venv/bin/python bench/loop_replay.py [--dataset pandalm] [--seeds 0 1] [--budget 300]

Writes bench/results/loop_replay.json and bench/results/loop_replay.png. Needs PostgreSQL and Redis (as
`make test`); reads ../shared/data in place.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PY = sys.executable
sys.path.insert(0, str(ROOT / "bench"))

from active_learning_sim import labels_to_reach  # noqa: E402  (one definition of "labels needed")


def fresh_database(url_base: str, name: str) -> str:
    import psycopg

    with psycopg.connect(f"{url_base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{url_base}/{name}"


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def manage(env: dict, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([PY, str(ROOT / "manage.py"), *argv], env=env, cwd=ROOT, check=check, text=True,
                          capture_output=True)


def wait_for(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except Exception:
            time.sleep(1)
    raise TimeoutError(f"{url} did not answer within {seconds:.0f} s")


BEAT_EVERY = """
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from rewardmodel.apps import RETRAIN_CHECK_NAME
every, _ = IntervalSchedule.objects.get_or_create(every={seconds}, period=IntervalSchedule.SECONDS)
PeriodicTask.objects.filter(name=RETRAIN_CHECK_NAME).update(interval=every)
"""


def step_curve(record: dict, checkpoints: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per checkpoint: the test correctness (n_test,) of the version active then; chance (0.5) before the first."""
    n_test = record["test_pairs"]
    by_labels = {p["labels"]: p for p in record.get("curve", [])}
    rows, last = [], np.full(n_test, 0.5)
    for c in checkpoints:
        if c in by_labels:
            last = np.array([{"1": 1.0, "h": 0.5, "0": 0.0}[ch] for ch in by_labels[c]["test_correct"]])
        rows.append(last)
    return np.array(checkpoints, dtype=float), np.stack(rows)


def compare(curves: dict[str, list[np.ndarray]], labels: np.ndarray, boot: int = 2000, seed: int = 0) -> dict:
    """Paired by seed: routing's labels to reach plain's final accuracy ÷ plain's own, and the AUC gain. Each seed's
    curves are (checkpoints, its test pairs); test sets differ in size between seeds (whole prompts go to the test
    set), so a resample draws seeds, then each drawn seed's own test pairs, the same ones for both arms."""
    plain, routing = curves["plain"], curves["routing"]
    n_seeds = len(plain)
    rng = np.random.default_rng(seed)

    def measures(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
        pa = np.mean([p.mean(axis=1) for p, _ in pairs], axis=0)  # mean test accuracy per checkpoint
        ra = np.mean([r.mean(axis=1) for _, r in pairs], axis=0)
        return labels_to_reach(labels, ra, pa[-1]) / labels_to_reach(labels, pa, pa[-1]), float(np.mean(ra - pa))

    ratio, gain = measures(list(zip(plain, routing, strict=True)))
    ratios, gains = [], []
    for _ in range(boot):
        drawn = []
        for s in rng.integers(0, n_seeds, n_seeds):
            t = rng.integers(0, plain[s].shape[1], plain[s].shape[1])
            drawn.append((plain[s][:, t], routing[s][:, t]))
        r_, g_ = measures(drawn)
        ratios.append(r_)
        gains.append(g_)
    ratios, gains = np.array(ratios), np.array(gains)
    finite = ratios[np.isfinite(ratios)]
    hi = float(np.quantile(ratios, 0.975)) if len(finite) >= 0.975 * len(ratios) else None
    return {
        "plain_accuracy": np.mean([p.mean(axis=1) for p in plain], axis=0).round(4).tolist(),
        "routing_accuracy": np.mean([r.mean(axis=1) for r in routing], axis=0).round(4).tolist(),
        "label_ratio": float(ratio),
        "label_ratio_ci95": [float(np.quantile(finite, 0.025)) if len(finite) else None, hi],
        "auc_gain": gain,
        "auc_gain_ci95": [float(x) for x in np.quantile(gains, [0.025, 0.975])],
    }


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = summary["checkpoints"]
    c = summary["comparison"]
    fig, ax = plt.subplots(figsize=(6.5, 4.3))
    ax.plot(labels, c["plain_accuracy"], marker="o", label="routing off (plain queue order)")
    lo, hi = c["label_ratio_ci95"]
    interval = f"[{lo:.2f}, {hi:.2f}]" if hi is not None else f"[{lo:.2f}, ∞)" if lo is not None else "[–, ∞)"
    ax.plot(labels, c["routing_accuracy"], marker="o",
            label=f"routing on ({summary['config']['strategy']}): {c['label_ratio']:.2f}× labels {interval}, "
                  f"AUC {c['auc_gain']:+.3f}")
    for arm, runs in summary["runs"].items():
        for run in runs:
            xs = [p["labels"] for p in run["curve"]]
            ys = [p["test_accuracy"] for p in run["curve"]]
            ax.plot(xs, ys, lw=0.6, alpha=0.35, color="C0" if arm == "plain" else "C1")
    ax.set_xlabel("labels (rankings submitted through the API)")
    ax.set_ylabel("active version's test accuracy")
    ax.set_title(f"closed-loop replay, {summary['config']['dataset']}: {len(summary['config']['seeds'])} paired "
                 "seeds", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_summary(args, runs: dict[str, list[dict]], t0: float) -> dict:
    """The comparison over the seeds both arms finished, written (JSON and PNG) after every seed: a stopped run
    keeps what it measured."""
    checkpoints = list(range(args.retrain_every, args.budget + 1, args.retrain_every))
    if checkpoints[-1] != args.budget:
        checkpoints.append(args.budget)
    curves = {arm: [step_curve(r, checkpoints)[1] for r in rs] for arm, rs in runs.items()}
    summary = {
        "config": vars(args) | {"seeds": args.seeds},
        "checkpoints": checkpoints,
        "comparison": compare(curves, np.array(checkpoints, dtype=float)),
        "runs": {arm: [{k: r.get(k) for k in ("settings", "versions", "elapsed_s", "wall_s", "final_labels")}
                       | {"curve": [{k: p[k] for k in ("labels", "version", "test_accuracy")} for p in r["curve"]]}
                       for r in rs] for arm, rs in runs.items()},
        "runtime_s": round(time.time() - t0, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1))
    plot(summary, out.with_suffix(".png"))
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="pandalm")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--strategy", default="auto", help="the routing arm's policy (auto: the platform's default)")
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--retrain-every", type=int, default=50)
    ap.add_argument("--test-size", type=int, default=200)
    ap.add_argument("--raters", type=int, default=6)
    ap.add_argument("--backbone", default="", help="local model folder (default: MiniLM)")
    ap.add_argument("--train", default="", help="TrainConfig JSON (default: replay_raters')")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--postgres", default=os.environ.get("REPLAY_POSTGRES", "postgres://postgres@127.0.0.1:5432"))
    ap.add_argument("--db", default="verdict_replay")
    ap.add_argument("--redis", default=os.environ.get("REPLAY_REDIS", "redis://127.0.0.1:6379/14"))
    ap.add_argument("--beat-seconds", type=int, default=5)
    ap.add_argument("--out", default=str(RESULTS / "loop_replay.json"))
    ap.add_argument("--keep", default="", help="an earlier run's work folder: its finished records ({arm}-{seed}.json) "
                    "are read instead of replayed again")
    args = ap.parse_args()

    t0 = time.time()
    work = Path(tempfile.mkdtemp(prefix="verdict-replay-"))
    # Simulated raters label far faster than people: lift the rater-loop throttle for this server only.
    env = {**os.environ, "VERDICT_THROTTLE_RATER": "100000/min", "VERDICT_THROTTLE_USER": "100000/min",
           "VERDICT_MODE": "demo", "DATABASE_URL": fresh_database(args.postgres, args.db),
           "REDIS_URL": args.redis, "VERDICT_VAR_DIR": str(work), "VERDICT_MODEL_ROOT": str(work / "models"),
           "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    flush_redis(args.redis)
    manage(env, "migrate", "--noinput")
    manage(env, "shell", "-c", BEAT_EVERY.format(seconds=args.beat_seconds))
    log = open(work / "stack.log", "w")  # noqa: SIM115 (open for the stack's whole life)
    stack = subprocess.Popen([PY, str(ROOT / "manage.py"), "run_demo", "--port", str(args.port)], env=env, cwd=ROOT,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{args.port}"
    runs: dict[str, list[dict]] = {"plain": [], "routing": []}
    try:
        wait_for(url + "/accounts/login/")
        print(f"stack up at {url} (log: {work / 'stack.log'})", flush=True)
        for seed in args.seeds:
            for arm in ("plain", "routing"):
                state = work / f"{arm}-{seed}.json"
                kept = Path(args.keep) / state.name if args.keep else None
                record = json.loads(kept.read_text()) if kept is not None and kept.is_file() else {}
                if record.get("finished"):
                    record["wall_s"] = round(record.get("elapsed_s", 0.0), 1)
                    runs[arm].append(record)
                    print(f"{arm} seed {seed}: kept from {kept}", flush=True)
                    continue
                argv = ["replay_raters", "--url", url, "--dataset", args.dataset, "--arm", arm, "--seed", str(seed),
                        "--strategy", args.strategy, "--budget", str(args.budget), "--retrain-every",
                        str(args.retrain_every), "--test-size", str(args.test_size), "--raters", str(args.raters),
                        "--state", str(state)]
                if args.backbone:
                    argv += ["--backbone", args.backbone]
                if args.train:
                    argv += ["--train", args.train]
                started = time.time()
                proc = subprocess.run([PY, str(ROOT / "manage.py"), *argv], env=env, cwd=ROOT, text=True)
                if proc.returncode:
                    raise SystemExit(f"replay {arm} seed {seed} failed ({proc.returncode}); see {work}")
                record = json.loads(state.read_text())
                record["wall_s"] = round(time.time() - started, 1)
                runs[arm].append(record)
                print(f"{arm} seed {seed}: {record['wall_s']} s, curve "
                      f"{[(p['labels'], round(p['test_accuracy'], 3)) for p in record.get('curve', [])]}", flush=True)
            if len(runs["plain"]) >= 2 and seed != args.seeds[-1]:
                write_summary(args, runs, t0)
    finally:
        os.killpg(stack.pid, signal.SIGTERM)
        try:
            stack.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
        log.close()

    summary = write_summary(args, runs, t0)
    c = summary["comparison"]
    print(json.dumps({k: c[k] for k in ("label_ratio", "label_ratio_ci95", "auc_gain", "auc_gain_ci95")}))
    print(f"runtime {summary['runtime_s']} s → {args.out}")


if __name__ == "__main__":
    main()
