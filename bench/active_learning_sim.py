"""Simulated active learning on real human preference labels (PandaLM, LLMFAO crowd votes, HH-RLHF harmless, all
read in place from ../shared/data).

Each pair is a prompt with two answers; the simulated rater answers a query with the real human label. Texts are
embedded once with the frozen MiniLM backbone (cached as .npy outside the repo), reduced by PCA fitted on the
unlabelled pool features (no labels used), and a bootstrap ensemble of linear Bradley–Terry heads
(active_learning.stability) is refitted after every batch.  Instability is the platform's default (InstabilityWeights):
closeness to the current model's boundary; ``--flip-weight`` adds verdicts that flipped since the previous batch's
model, the previous batch's model playing the parent version.
Strategies: random, uncertainty, uncertainty + diversity (active_learning.selection).

    .venv/bin/python bench/active_learning_sim.py [--datasets pandalm llmfao hh] [--seeds 20] [--batch 20]

Every arm of a seed shares that seed's split and initial labels (a paired design); the statistics resample seeds.
Writes bench/results/active_learning_sim.json and bench/results/active_learning_sim.png.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from active_learning.selection import STRATEGIES, select  # noqa: E402
from active_learning.stability import (  # noqa: E402
    InstabilityWeights,
    fit_ensemble,
    pair_features,
    pair_stability,
    pairwise_accuracy,
)
from replay import datasets  # noqa: E402

RESULTS = ROOT / "bench" / "results"
CACHE = Path(tempfile.gettempdir()) / "verdict_al_cache"


def load_dataset(name: str, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of every item (cached outside the repo, keyed by the items themselves) and (preferred, other)
    index pairs with the majority human label."""
    data = datasets.load(name)
    digest = hashlib.sha256(json.dumps(data.items).encode()).hexdigest()[:12]
    cache = CACHE / f"{name}_{digest}_{max_length}.npy"
    if cache.exists():
        return np.load(cache), np.array(data.pairs)
    from active_learning.embedding import embed_texts

    t = time.time()
    emb = embed_texts([p for p, _ in data.items], [c for _, c in data.items], max_length=max_length)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(cache, emb)
    print(f"embedded {len(emb)} texts in {time.time() - t:.0f}s → {cache}", flush=True)
    return emb, np.array(data.pairs)


def pca(x: np.ndarray, fit_rows: np.ndarray, dims: int) -> np.ndarray:
    mu = x[fit_rows].mean(axis=0)
    _, _, vt = np.linalg.svd(x[fit_rows] - mu, full_matrices=False)
    z = (x - mu) @ vt[:dims].T
    return z / z[fit_rows].std(axis=0).mean()


def simulate(feats, pairs, pool, test, strategy, seed, args) -> tuple[list[int], list[float]]:
    """One learning curve: labels used → held-out pairwise accuracy of the ensemble's mean head."""
    rng = np.random.default_rng(seed)
    labelled = list(rng.choice(pool, size=args.seed_size, replace=False))
    sizes, accs = [], []
    test_cmp = pairs[test]
    parent = None  # the previous batch's model, as a project's parent version: flips count as instability
    while True:
        cmp = pairs[np.array(labelled)]  # (preferred, other): the real human label
        heads = fit_ensemble(feats, cmp, n_members=args.members, seed=seed * 1000 + len(labelled), l2=args.l2)
        active = feats @ heads.mean(axis=0)
        sizes.append(len(labelled))
        accs.append(pairwise_accuracy(active, test_cmp))
        if len(labelled) >= args.budget:
            return sizes, accs
        taken = set(labelled)
        rest = np.array([i for i in pool if i not in taken], dtype=np.int64)
        if len(rest) == 0:
            return sizes, accs
        # The selector never sees the label: stability and pair features are symmetric in a and b.
        cand = pairs[rest]
        stab = pair_stability(heads, feats, cand, active_scores=active, parent_scores=parent,
                              weights=InstabilityWeights(flip=args.flip_weight))
        parent = active
        b = min(args.batch, args.budget - len(labelled))
        picked = select(
            strategy, stab.instability, b, features=pair_features(feats, cand), seed=seed * 7919 + len(labelled)
        )
        labelled.extend(int(i) for i in rest[picked])


