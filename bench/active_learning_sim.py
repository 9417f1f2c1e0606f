"""Simulated active learning on real human preference labels (Anthropic HH-RLHF harmless, ../shared/data).

Each of the 1,500 pairs is a prompt with a chosen and a rejected answer; the simulated rater answers a query with
the real human label (which one was chosen).  Texts are embedded once with the frozen MiniLM backbone (cached as
.npy outside the repo), reduced by PCA fitted on the unlabelled pool features (no labels used), and a
bootstrap ensemble of linear Bradley–Terry heads (active_learning.stability) is refitted after every batch.
Strategies: random, uncertainty, uncertainty + diversity (active_learning.selection), several seeds.

    .venv/bin/python bench/active_learning_sim.py [--seeds 5] [--batch 20] [--budget 400]

Writes bench/results/active_learning_curves.png and bench/results/active_learning_sim.json.
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
from active_learning.stability import fit_ensemble, pair_features, pair_stability, pairwise_accuracy  # noqa: E402

DATA_DIR = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results"
CACHE = Path(tempfile.gettempdir()) / "verdict_al_cache"


def split_dialogue(text: str) -> tuple[str, str]:
    """Prompt = the dialogue up to the last assistant turn; completion = that final turn."""
    i = text.rfind("\n\nAssistant:")
    return text[:i].strip(), text[i + len("\n\nAssistant:") :].strip()


def read_hh(path: Path) -> tuple[list[tuple[str, str]], list[tuple[int, int]]]:
    """HH-RLHF harmless: (prompt, completion) items and (chosen, rejected) index pairs."""
    items, pairs = [], []
    for line in path.open():
        r = json.loads(line)
        items.extend([split_dialogue(r["chosen"]), split_dialogue(r["rejected"])])
        pairs.append((len(items) - 2, len(items) - 1))
    return items, pairs


def read_pandalm(path: Path) -> tuple[list[tuple[str, str]], list[tuple[int, int]]]:
    """PandaLM test set: the majority of 3 annotators (1 or 2; ties and 0-majorities dropped) picks the winner."""
    index: dict[tuple[str, str], int] = {}
    items, pairs = [], []
    for r in json.loads(path.read_text()):
        prompt = (r["instruction"] + "\n\n" + (r.get("input") or "")).strip()
        votes = [r[f"annotator{i}"] for i in (1, 2, 3)]
        ones, twos = votes.count(1), votes.count(2)
        if ones == twos or max(ones, twos) < 2:
            continue
        ids = []
        for key in ("response1", "response2"):
            item = (prompt, r[key])
            if item not in index:
                index[item] = len(items)
                items.append(item)
            ids.append(index[item])
        if ids[0] == ids[1]:
            continue
        pairs.append((ids[0], ids[1]) if ones > twos else (ids[1], ids[0]))
    return items, pairs


DATASETS = {"pandalm": ("pandalm-testset-v1.json", read_pandalm), "hh": ("hh-harmless-dev.jsonl", read_hh)}


def load_dataset(name: str, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of every item (cached outside the repo) and (preferred, other) index pairs."""
    filename, reader = DATASETS[name]
    path = DATA_DIR / filename
    items, pairs = reader(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    cache = CACHE / f"{name}_{digest}_{max_length}.npy"
    if cache.exists():
        return np.load(cache), np.array(pairs)
    from active_learning.embedding import embed_texts

    t = time.time()
    emb = embed_texts([p for p, _ in items], [c for _, c in items], max_length=max_length)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(cache, emb)
    print(f"embedded {len(emb)} texts in {time.time() - t:.0f}s → {cache}", flush=True)
    return emb, np.array(pairs)


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
    while True:
        cmp = pairs[np.array(labelled)]  # (preferred, other): the real human label
        heads = fit_ensemble(feats, cmp, n_members=args.members, seed=seed * 1000 + len(labelled), l2=args.l2)
        sizes.append(len(labelled))
        accs.append(pairwise_accuracy(feats @ heads.mean(axis=0), test_cmp))
        if len(labelled) >= args.budget:
            return sizes, accs
        taken = set(labelled)
        rest = np.array([i for i in pool if i not in taken], dtype=np.int64)
        if len(rest) == 0:
            return sizes, accs
        # The selector never sees the label: stability and pair features are symmetric in a and b.
        cand = pairs[rest]
        stab = pair_stability(heads, feats, cand)
        b = min(args.batch, args.budget - len(labelled))
        picked = select(
            strategy, stab.instability, b, features=pair_features(feats, cand), seed=seed * 7919 + len(labelled)
        )
        labelled.extend(int(i) for i in rest[picked])


def labels_to_reach(sizes: np.ndarray, curve: np.ndarray, target: float) -> float | None:
    hit = np.flatnonzero(curve >= target)
    return float(sizes[hit[0]]) if len(hit) else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=sorted(DATASETS), default="pandalm")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--test-size", type=int, default=300)
    ap.add_argument("--seed-size", type=int, default=20)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--members", type=int, default=8)
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--dims", type=int, default=64, help="PCA dimensions (0 = raw features)")
    ap.add_argument("--max-length", type=int, default=256)
    args = ap.parse_args()

    t0 = time.time()
    emb, pairs = load_dataset(args.dataset, args.max_length)
    emb = emb.astype(np.float64)
    n = len(pairs)
    curves: dict[str, list[list[float]]] = {s: [] for s in STRATEGIES}
    sizes = None
    full_acc = []
    for seed in range(args.seeds):
        perm = np.random.default_rng(10_000 + seed).permutation(n)
        test, pool = perm[: args.test_size], perm[args.test_size :]
        rows = np.unique(pairs[pool])
        feats = pca(emb, rows, args.dims) if args.dims else emb
        all_cmp = pairs[pool]
        full = fit_ensemble(feats, all_cmp, n_members=1, bootstrap=False, l2=args.l2)[0]
        full_acc.append(pairwise_accuracy(feats @ full, pairs[test]))
        for strategy in STRATEGIES:
            s, acc = simulate(feats, pairs, pool, test, strategy, seed, args)
            sizes = s
            curves[strategy].append(acc)
        print(f"seed {seed}: " + ", ".join(f"{k} {v[-1][-1]:.3f}" for k, v in curves.items()), flush=True)

    sizes_arr = np.array(sizes, dtype=float)
    mean = {k: np.mean(v, axis=0) for k, v in curves.items()}
    std = {k: np.std(v, axis=0) for k, v in curves.items()}
    target = float(mean["random"][-1])
    random_labels = float(sizes_arr[-1])
    reach = {}
    for k in STRATEGIES:
        needed = labels_to_reach(sizes_arr, mean[k], target)
        reach[k] = {"labels": needed, "fraction_of_random": None if needed is None else needed / random_labels}

    RESULTS.mkdir(parents=True, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k in STRATEGIES:
        ax.plot(sizes_arr, mean[k], label=k.replace("_", " + "))
        ax.fill_between(sizes_arr, mean[k] - std[k], mean[k] + std[k], alpha=0.15)
    ax.axhline(target, color="grey", ls="--", lw=0.8, label=f"random's final ({target:.3f})")
    ax.axhline(np.mean(full_acc), color="black", ls=":", lw=0.8, label=f"all {n - args.test_size} pool labels")
    ax.set_xlabel("human labels (comparisons)")
    ax.set_ylabel("held-out pairwise accuracy")
    ax.set_title(f"{args.dataset}: frozen MiniLM + BT ensemble, {args.seeds} seeds (mean ± std)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "active_learning_curves.png", dpi=120)

    out = {
        "dataset": DATASETS[args.dataset][0],
        "config": vars(args),
        "labels": sizes,
        "mean_accuracy": {k: v.round(4).tolist() for k, v in mean.items()},
        "std_accuracy": {k: v.round(4).tolist() for k, v in std.items()},
        "final_accuracy": {k: float(v[-1]) for k, v in mean.items()},
        "random_final_accuracy": target,
        "all_pool_labels_accuracy": float(np.mean(full_acc)),
        "labels_to_reach_random_final": reach,
        "target_fraction": 0.7,
        "runtime_s": round(time.time() - t0, 1),
    }
    (RESULTS / "active_learning_sim.json").write_text(json.dumps(out, indent=2))
    print(json.dumps({k: out[k] for k in ("final_accuracy", "labels_to_reach_random_final", "runtime_s")}, indent=2))


if __name__ == "__main__":
    main()
