"""Benchmark of the rater-quality statistics (quality.consensus, quality.leaderboard, quality.overlap) on LLMFAO's
crowd votes (../shared/data/llmfao-crowd-comparisons.csv, read in place) and on a synthetic project.

Four parts, all in one run:

1. Held-out vote prediction: per seed, round(20 %) of each comparison's votes are held out; majority vote, a plain
   Davidson–Bradley–Terry fit (``fit_bradley_terry``), Verdict's joint fit (``fit_consensus`` → ``predict`` for the
   vote's rater) and crowd-kit's NoisyBradleyTerry predict them (3-way and non-tie log-loss and accuracy).
2. Spammers: synthetic raters answering at random or always "left" make 20 % / 40 % of the votes; Kendall τ of each
   method's model leaderboard against the clean-data leaderboard, and ROC AUC of the reliabilities for spammers.
3. Dynamic overlap: votes arrive in a random order; ``task_confidence`` + ``decide`` stop a comparison once its
   consensus is sure; share of votes used and consensus accuracy on one held-out vote per comparison vs all votes.
4. Speed: 100,000 synthetic K = 4 rankings through ``collect_votes`` → ``fit_consensus`` → Laplace covariance.

    .venv/bin/python bench/quality_bench.py [--seeds 5]       # = make bench-quality

Writes bench/results/quality_bench.json and bench/results/quality_bench.png. Pure numpy/scipy/sklearn/crowd-kit: no
Django settings. Exits 0 with a message when ../shared/data is absent.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from quality.consensus import (  # noqa: E402
    TIE,
    A,
    B,
    Votes,
    collect_votes,
    davidson_log_probs,
    fit_bradley_terry,
    fit_consensus,
)
from quality.leaderboard import model_leaderboard  # noqa: E402
from quality.overlap import decide, task_confidence  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CSV_NAME = "llmfao-crowd-comparisons.csv"
RESULTS = ROOT / "bench" / "results"
OUTCOME = {"left": A, "right": B, "tie": TIE}
METHODS = ("majority", "bradley_terry", "verdict", "noisy_bt")
LABELS = {"majority": "majority vote", "bradley_terry": "Bradley–Terry", "verdict": "Verdict (fit_consensus)",
          "noisy_bt": "crowd-kit NoisyBT"}
EPS = 1e-12  # probabilities are clipped to [EPS, 1] inside log-losses


# --- data ----------------------------------------------------------------------------------------------------------


@dataclass
class Crowd:
    """LLMFAO's votes as parallel arrays. Item = (prompt, model_x or model_y); a = model_x, shown first (left)."""

    rater: np.ndarray
    a: np.ndarray
    b: np.ndarray
    y: np.ndarray
    pair: np.ndarray  # comparison (the CSV's id), densely indexed
    items: list[tuple[int, int]]
    groups: np.ndarray  # item → prompt index
    item_model: np.ndarray  # item → model index
    models: list[str]
    workers: list[str]
    pair_a: np.ndarray  # comparison → its items
    pair_b: np.ndarray
    item_length: np.ndarray  # item → characters of its text (llmfao-pairs-crowd.jsonl), for the always-longer spammer

    @property
    def n_pairs(self) -> int:
        return len(self.pair_a)

    def votes(self, mask=None, rater=None, a=None, b=None, y=None, n_raters=None) -> Votes:
        """Item-level Votes over all items (unvoted items keep the prior) and all raters."""
        rater = self.rater if rater is None else rater
        a, b, y = (self.a if a is None else a), (self.b if b is None else b), (self.y if y is None else y)
        mask = np.ones(len(y), dtype=bool) if mask is None else mask
        n_raters = len(self.workers) if n_raters is None else n_raters
        return Votes.from_arrays(rater[mask], a[mask], b[mask], y[mask], items=self.items, raters=range(n_raters),
                                 groups=self.groups)


def load_crowd(path: Path) -> Crowd:
    def index(d: dict, key) -> int:
        return d.setdefault(key, len(d))

    items, workers, models, prompts, pairs = {}, {}, {}, {}, {}
    item_model: dict[int, int] = {}
    rater, a, b, y, pair = [], [], [], [], []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            index(prompts, row["prompt"])
            ia, ib = index(items, (int(row["prompt"]), int(row["model_x"]))), index(items, (int(row["prompt"]),
                                                                                              int(row["model_y"])))
            item_model[ia], item_model[ib] = index(models, row["left"]), index(models, row["right"])
            rater.append(index(workers, row["worker"]))
            a.append(ia)
            b.append(ib)
            y.append(OUTCOME[row["winner"]])
            pair.append(index(pairs, row["id"]))
    rater, a, b, y, pair = (np.array(v, dtype=np.int64) for v in (rater, a, b, y, pair))
    first = np.unique(pair, return_index=True)[1]
    item_length = np.zeros(len(items), dtype=np.int64)
    texts = path.parent / "llmfao-pairs-crowd.jsonl"
    if texts.is_file():
        with texts.open() as fh:
            for line in fh:
                r = json.loads(line)
                for side in ("x", "y"):
                    key = (int(r["prompt"]), int(r[f"model_{side}"]))
                    if key in items:
                        item_length[items[key]] = len(r[f"result_{side}"])
    return Crowd(rater, a, b, y, pair, list(items), np.array([prompts[str(k[0])] for k in items]),
                 np.array([item_model[i] for i in range(len(items))]), list(models), list(workers), a[first],
                 b[first], item_length)


# --- statistics helpers ----------------------------------------------------------------------------------------------