def labels_to_reach(sizes: np.ndarray, curve: np.ndarray, target: float) -> float:
    """The first label count at which `curve` reaches `target`; inf when it never does."""
    hit = np.flatnonzero(curve >= target - 1e-12)
    return float(sizes[hit[0]]) if len(hit) else float("inf")


def normalised_auc(sizes: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """Area under each learning curve (rows) divided by the label range: its mean accuracy over the budget."""
    return np.trapezoid(curves, sizes, axis=-1) / (sizes[-1] - sizes[0])


def label_ratio(sizes: np.ndarray, curves: dict[str, np.ndarray], strategy: str) -> float:
    """Labels `strategy`'s mean curve needs to reach random's final mean accuracy ÷ the labels random's own mean
    curve needs for it (not the budget: random's curve often touches its final value early)."""
    target = curves["random"].mean(axis=0)[-1]
    random_needed = labels_to_reach(sizes, curves["random"].mean(axis=0), target)
    return labels_to_reach(sizes, curves[strategy].mean(axis=0), target) / random_needed


def interval(values: np.ndarray) -> list[float]:
    finite = values[np.isfinite(values)]
    if len(finite) < len(values) * 0.975:  # more than 2.5 % never reached: the upper end is unbounded
        return [float(np.quantile(finite, 0.025)) if len(finite) else None, None]
    return [float(x) for x in np.quantile(values, [0.025, 0.975])]


def statistics(sizes: np.ndarray, curves: dict[str, np.ndarray], boot: int = 2000, seed: int = 0) -> dict:
    """Paired over seeds (every arm of a seed shares its split and initial labels): label ratio and AUC gain over
    random, each with a 95 % percentile interval from resampling seeds."""
    n_seeds = len(curves["random"])
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_seeds, size=(boot, n_seeds))
    auc = {k: normalised_auc(sizes, v) for k, v in curves.items()}
    out = {}
    for k in curves:
        ratios = np.array([label_ratio(sizes, {s: c[d] for s, c in curves.items()}, k) for d in draws])
        gain = auc[k] - auc["random"]
        gains = np.array([gain[d].mean() for d in draws])
        out[k] = {
            "final_accuracy": float(curves[k].mean(axis=0)[-1]),
            "labels_to_reach_random_final": labels_to_reach(sizes, curves[k].mean(axis=0),
                                                            curves["random"].mean(axis=0)[-1]),
            "label_ratio": label_ratio(sizes, curves, k),
            "label_ratio_ci95": interval(ratios),
            "auc": float(auc[k].mean()),
            "auc_gain_vs_random": float(gain.mean()),
            "auc_gain_ci95": interval(gains),
        }
    return out


def run_dataset(name: str, args) -> dict:
    emb, pairs = load_dataset(name, args.max_length)
    emb = emb.astype(np.float64)
    n = len(pairs)
    curves: dict[str, list[list[float]]] = {s: [] for s in STRATEGIES}
    sizes, full_acc = None, []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        perm = np.random.default_rng(10_000 + seed).permutation(n)
        test, pool = perm[: args.test_size], perm[args.test_size :]
        rows = np.unique(pairs[pool])
        feats = pca(emb, rows, args.dims) if args.dims else emb
        full = fit_ensemble(feats, pairs[pool], n_members=1, bootstrap=False, l2=args.l2)[0]
        full_acc.append(pairwise_accuracy(feats @ full, pairs[test]))
        for strategy in STRATEGIES:
            sizes, acc = simulate(feats, pairs, pool, test, strategy, seed, args)
            curves[strategy].append(acc)
        print(f"{name} seed {seed}: " + ", ".join(f"{k} {v[-1][-1]:.3f}" for k, v in curves.items()), flush=True)
    sizes_arr = np.array(sizes, dtype=float)
    arr = {k: np.array(v) for k, v in curves.items()}
    return {
        "dataset": datasets.DATASETS[name][0],
        "pairs": n,
        "labels": sizes,
        "curves": {k: v.round(4).tolist() for k, v in arr.items()},
        "mean_accuracy": {k: v.mean(axis=0).round(4).tolist() for k, v in arr.items()},
        "all_pool_labels_accuracy": float(np.mean(full_acc)),
        "statistics": statistics(sizes_arr, arr),
    }


