"""Does active learning help a fine-tuned reward model? Simulated raters on real human labels, with the reward model
fine-tuned from MiniLM at every checkpoint and selection reading that model's last layer (issue 21).

    .venv/bin/python bench/active_learning_finetuned.py                   # the CPU setting (make bench-loop)
    python3 bench/active_learning_finetuned.py --setting gpu             # on a GPU machine (DEVELOPERS.md)

Per dataset (PandaLM, LLMFAO, HH-RLHF harmless from ../shared/data; and ``llmfao_shift``) and seed:

- **Split by prompt** (a quarter of the prompts are the test set): the datasets repeat item pairs across their
  rows, so a split by pair lets a pool copy reveal a test answer. ``llmfao_shift`` instead splits LLMFAO's models in
  two halves: the starting labels come from pairs of the old models; the pool holds those and the pairs between an
  old and a new model (the policy's new outputs arriving); the test is the pairs between new models.
- Every strategy of a seed starts from the same 40 random pool labels (cold start is random on the platform too),
  then at each checkpoint the reward model is trained again from the backbone (bench/finetuned_learner.py) on the
  labels so far, its test accuracy recorded, and the next batch chosen from the pool with its rewards and last-layer
  features (active_learning.selection with active_learning.design), one pair per prompt while the pool has enough
  prompts. The simulated rater answers with the majority of the real votes.
- Statistics over paired seeds, 95 % intervals from resampling seeds (2,000 draws): the **AUC gain** over random
  (mean test accuracy over the checkpoints, minus random's: the headline), and the **budget share**: the labels a
  strategy's curve needs to reach random's accuracy at the full budget (linear between checkpoints) ÷ the full
  budget. The goal of issue 21 is a budget share ≤ 0.70 whose interval's upper end is below 1.

Settings: ``cpu`` fine-tunes the top two transformer layers at 128 tokens, 3 epochs, checkpoints at 40/160/320/600
labels, 5 seeds, strategies random, uncertainty, past_dopt and gap_ucb: about 47 minutes for PandaLM and 85 for the
shift scenario on 2 cores (so ``make bench-loop`` runs those two; ``--scenarios`` adds HH and LLMFAO). ``gpu``
fine-tunes all six layers, checkpoints every 80 labels, 20 seeds, every strategy. Writes
bench/results/active_learning_finetuned.json and .png (``--out`` for another name).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from active_learning.design import LastLayer  # noqa: E402
from active_learning.selection import (  # noqa: E402
    BALD,
    DOPT,
    GAP_UCB,
    PAST_DOPT,
    RANDOM,
    UNCERTAINTY,
    UNCERTAINTY_DIVERSITY,
    select,
)
from active_learning.stability import pair_features, percentile_rank  # noqa: E402
from replay import datasets  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SETTINGS = {
    "cpu": {"train_layers": 2, "max_length": 128, "epochs": 3, "checkpoints": [40, 160, 320, 600], "seeds": 5,
            "strategies": [RANDOM, UNCERTAINTY, PAST_DOPT, GAP_UCB]},
    "gpu": {"train_layers": 6, "max_length": 128, "epochs": 3, "checkpoints": [40, *range(80, 601, 80)], "seeds": 20,
            "strategies": [RANDOM, UNCERTAINTY, UNCERTAINTY_DIVERSITY, DOPT, PAST_DOPT, GAP_UCB, BALD]},
}
SCENARIOS = {"pandalm": "pandalm", "llmfao_shift": "llmfao", "hh": "hh", "llmfao": "llmfao"}
SEED_LABELS = 40


def split(name: str, data, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pool pair indices, test pair indices, each pair's prompt id, the pool pairs the starting labels come from)
    for one seed."""
    pairs = np.array(data.pairs)
    prompt_of = np.array([data.items[a][0] for a, _ in data.pairs])
    prompt_id = np.unique(prompt_of, return_inverse=True)[1]
    rng = np.random.default_rng(10_000 + seed)
    if name == "llmfao_shift":
        models = np.array(sorted(set(data.models)))
        rng.shuffle(models)
        new = set(models[: len(models) // 2])
        is_new = np.array([[data.models[a] in new, data.models[b] in new] for a, b in pairs])
        test = np.flatnonzero(is_new.all(1))
        pool = np.flatnonzero(~is_new.all(1))  # old–old and old–new pairs
        return pool, test, prompt_id, np.flatnonzero(~is_new.any(1))  # starting labels: old models only
    prompts = rng.permutation(prompt_id.max() + 1)
    held = set(prompts[: max(1, len(prompts) // 4)].tolist())
    test = np.flatnonzero([p in held for p in prompt_id])
    pool = np.setdiff1d(np.arange(len(pairs)), test)
    return pool, test, prompt_id, pool


def choose(strategy: str, trained, pairs: np.ndarray, rest: np.ndarray, labelled: list[int], k: int,
           prompt_id: np.ndarray, seed: int) -> np.ndarray:
    """k pool pairs (indices into `pairs`) by `strategy`, from the model just trained; the selector never sees a
    label: every score is symmetric in the pair's two items."""
    cand = pairs[rest]
    logits = trained.rewards[cand[:, 0]] - trained.rewards[cand[:, 1]]
    instability = percentile_rank(-np.abs(logits))  # the platform's default: closeness to the boundary
    design = None
    if strategy in (DOPT, PAST_DOPT, GAP_UCB, BALD):
        done = pairs[np.array(labelled)]
        design = LastLayer.of(trained.features, trained.rewards, cand, done)
    groups = prompt_id[rest]
    one_per_prompt = len(np.unique(groups)) >= k
    picked = select(strategy, instability, k, features=pair_features(trained.features, cand)
                    if strategy == UNCERTAINTY_DIVERSITY else None, seed=seed,
                    groups=groups if one_per_prompt else None, design=design)
    return rest[picked]


def curve(data, backbone, pool, test, prompt_id, start_from, strategy: str, seed: int,
          setting: dict) -> list[float]:
    from finetuned_learner import train_and_read

    pairs = np.array(data.pairs)
    labelled = np.random.default_rng(seed).choice(start_from, size=SEED_LABELS, replace=False).tolist()
    checkpoints = [c for c in setting["checkpoints"] if c <= len(pool)]
    read = np.unique(np.concatenate([pairs[pool].reshape(-1), pairs[test].reshape(-1)]))
    accuracy = []
    for i, size in enumerate(checkpoints):
        trained = train_and_read(backbone, pairs[np.array(labelled)], seed=seed * 100 + i, read=read)
        t = pairs[test]
        delta = trained.rewards[t[:, 0]] - trained.rewards[t[:, 1]]
        accuracy.append(float(np.mean((delta > 0) + 0.5 * (delta == 0))))
        if i + 1 == len(checkpoints):
            break
        rest = np.setdiff1d(pool, labelled)
        k = min(checkpoints[i + 1] - size, len(rest))
        labelled.extend(choose(strategy, trained, pairs, rest, labelled, k, prompt_id,
                               seed * 7919 + size).tolist())
    return accuracy


def budget_share(sizes: np.ndarray, curve_: np.ndarray, target: float) -> float:
    """Labels the curve needs to reach `target` (linear between checkpoints) ÷ the full budget; inf if never."""
    hit = np.flatnonzero(curve_ >= target - 1e-12)
    if not len(hit):
        return float("inf")
    j = hit[0]
    if j == 0:
        return float(sizes[0] / sizes[-1])
    x0, x1, y0, y1 = sizes[j - 1], sizes[j], curve_[j - 1], curve_[j]
    return float((x0 + (target - y0) / (y1 - y0) * (x1 - x0)) / sizes[-1])


def statistics(sizes: np.ndarray, curves: dict[str, np.ndarray], boot: int = 2000) -> dict:
    from active_learning_sim import interval, normalised_auc

    n = len(curves[RANDOM])
    draws = np.random.default_rng(0).integers(0, n, size=(boot, n))
    auc = {k: normalised_auc(sizes, v) for k, v in curves.items()}
    out = {}
    for k, c in curves.items():
        gain = auc[k] - auc[RANDOM]
        shares = np.array([budget_share(sizes, c[d].mean(0), curves[RANDOM][d].mean(0)[-1]) for d in draws])
        out[k] = {"final_accuracy": float(c.mean(0)[-1]), "auc": float(auc[k].mean()),
                  "auc_gain_vs_random": float(gain.mean()),
                  "auc_gain_ci95": interval(np.array([gain[d].mean() for d in draws])),
                  "budget_share": budget_share(sizes, c.mean(0), curves[RANDOM].mean(0)[-1]),
                  "budget_share_ci95": interval(shares)}
    return out


def run(name: str, args, setting: dict) -> dict:
    from finetuned_learner import CachedBackbone, LearnerConfig

    data = datasets.load(SCENARIOS[name])
    began = time.time()
    backbone = CachedBackbone([p for p, _ in data.items], [c for _, c in data.items],
                              LearnerConfig(train_layers=setting["train_layers"], max_length=setting["max_length"],
                                            epochs=setting["epochs"], device=args.device))
    print(f"{name}: {backbone.n} items cached in {time.time() - began:.0f} s", flush=True)
    curves: dict[str, list] = {s: [] for s in setting["strategies"]}
    sizes = None
    for seed in range(args.first_seed, args.first_seed + setting["seeds"]):
        pool, test, prompt_id, start_from = split(name, data, seed)
        sizes = [c for c in setting["checkpoints"] if c <= len(pool)]
        for strategy in setting["strategies"]:
            curves[strategy].append(curve(data, backbone, pool, test, prompt_id, start_from, strategy, seed,
                                          setting))
        print(f"{name} seed {seed} ({time.time() - began:.0f} s): "
              + ", ".join(f"{k} {v[-1][-1]:.3f}" for k, v in curves.items()), flush=True)
    arr = {k: np.array(v) for k, v in curves.items()}
    sizes_arr = np.array(sizes, dtype=float)
    return {"scenario": name, "pairs": len(data.pairs), "pool_pairs": int(len(pool)), "test_pairs": int(len(test)),
            "labels": sizes, "curves": {k: v.round(4).tolist() for k, v in arr.items()},
            "mean_accuracy": {k: v.mean(0).round(4).tolist() for k, v in arr.items()},
            "statistics": statistics(sizes_arr, arr), "seconds": round(time.time() - began, 1)}


def plot(results: dict, path: Path) -> None:
    from config.charts import new_figure, png_bytes

    fig, axes = new_figure(figsize=(5.0 * len(results), 4.2), ncols=max(1, len(results)))
    axes = np.atleast_1d(axes)
    for ax, (name, r) in zip(axes, results.items(), strict=True):
        sizes = np.array(r["labels"])
        for k, c in r["curves"].items():
            c = np.array(c)
            mean, se = c.mean(0), c.std(0, ddof=1) / np.sqrt(len(c))
            st = r["statistics"][k]
            lo, hi = st["auc_gain_ci95"]
            label = k if k == RANDOM else (f"{k}: AUC {st['auc_gain_vs_random']:+.3f} "
                                           f"[{lo if lo is not None else float('nan'):+.3f}, "
                                           f"{hi if hi is not None else float('inf'):+.3f}]")
            ax.plot(sizes, mean, marker=".", label=label)
            ax.fill_between(sizes, mean - 1.96 * se, mean + 1.96 * se, alpha=0.12)
        ax.set_title(f"{name}: {len(r['curves'][RANDOM])} paired seeds", fontsize=10)
        ax.set_xlabel("human labels (comparisons)")
        ax.set_ylabel("test pairwise accuracy (held-out prompts)")
        ax.legend(fontsize=7)
    path.write_bytes(png_bytes(fig))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--setting", choices=sorted(SETTINGS), default="cpu")
    ap.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    ap.add_argument("--seeds", type=int, help="override the setting's number of paired seeds")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--strategies", nargs="+", help="override the setting's strategies (random is always run)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--out", default=str(RESULTS / "active_learning_finetuned.json"))
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    setting = dict(SETTINGS[args.setting])
    if args.seeds:
        setting["seeds"] = args.seeds
    if args.strategies:
        setting["strategies"] = [RANDOM, *[s for s in args.strategies if s != RANDOM]]
    began = time.time()
    results = {}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for name in args.scenarios:
        if not datasets.dataset_path(SCENARIOS[name]).is_file():
            print(f"skipping {name}: {datasets.dataset_path(SCENARIOS[name])} not found", flush=True)
            continue
        results[name] = run(name, args, setting)
        summary = {"setting": args.setting, "config": {**setting, "first_seed": args.first_seed,
                                                       "device": args.device},
                   "goal": "budget share <= 0.70 with the 95 % interval's upper end below 1",
                   "results": results, "runtime_s": round(time.time() - began, 1)}
        out.write_text(json.dumps(summary, indent=2) + "\n")  # after every scenario: a stopped run keeps them
        plot(results, out.with_suffix(".png"))
        for k, st in results[name]["statistics"].items():
            print(f"{name:13s} {k:22s} final {st['final_accuracy']:.3f}  AUC gain {st['auc_gain_vs_random']:+.4f} "
                  f"{st['auc_gain_ci95']}  budget share {st['budget_share']:.2f} {st['budget_share_ci95']}",
                  flush=True)
    print(f"runtime {time.time() - began:.0f} s")


if __name__ == "__main__":
    main()