def summary(values, boot: int = 2000, seed: int = 0) -> dict:
    """Mean over seeds, min–max, and a 95 % percentile interval from resampling the seeds."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return {"mean": None, "min": None, "max": None, "ci95": [None, None], "n": 0}
    draws = np.random.default_rng(seed).integers(0, len(v), size=(boot, len(v)))
    lo, hi = np.quantile(v[draws].mean(axis=1), [0.025, 0.975])
    return {"mean": round(float(v.mean()), 5), "min": round(float(v.min()), 5), "max": round(float(v.max()), 5),
            "ci95": [round(float(lo), 5), round(float(hi), 5)], "n": int(len(v))}


def prediction_metrics(p: np.ndarray, y: np.ndarray) -> dict:
    """3-way log-loss / accuracy on all votes; binary ones on non-tie votes with P(left | not tie) = P(A)/(P(A)+P(B)).
    Accuracy counts a tie between the top probabilities as a shared hit (1/number of maxima)."""
    rows = np.arange(len(y))
    top = p.max(axis=1, keepdims=True)
    is_top = np.isclose(p, top, rtol=0, atol=1e-12)
    acc3 = np.mean(is_top[rows, y] / is_top.sum(axis=1))
    strict = y != TIE
    pl = p[strict, A] / (p[strict, A] + p[strict, B])
    left = y[strict] == A
    accb = np.where(np.isclose(pl, 0.5, rtol=0, atol=1e-12), 0.5, (pl > 0.5) == left).mean()
    return {"logloss3": float(-np.mean(np.log(np.clip(p[rows, y], EPS, 1)))), "accuracy3": float(acc3),
            "logloss_binary": float(-np.mean(np.log(np.clip(np.where(left, pl, 1 - pl), EPS, 1)))),
            "accuracy_binary": float(accb)}


def noisy_bt(worker, left, right, y):
    """crowd-kit's NoisyBradleyTerry on non-tie votes (left/right: item or model indices); the fitted model."""
    import pandas as pd
    from crowdkit.aggregation import NoisyBradleyTerry

    keep = y != TIE
    df = pd.DataFrame({"worker": worker[keep], "left": left[keep], "right": right[keep]})
    df["label"] = np.where(y[keep] == A, df["left"], df["right"])
    return NoisyBradleyTerry().fit(df)


def noisy_bt_left(model, n_items: int, raters, a, b) -> tuple[np.ndarray, dict]:
    """P(left wins | not tie) by NoisyBT's own formula for the vote's worker: skill·σ(s_a − s_b) + (1 − skill)·bias,
    with s = logit(scores_) (crowd-kit stores σ of its scores). An item or worker NoisyBT never saw (only ties in
    training) gets the mean raw score, mean skill and mean bias."""
    from scipy.special import expit, logit

    raw = logit(np.clip(model.scores_.to_numpy(dtype=float), 1e-12, 1 - 1e-12))
    s = np.full(n_items, raw.mean())
    s[model.scores_.index.to_numpy(dtype=np.int64)] = raw
    skill = np.array(model.skills_.reindex(raters), dtype=float)
    bias = np.array(model.biases_.reindex(raters), dtype=float)
    unknown_worker = np.isnan(skill)
    skill[unknown_worker], bias[unknown_worker] = model.skills_.mean(), model.biases_.mean()
    seen = np.zeros(n_items, dtype=bool)
    seen[model.scores_.index.to_numpy(dtype=np.int64)] = True
    notes = {"votes_of_unknown_workers": int(unknown_worker.sum()), "votes_with_unknown_items": int(
        (~seen[a] | ~seen[b]).sum())}
    return skill * expit(s[a] - s[b]) + (1 - skill) * bias, notes


# --- 1. held-out vote prediction -------------------------------------------------------------------------------------


def holdout_mask(crowd: Crowd, rng: np.random.Generator, share: float) -> np.ndarray:
    test = np.zeros(len(crowd.y), dtype=bool)
    order = np.argsort(crowd.pair, kind="stable")
    for members in np.split(order, np.cumsum(np.bincount(crowd.pair))[:-1]):
        k = int(round(share * len(members)))
        if k:
            test[rng.choice(members, k, replace=False)] = True
    return test


def heldout_seed(crowd: Crowd, seed: int, share: float) -> dict:
    rng = np.random.default_rng([1, seed])
    test = holdout_mask(crowd, rng, share)
    train = ~test
    yt, at, bt, rt = crowd.y[test], crowd.a[test], crowd.b[test], crowd.rater[test]
    probs, times, notes = {}, {}, {}

    t = time.perf_counter()
    counts = np.full((crowd.n_pairs, 3), 0.5)
    np.add.at(counts, (crowd.pair[train], crowd.y[train]), 1.0)
    probs["majority"] = (counts / counts.sum(axis=1, keepdims=True))[crowd.pair[test]]
    times["majority"] = time.perf_counter() - t

    votes = crowd.votes(train)
    t = time.perf_counter()
    scores, lam = fit_bradley_terry(votes)
    probs["bradley_terry"] = np.exp(davidson_log_probs(scores[at] - scores[bt], np.full(len(yt), lam)))
    times["bradley_terry"] = time.perf_counter() - t

    t = time.perf_counter()
    fit = fit_consensus(votes)
    known = fit.evidence[rt] > 0
    p = fit.predict(None, at, bt)
    if known.any():
        p[known] = fit.predict(rt[known], at[known], bt[known])
    probs["verdict"] = p
    times["verdict"] = time.perf_counter() - t
    typical = fit.predict(None, at, bt)  # diagnostic: the same fit, predicting for a typical rater
    notes["verdict"] = {"iterations": fit.iterations, "converged": bool(fit.converged),
                        "votes_of_unknown_raters": int((~known).sum())}

    t = time.perf_counter()
    model = noisy_bt(crowd.rater[train], crowd.a[train], crowd.b[train], crowd.y[train])
    left, notes["noisy_bt"] = noisy_bt_left(model, len(crowd.items), rt, at, bt)
    tie = float(np.mean(crowd.y[train] == TIE))
    probs["noisy_bt"] = np.stack([(1 - tie) * left, (1 - tie) * (1 - left), np.full(len(yt), tie)], axis=1)
    times["noisy_bt"] = time.perf_counter() - t
    notes["noisy_bt"]["tie_share"] = round(tie, 4)

    out = {m: prediction_metrics(probs[m], yt) for m in METHODS}
    out["verdict_typical_rater"] = prediction_metrics(typical, yt)
    return {"seed": seed, "test_votes": int(test.sum()), "test_non_tie": int((yt != TIE).sum()), "metrics": out,
            "fit_seconds": {k: round(v, 3) for k, v in times.items()}, "notes": notes}