def plot(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 4.3), squeeze=False)
    for ax, (name, r) in zip(axes[0], results.items(), strict=True):
        sizes = np.array(r["labels"])
        for k in STRATEGIES:
            c = np.array(r["curves"][k])
            mean, se = c.mean(axis=0), c.std(axis=0, ddof=1) / np.sqrt(len(c))
            st = r["statistics"][k]
            lo, hi = st["label_ratio_ci95"]
            label = f"{k.replace('_', ' + ')}: {st['label_ratio']:.2f}× labels"
            if k != "random":
                label += f" [{lo:.2f}, {hi:.2f}]" if hi is not None else f" [{lo:.2f}, ∞)" if lo is not None \
                    else " [–, ∞)"
            ax.plot(sizes, mean, label=label)
            ax.fill_between(sizes, mean - 1.96 * se, mean + 1.96 * se, alpha=0.15)
        ax.axhline(r["statistics"]["random"]["final_accuracy"], color="grey", ls="--", lw=0.8)
        ax.axhline(r["all_pool_labels_accuracy"], color="black", ls=":", lw=0.8, label="all pool labels")
        ax.set_title(f"{name}: {len(r['curves']['random'])} paired seeds (mean, 95% CI)", fontsize=10)
        ax.set_xlabel("human labels (comparisons)")
        ax.set_ylabel("held-out pairwise accuracy")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", choices=sorted(datasets.DATASETS), default=["pandalm", "llmfao", "hh"])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=0, help="reported runs use 0–19; choices were made on 100–109")
    ap.add_argument("--test-size", type=int, default=300)
    ap.add_argument("--seed-size", type=int, default=20)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--members", type=int, default=8)
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--dims", type=int, default=64, help="PCA dimensions (0 = raw features)")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--flip-weight", type=float, default=InstabilityWeights().flip,
                    help="weight of verdicts that flipped since the previous batch's model (the platform's default)")
    ap.add_argument("--out", default=str(RESULTS / "active_learning_sim.json"))
    args = ap.parse_args()

    t0 = time.time()
    results = {}
    for name in args.datasets:
        if not datasets.dataset_path(name).is_file():
            print(f"skipping {name}: {datasets.dataset_path(name)} not found", flush=True)
            continue
        results[name] = run_dataset(name, args)
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    plot(results, out_path.with_suffix(".png"))
    summary = {
        "config": {k: v for k, v in vars(args).items() if k != "out"},
        "target_fraction": 0.7,
        "results": results,
        "runtime_s": round(time.time() - t0, 1),
    }
    # The digest of every curve: two runs (other thread counts, other machines) agree when it is the same.
    summary["curves_sha256"] = hashlib.sha256(
        json.dumps({k: r["curves"] for k, r in results.items()}, sort_keys=True).encode()).hexdigest()
    out_path.write_text(json.dumps(summary, indent=2))
    for name, r in results.items():
        for k, st in r["statistics"].items():
            print(f"{name:8s} {k:22s} final {st['final_accuracy']:.3f}  labels ×{st['label_ratio']:.2f} "
                  f"{st['label_ratio_ci95']}  AUC gain {st['auc_gain_vs_random']:+.4f} {st['auc_gain_ci95']}")
    print(f"curves sha256 {summary['curves_sha256'][:16]}  runtime {summary['runtime_s']} s")


if __name__ == "__main__":
    main()
