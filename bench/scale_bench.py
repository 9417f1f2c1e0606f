"""Benchmark (issue 11): Verdict's trainer vs TRL's RewardTrainer at its fastest on CPU, encoder and decoder, K=2 and
K=4; and our peak memory against K × sequence length.

    make bench-scale      # or: .venv/bin/python bench/scale_bench.py [--seed 0] [--threads 2]

Side by side in one run, each training in a fresh process (so its peak memory is its own):
- backbones: the packaged all-MiniLM-L6-v2 (encoder) and a small random Llama-architecture decoder built from a
  config (hidden 256, 4 layers; no download);
- K=2: HH-RLHF harmless pairs (../shared/data/hh-harmless-dev.jsonl), 80 % of rows to train, 20 % held out;
  K=4: LLMFAO crowd-vote rankings, held out by responding model (bench/train_vs_trl.py's split);
- TRL 1.16 with gradient checkpointing off and bf16 off (CPU), dropout off, the same lr, schedule and texts
  (pre-truncated once so neither trainer cuts or drops anything); ours with K forwards per ranking;
- per run: comparisons/s inside the training call, peak RSS, held-out pairwise accuracy, examples dropped (0).
Then ours alone for K ∈ {2, 4, 8} × length ∈ {64, 128, 256}: the growth of peak RSS over the loaded model's,
fitted against K·length. Writes bench/results/scale_bench.json and .png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "bench" / "results"


def rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def hh_examples(seed: int, n_train: int, n_held: int):
    from replay import datasets
    from rewardmodel.trainer import RankingExample

    hh = datasets.read_hh(DATA / "hh-harmless-dev.jsonl")
    rows = []
    for w, lo in hh.pairs:
        (prompt, chosen), (_, rejected) = hh.items[w], hh.items[lo]
        rows.append(RankingExample(prompt, [chosen, rejected], [(0, 1)], prompt))
    random.Random(seed).shuffle(rows)
    return rows[:n_train], rows[n_train : n_train + n_held]


def llmfao_examples(seed: int, max_rankings: int):
    import train_vs_trl as base

    scores, prompts, texts = base.crowd_scores(DATA)
    args = argparse.Namespace(heldout_models=15, rounds=4, max_rankings=max_rankings)
    return base.split(scores, prompts, texts, args, seed)


def one_run(job: dict) -> dict:
    """One training in this (fresh) process: {"trainer": ours|trl, "backbone", "k", …} → figures."""
    import numpy as np
    import torch
    import train_vs_trl as base

    from rewardmodel.backbones import load_backbone
    from rewardmodel.trainer import TrainConfig, predict, train

    torch.set_num_threads(job["threads"])
    if job["k"] == 2:
        train_set, held = hh_examples(job["seed"], job["hh_train"], job["hh_held"])
    else:
        train_set, held = llmfao_examples(job["seed"], job["max_rankings"])
    _, tok = load_backbone(job["backbone"])
    base.pretruncate(tok, train_set + held, job["prompt_tokens"], job["max_length"])
    n_pairs = sum(len(e.pairs) for e in train_set)
    before = rss_mib()
    if job["trainer"] == "ours":
        model, tok = load_backbone(job["backbone"])
        config = TrainConfig(lr=job["lr"], batch_rankings=job["batch_rankings"], max_length=job["max_length"],
                             seed=job["seed"], device="cpu", center_coef=0.0, warmup_ratio=0.1,
                             gradient_checkpointing=False)
        result = train(model, tok, train_set, config)
        seconds, dropped, truncated = result.seconds, 0, result.truncated
        acc = base.heldout_accuracy(lambda p, c: predict(model, tok, p, c, job["max_length"])[0].numpy(), held)
    else:
        args = argparse.Namespace(backbone=job["backbone"], trl_batch_pairs=job["trl_batch_pairs"], lr=job["lr"],
                                  seed=job["seed"], device="cpu", max_length=job["max_length"],
                                  gradient_checkpointing=False)
        out = base.run_trl(train_set, held, args)
        seconds, acc, dropped, truncated = out["seconds"], out["heldout_accuracy"], out["dropped"], 0
    return {**{k: job[k] for k in ("trainer", "backbone_name", "k")}, "train_pairs": n_pairs,
            "train_rankings": len(train_set), "heldout_pairs": sum(len(e.pairs) for e in held),
            "seconds": seconds, "pairs_per_second": n_pairs / seconds, "heldout_accuracy": float(acc),
            "peak_rss_mib": peak_mib(), "rss_before_training_mib": before, "dropped": dropped,
            "truncated_by_trainer": truncated, "heldout_accuracy_se": float(np.sqrt(acc * (1 - acc) / max(
                1, sum(len(e.pairs) for e in held))))}


def memory_run(job: dict) -> dict:
    """Ours alone: a few steps on rankings of K texts that fill `length` tokens; peak RSS growth over the model's."""
    import torch

    from rewardmodel.backbones import load_backbone
    from rewardmodel.trainer import RankingExample, TrainConfig, train

    torch.set_num_threads(job["threads"])
    model, tok = load_backbone(job["backbone"])
    words = "the answer is a clear and careful explanation of what was asked".split()
    rng = random.Random(0)
    text = " ".join(rng.choice(words) for _ in range(job["length"]))
    k = job["k"]
    examples = [RankingExample("q", [f"{i} {text}" for i in range(k)],
                               [(a, b) for a in range(k) for b in range(a + 1, k)], str(n)) for n in range(16)]
    # Warm-up on one tiny ranking: libraries, allocator and an optimiser's state (2 × the weights) are in the
    # baseline, so the growth after it is what the batch's activations take.
    tiny = [RankingExample("q", ["a", "b"], [(0, 1)], "w")]
    train(model, tok, tiny, TrainConfig(batch_rankings=1, max_length=8, device="cpu"))
    before = peak_mib()
    train(model, tok, examples, TrainConfig(batch_rankings=4, max_length=job["length"], device="cpu",
                                            gradient_checkpointing=False))
    return {"k": k, "length": job["length"], "k_times_length": k * job["length"], "rss_model_mib": before,
            "peak_rss_mib": peak_mib(), "growth_mib": peak_mib() - before}


