"""Peak memory of a training run against the number of rankings, this tree against a base commit (issue 25).

    .venv/bin/python bench/train_memory.py [--sizes 300000 3000000] [--base bc6c035] [--base-max 300000]  # ~5 min

Each run is its own process (its peak resident memory is the figure): it makes N synthetic K=2 rankings, hands them
to the trainer the way each tree's training task does, trains a tiny BERT reward model (rewardmodel.testing, the
packaged MiniLM tokenizer) for ``--steps`` optimiser steps and stops (TrainingInterrupted, as a worker's shutdown
does). This tree: the rankings go to a snapshot's example file on disk (rewardmodel.example_file) and the trainer
reads a subset of it a chunk at a time (rewardmodel.batching). The base: a list of every ranking in memory, every
completion tokenised before the first step. The model is tiny on purpose: what is measured is what grows with N.
Writes bench/results/train_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("the answer is careful and kind but the reply goes on about other things while it explains why this "
         "matters to the person asking").split()


def ranking(i: int):
    from rewardmodel.trainer import RankingExample

    words = [WORDS[(i * 7 + j) % len(WORDS)] for j in range(12 + i % 20)]
    prompt = f"question {i}: " + " ".join(words[:8])
    return RankingExample(prompt, [" ".join(words), " ".join(reversed(words[2:]))], [(0, 1)], str(i))


def child(args) -> None:
    """One measured run, in the tree whose path is first on sys.path."""
    from rewardmodel.backbones import load_backbone
    from rewardmodel.trainer import TrainConfig, TrainingInterrupted, train

    began = time.perf_counter()
    if args.lazy:
        from rewardmodel.example_file import ExampleFile, Subset

        stored = ExampleFile()
        for i in range(args.n):
            stored.append(ranking(i), [2 * i, 2 * i + 1])
        examples = Subset(stored, range(args.n))
    else:
        examples = [ranking(i) for i in range(args.n)]
    made = time.perf_counter()
    steps: list[float] = []
    config = TrainConfig(batch_rankings=16, max_length=64, device="cpu", num_threads=1, seed=0)
    try:
        train(*load_backbone(args.backbone), examples, config,
              progress=lambda s, t, loss: steps.append(time.perf_counter()),
              should_stop=lambda: len(steps) >= args.steps)
    except TrainingInterrupted:
        pass
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rankings": args.n, "peak_mib": round(peak_mib, 1), "make_s": round(made - began, 1),
                      "to_first_step_s": round(steps[0] - made, 2), "steps": len(steps)}))


def measure(tree: Path, n: int, backbone: Path, steps: int, lazy: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--n", str(n), "--backbone", str(backbone),
               "--steps", str(steps)] + (["--lazy"] if lazy else [])
    out = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[300_000, 3_000_000])
    parser.add_argument("--base", default="bc6c035")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--base-max", type=int, default=300_000, help="the base tree runs only sizes up to this")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--lazy", action="store_true")
    parser.add_argument("--n", type=int)
    parser.add_argument("--backbone")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "train_memory.json"))
    args = parser.parse_args()
    if args.child:
        return child(args)
    sys.path.insert(0, str(ROOT))
    from rewardmodel.testing import make_tiny_backbone

    with tempfile.TemporaryDirectory() as scratch:
        backbone = make_tiny_backbone(Path(scratch) / "backbone")
        base = Path(scratch) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), args.base], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            runs = {"this": {}, "base": {}}
            for n in args.sizes:
                for name, tree, lazy in (("this", ROOT, True), ("base", base, False)):
                    if name == "base" and n > args.base_max:
                        runs[name][n] = {"rankings": n, "not_run": f"above --base-max {args.base_max:,}: the base "
                                         "holds every tokenised ranking (~18 KB each at 300,000), more than this "
                                         "machine's memory at 3,000,000"}
                        continue
                    runs[name][n] = measure(tree, n, backbone, args.steps, lazy)
                    print(name, runs[name][n], flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    small, big = min(args.sizes), max(args.sizes)
    growth = runs["this"][big]["peak_mib"] - runs["this"][small]["peak_mib"]
    summary = {"this: peak MiB growth from the smallest to the largest size": round(growth, 1),
               "this: bytes per ranking of that growth": round(growth * 2**20 / max(1, big - small), 1),
               "base ÷ this, peak MiB at the smallest size": round(runs["base"][small]["peak_mib"]
                                                                  / runs["this"][small]["peak_mib"], 1),
               "base ÷ this, seconds to the first step at the smallest size": round(
                   runs["base"][small]["to_first_step_s"] / runs["this"][small]["to_first_step_s"], 1)}
    result = {"date": time.strftime("%Y-%m-%d"), "machine": f"{os.uname().machine}, {os.cpu_count()} cores",
              "commits": {"this": commit, "base": args.base}, "steps": args.steps, "runs": runs, "summary": summary}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