def heldout(crowd: Crowd, seeds: list[int], share: float) -> dict:
    runs = []
    for s in seeds:
        runs.append(heldout_seed(crowd, s, share))
        m = runs[-1]["metrics"]
        print(f"[held-out] seed {s}: " + "  ".join(f"{k} {m[k]['logloss3']:.4f}/{m[k]['accuracy3']:.3f}"
                                                 for k in METHODS), flush=True)
    keys = ("logloss3", "accuracy3", "logloss_binary", "accuracy_binary")
    summ = {m: {k: summary([r["metrics"][m][k] for r in runs]) for k in keys}
            for m in (*METHODS, "verdict_typical_rater")}
    lower_better = {"logloss3", "logloss_binary"}
    best_other, verdict_best = {}, {}
    for k in keys:
        others = {m: summ[m][k]["mean"] for m in METHODS if m != "verdict"}
        best = min(others, key=others.get) if k in lower_better else max(others, key=others.get)
        sign = 1 if k in lower_better else -1
        diffs = [sign * (r["metrics"]["verdict"][k] - r["metrics"][best][k]) for r in runs]  # ≤ 0: Verdict better
        best_other[k] = {"method": best, "verdict_minus_best_other": summary(
            [r["metrics"]["verdict"][k] - r["metrics"][best][k] for r in runs]),
            "seeds_where_verdict_at_least_as_good": f"{sum(d <= 0 for d in diffs)}/{len(runs)}"}
        verdict_best[k] = bool(sign * summ["verdict"][k]["mean"] <= sign * summ[best][k]["mean"])
    return {"design": f"per seed, round({share:.0%}) of each comparison's votes held out; fit on the rest",
            "runs": runs, "summary": summ, "best_other": best_other, "verdict_at_least_as_good": verdict_best,
            "goal": {"text": "Verdict at least as good as the best other method (3-way log-loss, mean over seeds)",
                     "met": verdict_best["logloss3"]}}


# --- 2. spammers ---------------------------------------------------------------------------------------------------


SPAM_KINDS = ("random", "always-left", "always-tie", "always-longer", "majority-reversing")