def in_fresh_process(fn, job: dict) -> dict:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, job).result()


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    labels, ours, trl = [], [], []
    for row in result["comparisons"]:
        labels.append(f"{row['backbone']}\nK={row['k']}")
        ours.append(row["ours_pairs_per_second"])
        trl.append(row["trl_pairs_per_second"])
    x = np.arange(len(labels))
    left.bar(x - 0.2, ours, 0.4, label="Verdict")
    left.bar(x + 0.2, trl, 0.4, label="TRL RewardTrainer")
    for i, row in enumerate(result["comparisons"]):
        left.text(i, max(ours[i], trl[i]) * 1.02, f"{row['speedup']:.2f}×", ha="center")
    left.set_xticks(x, labels)
    left.set_ylabel("training comparisons / s (CPU, 2 threads)")
    left.set_title("Throughput, same data and hardware")
    left.legend()
    mem = result["memory"]
    kl = np.array([m["k_times_length"] for m in mem])
    growth = np.array([m["growth_mib"] for m in mem])
    for k in sorted({m["k"] for m in mem}):
        rows = [m for m in mem if m["k"] == k]
        right.plot([m["k_times_length"] for m in rows], [m["growth_mib"] for m in rows], "o-", label=f"K={k}")
    fit = result["memory_fit"]
    grid = np.linspace(0, kl.max(), 50)
    right.plot(grid, fit["slope_mib"] * grid + fit["intercept_mib"], "k--", lw=1,
               label=f"linear fit in K·length (R²={fit['r2']:.3f})")
    right.set_xlabel("K × sequence length (tokens per ranking)")
    right.set_ylabel("peak memory growth while training (MiB)")
    right.set_title("Verdict: memory per ranking is linear in K·length")
    right.legend()
    right.set_ylim(bottom=min(0, growth.min()))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--hh-train", type=int, default=800)
    ap.add_argument("--hh-held", type=int, default=300)
    ap.add_argument("--max-rankings", type=int, default=240)
    ap.add_argument("--quick", action="store_true", help="small sizes: checks the script, not a result")
    ap.add_argument("--out", type=Path, default=OUT / "scale_bench.json")
    args = ap.parse_args()
    if not (DATA / "hh-harmless-dev.jsonl").is_file() or not (DATA / "llmfao-crowd-comparisons.csv").is_file():
        sys.exit(f"needs ../shared/data (HH harmless and LLMFAO) at {DATA}")
    if args.quick:
        args.hh_train, args.hh_held, args.max_rankings = 48, 24, 24
    import torch
    import trl

    from rewardmodel.backbones import default_backbone_path
    from rewardmodel.testing import make_tiny_decoder

    work = Path(tempfile.mkdtemp(prefix="verdict-scale-"))
    decoder = make_tiny_decoder(work / "decoder", "llama", hidden=256, layers=4, positions=512)
    backbones = {"MiniLM-L6 (encoder)": str(default_backbone_path()), "Llama-style 256×4 (decoder)": str(decoder)}
    common = {"seed": args.seed, "threads": args.threads, "lr": 1e-4, "hh_train": args.hh_train,
              "hh_held": args.hh_held, "max_rankings": args.max_rankings, "trl_batch_pairs": 16}
    runs = []
    for name, path in backbones.items():
        for k, max_length, prompt_tokens, batch in ((2, 128, 48, 16), (4, 96, 24, 3)):
            for trainer in ("ours", "trl"):
                job = {**common, "trainer": trainer, "backbone": path, "backbone_name": name, "k": k,
                       "max_length": max_length, "prompt_tokens": prompt_tokens, "batch_rankings": batch}
                began = time.perf_counter()
                row = in_fresh_process(one_run, job)
                row["wall_seconds"] = time.perf_counter() - began
                runs.append(row)
                print(json.dumps(row), flush=True)
    comparisons = []
    for name in backbones:
        for k in (2, 4):
            ours = next(r for r in runs if r["backbone_name"] == name and r["k"] == k and r["trainer"] == "ours")
            other = next(r for r in runs if r["backbone_name"] == name and r["k"] == k and r["trainer"] == "trl")
            comparisons.append({
                "backbone": name.split(" (")[0], "k": k, "ours_pairs_per_second": ours["pairs_per_second"],
                "trl_pairs_per_second": other["pairs_per_second"],
                "speedup": ours["pairs_per_second"] / other["pairs_per_second"],
                "ours_accuracy": ours["heldout_accuracy"], "trl_accuracy": other["heldout_accuracy"],
                "accuracy_delta": ours["heldout_accuracy"] - other["heldout_accuracy"],
                "accuracy_se": max(ours["heldout_accuracy_se"], other["heldout_accuracy_se"]),
                "ours_peak_rss_mib": ours["peak_rss_mib"], "trl_peak_rss_mib": other["peak_rss_mib"],
                "dropped": ours["dropped"] + other["dropped"], "heldout_pairs": ours["heldout_pairs"]})
    memory = []
    for k in (2, 4, 8):
        for length in ((64, 128) if args.quick else (64, 128, 256)):
            row = in_fresh_process(memory_run, {"backbone": backbones["MiniLM-L6 (encoder)"], "k": k,
                                                "length": length, "threads": args.threads})
            memory.append(row)
            print(json.dumps(row), flush=True)
    import numpy as np

    kl = np.array([m["k_times_length"] for m in memory], dtype=float)
    growth = np.array([m["growth_mib"] for m in memory])
    slope, intercept = np.polyfit(kl, growth, 1)
    pred = slope * kl + intercept
    r2 = 1 - ((growth - pred) ** 2).sum() / max(1e-12, ((growth - growth.mean()) ** 2).sum())
    quad = np.polyfit(kl, growth, 2)
    result = {
        "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__, "trl_version": trl.__version__,
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(), "threads": args.threads,
        "seed": args.seed, "quick": args.quick,
        "trl_settings": {"gradient_checkpointing": False, "bf16": False, "disable_dropout": True,
                         "per_device_train_batch_size": 16, "max_length": None},
        "ours_settings": {"gradient_checkpointing": False, "precision": "fp32",
                          "batch_rankings": {"K=2": 16, "K=4": 3}},
        "runs": runs, "comparisons": comparisons, "memory": memory,
        "memory_fit": {"slope_mib": float(slope), "intercept_mib": float(intercept), "r2": float(r2),
                       "quadratic_coefficient": float(quad[0])},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.out.with_suffix(".png"))
    print(json.dumps(comparisons, indent=2))


if __name__ == "__main__":
    main()