def spam_answers(crowd: Crowd, kind: str, pairs: np.ndarray, majority: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """A spammer's outcomes on the comparisons `pairs` (oriented as the crowd's: a = model_x, shown left)."""
    n = len(pairs)
    if kind == "random":  # uniformly left, right or tie
        return rng.integers(0, 3, n)
    if kind == "always-left":
        return np.full(n, A)
    if kind == "always-tie":
        return np.full(n, TIE)
    if kind == "always-longer":  # the longer text wins, whatever it says (the length bias, made a rater)
        la, lb = crowd.item_length[crowd.pair_a[pairs]], crowd.item_length[crowd.pair_b[pairs]]
        return np.where(la > lb, A, np.where(lb > la, B, TIE))
    if kind == "majority-reversing":  # the opposite of the crowd's majority; a majority tie becomes a random win
        m = majority[pairs]
        return np.where(m == A, B, np.where(m == B, A, rng.integers(0, 2, n)))
    raise ValueError(kind)


def add_spam(crowd: Crowd, share: float, rng: np.random.Generator, kinds: tuple[str, ...] = SPAM_KINDS) -> dict:
    """Spam votes so that they are `share` of all votes, by spammers with about the mean real worker's vote count,
    taking the kinds in turn, on comparisons drawn at random."""
    n_real, n_workers = len(crowd.y), len(crowd.workers)
    n_spam = int(round(share / (1 - share) * n_real))
    n_spammers = max(len(kinds), int(round(n_spam / (n_real / n_workers))))
    per = np.full(n_spammers, n_spam // n_spammers)
    per[: n_spam % n_spammers] += 1
    majority = majority_outcomes(crowd.n_pairs, crowd.pair, crowd.y)
    rater, pairs, y, kind_of = [], [], [], []
    for j, count in enumerate(per):
        kind = kinds[j % len(kinds)]
        chosen = rng.choice(crowd.n_pairs, count, replace=False)
        rater.append(np.full(count, n_workers + j))
        pairs.append(chosen)
        y.append(spam_answers(crowd, kind, chosen, majority, rng))
        kind_of.append(kind)
    rater, pairs, y = (np.concatenate(v) for v in (rater, pairs, y))
    return {"rater": np.r_[crowd.rater, rater], "a": np.r_[crowd.a, crowd.pair_a[pairs]],
            "b": np.r_[crowd.b, crowd.pair_b[pairs]], "y": np.r_[crowd.y, y], "pair": np.r_[crowd.pair, pairs],
            "n_raters": n_workers + n_spammers, "n_spammers": n_spammers, "n_spam": n_spam, "spammer_kind": kind_of}


def leaderboard_scores(crowd: Crowd, a_items, b_items, y, weight) -> np.ndarray:
    """Model scores from quality.leaderboard.model_leaderboard (no bootstrap); NaN for a model without games."""
    ma, mb = crowd.item_model[a_items], crowd.item_model[b_items]
    rows = model_leaderboard(crowd.models, ma, mb, y, np.asarray(weight, dtype=float), np.arange(len(y)),
                             bootstrap=0)
    out = np.full(len(crowd.models), np.nan)
    position = {m: i for i, m in enumerate(crowd.models)}
    for row in rows:
        out[position[row.model]] = row.score
    return out


def tau(reference: np.ndarray, scores: np.ndarray) -> float:
    from scipy.stats import kendalltau

    ok = np.isfinite(reference) & np.isfinite(scores)
    return float(kendalltau(reference[ok], scores[ok])[0])


def majority_outcomes(n_pairs: int, pair: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per comparison, the outcome with most votes; a draw between the top outcomes counts as a tie."""
    counts = np.zeros((n_pairs, 3))
    np.add.at(counts, (pair, y), 1)
    top = counts == counts.max(axis=1, keepdims=True)
    return np.where(top.sum(axis=1) > 1, TIE, counts.argmax(axis=1))


def spam_leaderboards(crowd: Crowd, reference: np.ndarray, data: dict, is_spammer: np.ndarray | None) -> dict:
    from sklearn.metrics import roc_auc_score

    rater, a, b, y, pair = data["rater"], data["a"], data["b"], data["y"], data["pair"]
    out: dict = {"tau": {}, "auc": {}, "seconds": {}}
    t = time.perf_counter()
    out["tau"]["bradley_terry"] = tau(reference, leaderboard_scores(crowd, a, b, y, np.ones(len(y))))
    out["seconds"]["bradley_terry"] = time.perf_counter() - t

    t = time.perf_counter()
    voted = np.unique(pair)
    maj = majority_outcomes(crowd.n_pairs, pair, y)[voted]
    out["tau"]["majority"] = tau(reference, leaderboard_scores(crowd, crowd.pair_a[voted], crowd.pair_b[voted], maj,
                                                               np.ones(len(voted))))
    out["seconds"]["majority"] = time.perf_counter() - t

    t = time.perf_counter()
    fit = fit_consensus(crowd.votes(rater=rater, a=a, b=b, y=y, n_raters=data["n_raters"]))
    out["tau"]["verdict"] = tau(reference, leaderboard_scores(crowd, a, b, y, fit.reliability[rater]))
    out["seconds"]["verdict"] = time.perf_counter() - t
    out["verdict_fit"] = {"iterations": fit.iterations, "converged": bool(fit.converged)}

    t = time.perf_counter()
    model = noisy_bt(rater, crowd.item_model[a], crowd.item_model[b], y)
    nbt = np.full(len(crowd.models), np.nan)
    nbt[model.scores_.index.to_numpy(dtype=np.int64)] = model.scores_.to_numpy(dtype=float)
    out["tau"]["noisy_bt"] = tau(reference, nbt)
    out["seconds"]["noisy_bt"] = time.perf_counter() - t
    out["seconds"] = {k: round(v, 3) for k, v in out["seconds"].items()}

    if is_spammer is not None:
        out["auc"]["verdict"] = float(roc_auc_score(is_spammer, -fit.reliability))
        n_real = len(crowd.workers)
        kinds = np.array(data["spammer_kind"])
        out["auc_by_kind"] = {}
        for kind in dict.fromkeys(data["spammer_kind"]):  # each kind alone against the real workers
            chosen = np.r_[np.arange(n_real), n_real + np.flatnonzero(kinds == kind)]
            out["auc_by_kind"][kind] = float(roc_auc_score(is_spammer[chosen], -fit.reliability[chosen]))
        workers = model.skills_.index.to_numpy(dtype=np.int64)
        out["auc"]["noisy_bt"] = float(roc_auc_score(is_spammer[workers], -model.skills_.to_numpy(dtype=float)))
        out["noisy_bt_workers_scored"] = int(len(workers))
        out["reliability"] = {"real": np.round(fit.reliability[:n_real], 4).tolist(),
                              "spammers": np.round(fit.reliability[n_real:], 4).tolist()}
        skills = model.skills_.reindex(range(data["n_raters"])).to_numpy(dtype=float)
        out["noisy_bt_skill"] = {"real": np.round(skills[:n_real], 4).tolist(),
                                 "spammers": np.round(skills[n_real:], 4).tolist()}
    return out


def one_kind(crowd: Crowd, kind: str, share: float, seed: int) -> dict:
    """All the spam of one kind: how well reliability separates those spammers from the real workers."""
    from sklearn.metrics import roc_auc_score

    data = add_spam(crowd, share, np.random.default_rng([3, seed, int(round(share * 100))]), kinds=(kind,))
    fit = fit_consensus(crowd.votes(rater=data["rater"], a=data["a"], b=data["b"], y=data["y"],
                                    n_raters=data["n_raters"]))
    n_real = len(crowd.workers)
    is_spammer = np.r_[np.zeros(n_real), np.ones(data["n_spammers"])].astype(int)
    return {"seed": seed, "spammers": data["n_spammers"], "auc": float(roc_auc_score(is_spammer, -fit.reliability)),
            "reliability_real_median": round(float(np.median(fit.reliability[:n_real])), 4),
            "reliability_spammers_mean": round(float(fit.reliability[n_real:].mean()), 4)}


def spam(crowd: Crowd, seeds: list[int], shares: list[float]) -> dict:
    reference = leaderboard_scores(crowd, crowd.a, crowd.b, crowd.y, np.ones(len(crowd.y)))
    clean_data = {"rater": crowd.rater, "a": crowd.a, "b": crowd.b, "y": crowd.y, "pair": crowd.pair,
                  "n_raters": len(crowd.workers)}
    clean = spam_leaderboards(crowd, reference, clean_data, None)
    print("[spam] 0 %: " + "  ".join(f"{k} τ {v:.3f}" for k, v in clean["tau"].items()), flush=True)
    runs: dict[str, list] = {}
    for share in shares:
        runs[f"{share:g}"] = []
        for s in seeds:
            data = add_spam(crowd, share, np.random.default_rng([2, s, int(round(share * 100))]))
            is_spammer = np.r_[np.zeros(len(crowd.workers)), np.ones(data["n_spammers"])].astype(int)
            r = spam_leaderboards(crowd, reference, data, is_spammer)
            r.update(seed=s, n_spammers=data["n_spammers"], spam_votes=data["n_spam"], votes=len(data["y"]))
            kinds = np.array(data["spammer_kind"])
            spam_rel = np.array(r["reliability"]["spammers"])
            r["spammer_reliability_mean"] = {k: round(float(spam_rel[kinds == k].mean()), 4)
                                             for k in dict.fromkeys(data["spammer_kind"])}
            if s == seeds[0]:  # the distributions are kept for the first seed only (the figure's panel)
                r["reliability"]["spammer_kind"] = data["spammer_kind"]
            else:
                r.pop("reliability")
                r.pop("noisy_bt_skill")
            runs[f"{share:g}"].append(r)
            print(f"[spam] {share:.0%} seed {s}: {data['n_spammers']} spammers, "
                  + "  ".join(f"{k} τ {v:.3f}" for k, v in r["tau"].items())
                  + f"  AUC verdict {r['auc']['verdict']:.3f} noisy_bt {r['auc']['noisy_bt']:.3f}  by kind "
                  + " ".join(f"{k} {v:.3f}" for k, v in r["auc_by_kind"].items()), flush=True)
    summ = {share: {"tau": {m: summary([r["tau"][m] for r in rs]) for m in METHODS},
                    "auc": {m: summary([r["auc"][m] for r in rs]) for m in ("verdict", "noisy_bt")},
                    "auc_by_kind": {k: summary([r["auc_by_kind"][k] for r in rs]) for k in rs[0]["auc_by_kind"]}}
            for share, rs in runs.items()}
    tau20 = summ.get("0.2", {}).get("tau", {}).get("verdict", {}).get("mean")
    aucs = [summ[k]["auc"]["verdict"]["mean"] for k in summ]
    # Each kind alone making up 20 % of the votes: a crowd of always-tie raters moves the data's tie share itself.
    alone: dict[str, dict] = {}
    for kind in SPAM_KINDS:
        rs = [one_kind(crowd, kind, 0.2, s) for s in seeds]
        alone[kind] = {"runs": rs, "auc": summary([r["auc"] for r in rs])}
        print(f"[spam] 20 % {kind} alone: AUC " + " ".join(f"{r['auc']:.3f}" for r in rs)
              + f"  (spammers' mean reliability {np.mean([r['reliability_spammers_mean'] for r in rs]):.3f}, real "
              f"workers' median {np.mean([r['reliability_real_median'] for r in rs]):.3f})", flush=True)
    by_kind20 = {k: v["auc"] for k, v in alone.items()}
    worst20 = min((v["mean"] for v in by_kind20.values()), default=None)
    return {"design": "reference = unweighted Davidson–BT over models on the clean votes (model_leaderboard, no "
                      f"bootstrap); spammers take the kinds {', '.join(SPAM_KINDS)} in turn, ~72 votes each on "
                      "distinct random comparisons",
            "reference_scores": {m: round(float(v), 4) for m, v in zip(crowd.models, reference, strict=True)},
            "clean": {"tau": clean["tau"], "seconds": clean["seconds"]}, "runs": runs, "summary": summ,
            "one_kind_at_20pct": alone,
            "goal": {"tau_at_20pct": {"text": "Verdict τ ≥ 0.9 at 20 % spam (mean over seeds)", "value": tau20,
                                      "met": bool(tau20 is not None and tau20 >= 0.9)},
                     "auc": {"text": "Verdict reliability AUC ≥ 0.95 (mean over seeds, every share)",
                             "value": min(aucs) if aucs else None, "met": bool(aucs and min(aucs) >= 0.95)},
                     "auc_every_kind": {"text": "Verdict reliability AUC ≥ 0.95 for every spammer kind, each alone "
                                                "making up 20 % of the votes (mean over seeds)", "value": worst20,
                                        "by_kind": {k: v["mean"] for k, v in by_kind20.items()},
                                        "met": bool(worst20 is not None and worst20 >= 0.95)}}}


# --- 3. dynamic overlap --------------------------------------------------------------------------------------------


def direction_accuracy(scores: np.ndarray, a: np.ndarray, b: np.ndarray, y: np.ndarray) -> float:
    """Share of non-tie votes whose winner is the item with the higher consensus score (a draw counts ½)."""
    strict = y != TIE
    d = scores[a[strict]] - scores[b[strict]]
    return float(np.where(d == 0, 0.5, (d > 0) == (y[strict] == A)).mean())


def run_policy(crowd: Crowd, arrivals: np.ndarray, threshold: float, refit_every: int, min_overlap: int) -> dict:
    available = np.bincount(crowd.pair[arrivals], minlength=crowd.n_pairs)
    submitted = np.zeros(crowd.n_pairs, dtype=np.int64)
    done = np.zeros(crowd.n_pairs, dtype=bool)
    used: list[int] = []
    fit, in_fit, refits = None, np.zeros(len(crowd.items), dtype=bool), 0
    for v in arrivals:
        p = crowd.pair[v]
        if done[p]:
            continue
        used.append(v)
        submitted[p] += 1
        if len(used) % refit_every == 0:  # a new fit object each time: its Laplace covariance is recomputed
            mask = np.zeros(len(crowd.y), dtype=bool)
            mask[used] = True
            fit = fit_consensus(crowd.votes(mask))
            in_fit = np.zeros(len(crowd.items), dtype=bool)
            in_fit[crowd.a[mask]] = in_fit[crowd.b[mask]] = True
            refits += 1
        if submitted[p] < min_overlap:
            confidence = 0.5  # decide() keeps the task open below min_overlap whatever the confidence
        elif fit is not None and in_fit[crowd.pair_a[p]] and in_fit[crowd.pair_b[p]]:
            confidence = task_confidence([fit.order_probability(int(crowd.pair_a[p]), int(crowd.pair_b[p]))])
        else:
            confidence = 0.5  # items not in the last fit yet: not confident
        done[p] = decide(int(submitted[p]), min_overlap, int(available[p]), confidence, threshold).done
    mask = np.zeros(len(crowd.y), dtype=bool)
    mask[used] = True
    stopped_early = done & (submitted < available)
    return {"mask": mask, "refits": refits, "stopped_early": int(stopped_early.sum()),
            "votes_per_comparison": {str(k): int(v) for k, v in zip(*np.unique(submitted, return_counts=True),
                                                                    strict=True)}}


def overlap_seed(crowd: Crowd, seed: int, thresholds: list[float], refit_every: int, min_overlap: int) -> dict:
    rng = np.random.default_rng([3, seed])
    test = np.zeros(len(crowd.y), dtype=bool)
    order = np.argsort(crowd.pair, kind="stable")
    for members in np.split(order, np.cumsum(np.bincount(crowd.pair))[:-1]):
        if len(members) >= 3:
            test[rng.choice(members)] = True
    arrivals = rng.permutation(np.flatnonzero(~test))
    ta, tb, ty = crowd.a[test], crowd.b[test], crowd.y[test]
    t = time.perf_counter()
    full = fit_consensus(crowd.votes(~test))
    full_seconds = round(time.perf_counter() - t, 2)
    available = np.bincount(crowd.pair[arrivals], minlength=crowd.n_pairs)
    # Diagnostic: how many comparisons the consensus of all votes is still unsure about, per threshold.
    confidence = np.array([task_confidence([full.order_probability(int(a), int(b))])
                           for a, b in zip(crowd.pair_a, crowd.pair_b, strict=True)])
    out = {"seed": seed, "test_votes": int(test.sum()), "test_non_tie": int((ty != TIE).sum()),
           "arrivals": int(len(arrivals)),
           "unsure_with_all_votes": {f"{th:g}": float(np.mean(confidence < th)) for th in thresholds},
           "floor_share": float(np.minimum(available, min_overlap).sum() / len(arrivals)),  # all stop at min_overlap
           "full": {"share": 1.0, "accuracy": direction_accuracy(full.scores, ta, tb, ty),
                    "seconds": full_seconds}, "dynamic": {}}
    for th in thresholds:
        t = time.perf_counter()
        run = run_policy(crowd, arrivals, th, refit_every, min_overlap)
        final = fit_consensus(crowd.votes(run.pop("mask") & ~test))
        used = int(final.votes.outcome.size)
        run.update(share=used / len(arrivals), votes_used=used, accuracy=direction_accuracy(final.scores, ta, tb, ty),
                   seconds=round(time.perf_counter() - t, 2))
        out["dynamic"][f"{th:g}"] = run
    print(f"[overlap] seed {seed}: full {out['full']['accuracy']:.4f}  " + "  ".join(
        f"{k}: {r['share']:.3f} of votes, acc {r['accuracy']:.4f}" for k, r in out["dynamic"].items()), flush=True)
    return out


def overlap(crowd: Crowd, seeds: list[int], thresholds: list[float], refit_every: int, min_overlap: int) -> dict:
    runs = [overlap_seed(crowd, s, thresholds, refit_every, min_overlap) for s in seeds]
    full_acc = summary([r["full"]["accuracy"] for r in runs])
    summ = {"full": {"share": 1.0, "accuracy": full_acc}, "floor_share": summary([r["floor_share"] for r in runs]),
            "unsure_with_all_votes": {f"{t:g}": summary([r["unsure_with_all_votes"][f"{t:g}"] for r in runs])
                                      for t in thresholds}}
    for th in (f"{t:g}" for t in thresholds):
        summ[th] = {"share": summary([r["dynamic"][th]["share"] for r in runs]),
                    "accuracy": summary([r["dynamic"][th]["accuracy"] for r in runs]),
                    "accuracy_minus_full": summary([r["dynamic"][th]["accuracy"] - r["full"]["accuracy"]
                                                    for r in runs])}
    ths = [f"{t:g}" for t in thresholds]
    ok = [k for k in ths if summ[k]["accuracy"]["mean"] >= full_acc["mean"]]
    if ok:
        pick, how = min(ok, key=lambda k: summ[k]["share"]["mean"]), "smallest share with accuracy ≥ full overlap's"
    else:
        pick, how = max(ths, key=lambda k: summ[k]["accuracy"]["mean"]), "none reaches full overlap: the closest"
    share = summ[pick]["share"]["mean"]
    return {"design": f"one held-out vote per comparison with ≥ 3 votes; the rest arrive in a random order; "
                      f"min_overlap {min_overlap}, max_overlap = the comparison's remaining votes; refit every "
                      f"{refit_every} used votes", "runs": runs, "summary": summ,
            "headline": {"threshold": float(pick), "rule": how, "share": share,
                         "accuracy": summ[pick]["accuracy"]["mean"], "full_accuracy": full_acc["mean"]},
            "goal": {"text": "share of votes ≤ 0.70 at accuracy ≥ full overlap's", "value": share,
                     "met": bool(ok and share <= 0.70)}}


def overlap_modes(crowd: Crowd, seeds: list[int], thresholds: list[float], refit_every: int,
                  min_overlaps: list[int]) -> dict:
    """The policy for each min_overlap (a project setting); the goal is judged on the best of them."""
    modes = {str(m): overlap(crowd, seeds, thresholds, refit_every, m) for m in min_overlaps}
    best = min(modes, key=lambda m: (not modes[m]["goal"]["met"], modes[m]["goal"]["value"]))
    return {"by_min_overlap": modes, "best_min_overlap": int(best),
            "goal": {**modes[best]["goal"], "min_overlap": int(best)}}


# --- 4. speed ------------------------------------------------------------------------------------------------------


def synthetic_rankings(n_rankings: int, k: int, per_task: int, n_raters: int, n_spammers: int, seed: int,
                       tie_gap: float = 0.15):
    """(rater, order tie groups, display order, task) records; real raters see the items' quality plus Gaussian noise
    of their own size (sd uniform in [0.1, 1.5], quality sd 1) and tie items they see closer than `tie_gap`;
    spammers alternately rank at random and in display order ("always left")."""
    rng = np.random.default_rng([4, seed])
    n_tasks = math.ceil(n_rankings / per_task)
    quality = rng.normal(size=(n_tasks, k))
    noise_sd = rng.uniform(0.1, 1.5, n_raters)
    raters = rng.integers(0, n_raters + n_spammers, n_rankings)
    eps = rng.normal(size=(n_rankings, k))
    shown_all = np.argsort(rng.random((n_rankings, k)), axis=1)
    records = []
    for i in range(n_rankings):
        task, r = i // per_task, int(raters[i])
        ids = task * k + np.arange(k)
        shown = ids[shown_all[i]]
        if r < n_raters:
            seen = quality[task] + noise_sd[r] * eps[i]
        elif (r - n_raters) % 2 == 0:
            seen = eps[i]  # random spammer
        else:
            seen = -shown_all[i].argsort().astype(float)  # "always left": ranks in display order
        rank = np.argsort(-seen)
        order, last = [], None
        for j in rank:
            if last is not None and r < n_raters and last - seen[j] < tie_gap:
                order[-1].append(int(ids[j]))
            else:
                order.append([int(ids[j])])
            last = seen[j]
        records.append((r, order, shown.tolist(), task))
    return records, quality, noise_sd


def blas_info() -> list[dict]:
    from threadpoolctl import threadpool_info

    return [{"api": i.get("internal_api"), "library": Path(i.get("filepath", "")).name, "threads": i.get("num_threads")}
            for i in threadpool_info()]


def timed_fit(records) -> tuple[dict, Votes, object]:
    """collect_votes → fit_consensus → one order_probability (the Laplace covariance of every group), timed."""
    load_before = os.getloadavg()[0]
    c0 = time.process_time()
    t0 = time.perf_counter()
    votes = collect_votes(records)
    t1 = time.perf_counter()
    fit = fit_consensus(votes)
    t2 = time.perf_counter()
    fit.order_probability(int(votes.a[0]), int(votes.b[0]))
    t3 = time.perf_counter()
    return {"collect_votes": round(t1 - t0, 2), "fit_consensus": round(t2 - t1, 2), "laplace_covariance":
            round(t3 - t2, 2), "total": round(t3 - t0, 2), "process_cpu": round(time.process_time() - c0, 2),
            "em_iterations": fit.iterations, "converged": bool(fit.converged), "blas": blas_info(),
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]}, votes, fit


def speed(n_rankings: int, k: int, per_task: int, n_raters: int, n_spammers: int, seed: int, tie_gap: float) -> dict:
    """Timed twice on the same records: with the BLAS libraries' default threads (as the platform runs it) and with
    BLAS/OpenMP limited to one thread (threadpoolctl)."""
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_limits

    t = time.perf_counter()
    records, quality, noise_sd = synthetic_rankings(n_rankings, k, per_task, n_raters, n_spammers, seed, tie_gap)
    generate = time.perf_counter() - t
    runs = {}
    runs["default_threads"], votes, fit = timed_fit(records)
    with threadpool_limits(limits=1):
        runs["one_blas_thread"], _, fit1 = timed_fit(records)
    for name, r in runs.items():
        print(f"[speed] {name}: {len(votes)} votes, collect {r['collect_votes']}s, fit {r['fit_consensus']}s "
              f"({r['em_iterations']} EM it.), laplace {r['laplace_covariance']}s, total {r['total']}s", flush=True)
    rater_key = np.array(votes.raters)
    real = rater_key < n_raters
    true = quality.ravel()[np.array(votes.items)]
    d_fit, d_true = fit.scores[votes.a] - fit.scores[votes.b], true[votes.a] - true[votes.b]
    total = runs["default_threads"]["total"]
    return {"rankings": n_rankings, "k": k, "rankings_per_task": per_task, "tasks": math.ceil(n_rankings / per_task),
            "raters": n_raters, "spammers": n_spammers, "tie_gap": tie_gap, "votes": len(votes),
            "items": len(votes.items), "tie_share": round(float(np.mean(votes.outcome == TIE)), 4),
            "generate_records_s": round(generate, 2), "runs": runs,
            "max_score_difference_between_runs": float(np.abs(fit.scores - fit1.scores).max()),
            "sanity": {"spammer_auc": float(roc_auc_score((rater_key >= n_raters).astype(int), -fit.reliability)),
                       "spearman_reliability_vs_noise_sd": float(spearmanr(fit.reliability[real],
                                                                           noise_sd[rater_key[real]])[0]),
                       "consensus_agrees_with_true_quality": float(np.mean(np.sign(d_fit) == np.sign(d_true)))},
            "cpu_count": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
            "goal": {"text": "collect_votes + fit_consensus + Laplace < 60 s on 2 cores (default threads)",
                     "value": total, "met": bool(total < 60),
                     "one_blas_thread": {"value": runs["one_blas_thread"]["total"],
                                         "met": bool(runs["one_blas_thread"]["total"] < 60)}}}


# --- figure --------------------------------------------------------------------------------------------------------


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.6))
    colours = {"majority": "tab:grey", "bradley_terry": "tab:blue", "verdict": "tab:red", "noisy_bt": "tab:green"}
    x = np.arange(len(METHODS))

    ax = axes[0, 0]
    if "heldout" in result:
        s = result["heldout"]["summary"]
        for off, key, hatch in ((-0.2, "logloss3", ""), (0.2, "logloss_binary", "//")):
            means = [s[m][key]["mean"] for m in METHODS]
            err = [[s[m][key]["mean"] - s[m][key]["min"] for m in METHODS],
                   [s[m][key]["max"] - s[m][key]["mean"] for m in METHODS]]
            ax.bar(x + off, means, 0.4, yerr=err, color=[colours[m] for m in METHODS], hatch=hatch, alpha=0.85,
                   edgecolor="black", label="3-way (all votes)" if key == "logloss3" else "binary (non-tie votes)")
            for xi, v in zip(x + off, means, strict=True):
                ax.text(xi, v + 0.01, f"{v:.3f}", ha="center", fontsize=7)
        ax.set_xticks(x, [LABELS[m].replace(" (", "\n(") for m in METHODS], fontsize=8)
        ax.set_ylabel("held-out log-loss (lower is better)")
        ax.set_ylim(0, 1.3 * max(s[m]["logloss3"]["max"] for m in METHODS))
        ax.legend(fontsize=8, loc="upper center", ncol=2)
        ax.set_title(f"(a) held-out LLMFAO votes, {len(result['heldout']['runs'])} seeds (mean, min–max)", fontsize=10)

    ax = axes[0, 1]
    if "spam" in result:
        s = result["spam"]["summary"]
        shares = list(s)
        width = 0.8 / len(shares)
        for i, share in enumerate(shares):
            means = [s[share]["tau"][m]["mean"] for m in METHODS]
            err = [[s[share]["tau"][m]["mean"] - s[share]["tau"][m]["min"] for m in METHODS],
                   [s[share]["tau"][m]["max"] - s[share]["tau"][m]["mean"] for m in METHODS]]
            ax.bar(x - 0.4 + width * (i + 0.5), means, width, yerr=err, color=[colours[m] for m in METHODS],
                   alpha=1.0 - 0.4 * i, edgecolor="black", hatch="" if i == 0 else "..",
                   label=f"{float(share):.0%} spam")
        ax.axhline(0.9, color="black", ls="--", lw=0.8, label="goal τ = 0.9 (20 %)")
        ax.set_xticks(x, [LABELS[m].replace(" (", "\n(") for m in METHODS], fontsize=8)
        ax.set_ylim(0.5, 1.0)
        ax.set_ylabel("Kendall τ vs clean-data leaderboard (59 models)")
        ax.legend(fontsize=8, loc="lower left")
        ax.set_title("(b) model leaderboard under spam", fontsize=10)

        ax = axes[1, 0]
        first = result["spam"]["runs"].get("0.2", [None])[0]
        if first is not None:
            bins = np.linspace(0, 1, 41)
            rel = first["reliability"]
            kind = np.array(rel["spammer_kind"])
            spam_rel = np.array(rel["spammers"])
            shown = list(dict.fromkeys(rel["spammer_kind"]))
            ax.hist([rel["real"], *(spam_rel[kind == k] for k in shown)], bins, stacked=True,
                    label=[f"real workers ({len(rel['real'])})", *(f"{k} ({(kind == k).sum()})" for k in shown)])
            auc = result["spam"]["summary"]["0.2"]["auc"]
            ax.set_title(f"(c) Verdict reliability at 20 % spam (seed {first['seed']}); AUC mean "
                         f"{auc['verdict']['mean']:.3f} (NoisyBT skill: {auc['noisy_bt']['mean']:.3f})", fontsize=10)
            ax.set_xlabel("fit.reliability (posterior mean of η)")
            ax.set_ylabel("raters")
            ax.legend(fontsize=8)

    ax = axes[1, 1]
    if "overlap" in result:
        modes = result["overlap"]["by_min_overlap"]
        f = next(iter(modes.values()))["summary"]["full"]["accuracy"]
        ax.errorbar([1.0], [f["mean"]], yerr=[[f["mean"] - f["min"]], [f["max"] - f["mean"]]], fmt="s",
                    color="black", label="full overlap (all votes)")
        ax.axhline(f["mean"], color="black", ls=":", lw=0.8)
        for marker, (m, mode) in zip("o^vD", modes.items(), strict=False):
            s = mode["summary"]
            for th in (k for k in s if k not in ("full", "floor_share", "unsure_with_all_votes")):
                sh, ac = s[th]["share"], s[th]["accuracy"]
                ax.errorbar([sh["mean"]], [ac["mean"]], xerr=[[sh["mean"] - sh["min"]], [sh["max"] - sh["mean"]]],
                            yerr=[[ac["mean"] - ac["min"]], [ac["max"] - ac["mean"]]], fmt=marker,
                            label=f"min_overlap {m}, threshold {th}")
        ax.axvline(0.7, color="grey", ls="--", lw=0.8, label="goal: ≤ 70 % of votes")
        ax.set_xlabel("share of votes used")
        ax.set_ylabel("consensus accuracy on held-out non-tie votes")
        ax.legend(fontsize=6, loc="lower left")
        ax.set_title("(d) dynamic overlap (mean, min–max over seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# --- main ----------------------------------------------------------------------------------------------------------


def code_identity() -> dict:
    """The commit and a SHA-256 prefix of each benchmarked module (they may be edited after the last commit)."""
    import hashlib
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=False).stdout.strip() or None
    except OSError:
        head = None
    files = ("quality/consensus.py", "quality/leaderboard.py", "quality/overlap.py", "annotation/pairs.py")
    return {"git_head": head, "sha256": {f: hashlib.sha256((ROOT / f).read_bytes()).hexdigest()[:16] for f in files
                                         if (ROOT / f).is_file()}}


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("numpy", "scipy", "scikit-learn", "crowd-kit", "pandas", "matplotlib", "threadpoolctl"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--parts", nargs="+", choices=["heldout", "spam", "overlap", "speed"],
                    default=["heldout", "spam", "overlap", "speed"])
    ap.add_argument("--holdout-share", type=float, default=0.2)
    ap.add_argument("--spam-shares", type=float, nargs="+", default=[0.2, 0.4])
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.8, 0.9, 0.95])
    ap.add_argument("--refit-every", type=int, default=500)
    ap.add_argument("--min-overlap", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--speed-rankings", type=int, default=100_000)
    ap.add_argument("--speed-raters", type=int, default=300)
    ap.add_argument("--speed-spammers", type=int, default=6)
    ap.add_argument("--speed-tie-gap", type=float, default=0.15, help="real raters tie items seen closer than this")
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="BLAS/OpenMP threads for parts 1–3 (0: the libraries' default); the speed part times both")
    ap.add_argument("--out", type=Path, default=RESULTS / "quality_bench.json")
    args = ap.parse_args()

    path = args.data / CSV_NAME
    if not path.is_file():
        print(f"skipping the quality benchmark: {path} not found", flush=True)
        return
    t_start = time.perf_counter()
    crowd = load_crowd(path)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    result: dict = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "code": code_identity(), "versions": versions(), "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "blas": blas_info(),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"},
        "data": {"file": CSV_NAME, "votes": len(crowd.y), "workers": len(crowd.workers),
                 "comparisons": crowd.n_pairs, "items": len(crowd.items), "models": len(crowd.models),
                 "prompts": int(crowd.groups.max() + 1),
                 "outcomes": {k: int(np.sum(crowd.y == v)) for k, v in OUTCOME.items()}},
        "durations_s": {}, "load_average_1min_at_start": round(os.getloadavg()[0], 2),
    }
    parts = {
        "heldout": lambda: heldout(crowd, seeds, args.holdout_share),
        "spam": lambda: spam(crowd, seeds, args.spam_shares),
        "overlap": lambda: overlap_modes(crowd, seeds, args.thresholds, args.refit_every, args.min_overlap),
        "speed": lambda: speed(args.speed_rankings, 4, 3, args.speed_raters, args.speed_spammers, args.first_seed,
                               args.speed_tie_gap),
    }
    from threadpoolctl import threadpool_limits

    for name in args.parts:
        t = time.perf_counter()
        if name != "speed" and args.blas_threads > 0:
            with threadpool_limits(limits=args.blas_threads):
                result[name] = parts[name]()
        else:
            result[name] = parts[name]()
        result["durations_s"][name] = round(time.perf_counter() - t, 1)
        print(f"[{name}] {result['durations_s'][name]} s", flush=True)
    result["goals"] = {name: result[name]["goal"] for name in args.parts}
    result["durations_s"]["total"] = round(time.perf_counter() - t_start, 1)
    result["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    plot(result, args.out.with_suffix(".png"))
    print(json.dumps(result["goals"], indent=1, ensure_ascii=False))
    print(f"total {result['durations_s']['total']} s → {args.out}", flush=True)


if __name__ == "__main__":
    main()
