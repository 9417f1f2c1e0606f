"""Does routing pay off on this project? A retrospective audit on its evaluation stream.  Pure numpy.

The evaluation stream (annotation.eval_stream) is a uniformly random sample of the project's tasks, labelled in
random order, that routing never touched: the only labels on which strategies can be compared without the bias of
having chosen them. The audit replays each strategy against random on those labels, as the simulation does on public
data: the pairs are split by prompt into a pool and a test set, every strategy starts from the same random labels,
and a linear Bradley–Terry head on the active version's last-layer features (fixed: the version is what routing
reads) is refitted after each simulated batch; test accuracy after every batch gives a curve. Over ``resamples``
paired resamples (each its own split and starting labels, shared by all strategies) it reports each strategy's

* AUC gain over random: mean test accuracy over the budget minus random's;
* budget share: the labels the strategy needs to reach random's accuracy at the full budget, over that budget;

with 95 % intervals from resampling the resamples. The budget is half the pool, so that choosing matters (with the
whole pool labelled every strategy ends where random does). :func:`verdict` picks the strategy that policy ``auto``
uses: the one with the largest AUC gain among those shown to help, with a budget-share interval below 1 and an
AUC-gain interval above 0; or none (then routing falls back to random among fresh tasks, which costs the project
nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from active_learning.design import LastLayer
from active_learning.selection import BALD, DOPT, GAP_UCB, PAST_DOPT, RANDOM, UNCERTAINTY, select
from active_learning.stability import fit_bt_head, percentile_rank

AUDITED = (RANDOM, UNCERTAINTY, DOPT, PAST_DOPT, GAP_UCB, BALD)
DIMS = 32  # the head is fitted on the top principal directions of the pool's features: a few hundred labels
BOOTSTRAP = 2000


@dataclass
class AuditData:
    features: np.ndarray  # (n_items, d): the active version's last-layer features
    pairs: np.ndarray  # (m, 2) (winner, loser) item indices: the evaluation stream's labelled comparisons
    prompts: np.ndarray  # (m,) the prompt of each pair (splits keep prompts whole)


@dataclass
class AuditResult:
    labels: list[int]
    strategies: dict[str, dict] = field(default_factory=dict)
    resamples: int = 0

    def as_dict(self) -> dict:
        return {"labels": self.labels, "strategies": self.strategies, "resamples": self.resamples}


def _project(features: np.ndarray, rows: np.ndarray, dims: int) -> np.ndarray:
    x = features[rows] - features[rows].mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    z = (features - features[rows].mean(0)) @ vt[:dims].T
    return z / max(float(z[rows].std()), 1e-12)


def _accuracy(w: np.ndarray, x: np.ndarray, test: np.ndarray) -> float:
    delta = x[test[:, 0]] @ w - x[test[:, 1]] @ w
    return float(np.mean((delta > 0) + 0.5 * (delta == 0)))


def _curve(x, pairs, prompts, pool, test, start, batch, budget, strategy, seed) -> list[float]:
    labelled = list(start)
    curve = []
    while True:
        w = fit_bt_head(x[pairs[labelled, 0]] - x[pairs[labelled, 1]])
        curve.append(_accuracy(w, x, pairs[test]))
        if len(labelled) >= budget:
            return curve
        rest = np.setdiff1d(pool, labelled)
        # The selector never sees the label: scores are symmetric in the pair's two items (a, b as stored).
        cand = pairs[rest]
        scores = x @ w
        logits = scores[cand[:, 0]] - scores[cand[:, 1]]
        design = LastLayer.of(x, scores, cand, pairs[labelled]) if strategy not in (RANDOM, UNCERTAINTY) else None
        k = min(batch, budget - len(labelled), len(rest))
        groups = prompts[rest] if len(np.unique(prompts[rest])) >= k else None
        picked = select(strategy, percentile_rank(-np.abs(logits)), k, seed=seed + len(labelled), groups=groups,
                        design=design)
        labelled.extend(rest[picked].tolist())


def _budget_share(labels: np.ndarray, curve: np.ndarray, target: float) -> float:
    hit = np.flatnonzero(curve >= target - 1e-12)
    if not len(hit):
        return float("inf")
    j = hit[0]
    if j == 0:
        return float(labels[0] / labels[-1])
    x0, x1, y0, y1 = labels[j - 1], labels[j], curve[j - 1], curve[j]
    return float((x0 + (target - y0) / (y1 - y0) * (x1 - x0)) / labels[-1])


def _interval(values: np.ndarray) -> list[float | None]:
    finite = values[np.isfinite(values)]
    if len(finite) < len(values) * 0.975:  # more than 2.5 % never reached: the upper end is unbounded
        return [float(np.quantile(finite, 0.025)) if len(finite) else None, None]
    return [float(v) for v in np.quantile(values, [0.025, 0.975])]


def replay(data: AuditData, strategies=AUDITED, resamples: int = 20, seed: int = 0) -> AuditResult:
    """Every strategy against random on `data`, over paired resamples (see the module's docstring)."""
    pairs = np.asarray(data.pairs, dtype=np.int64).reshape(-1, 2)
    prompts = np.asarray(data.prompts)
    distinct = np.unique(prompts)
    if len(distinct) < 4 or len(pairs) < 40:
        raise ValueError(f"the evaluation stream has {len(pairs)} pairs over {len(distinct)} prompts; the audit "
                         "needs at least 40 over 4")
    curves: dict[str, list] = {s: [] for s in strategies}
    for r in range(resamples):
        rng = np.random.default_rng([seed, r])
        held = set(rng.permutation(distinct)[: max(1, len(distinct) // 4)].tolist())
        is_test = np.array([p in held for p in prompts])
        pool, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
        x = _project(np.asarray(data.features, dtype=np.float64), np.unique(pairs[pool]),
                     min(DIMS, data.features.shape[1]))
        budget = max(20, len(pool) // 2)
        start = rng.choice(pool, size=max(4, budget // 10), replace=False)
        batch = max(2, budget // 10)
        for strategy in strategies:
            curves[strategy].append(_curve(x, pairs, prompts, pool, test, start, batch, budget, strategy,
                                           seed=r * 7919))
    steps = min(len(c) for cs in curves.values() for c in cs)
    arr = {s: np.array([c[:steps] for c in cs]) for s, cs in curves.items()}
    # Resamples differ in pool size, and every curve starts at a tenth of its budget and adds a tenth a batch:
    # curves are compared by the share of the budget spent.
    fractions = np.arange(1, steps + 1) / steps
    result = AuditResult(labels=[round(float(f), 3) for f in fractions], resamples=resamples)
    draws = np.random.default_rng([seed, 99]).integers(0, resamples, size=(BOOTSTRAP, resamples))
    auc = {s: np.trapezoid(a, fractions, axis=1) for s, a in arr.items()}
    for s, a in arr.items():
        gain = auc[s] - auc[RANDOM]
        shares = np.array([_budget_share(fractions, a[d].mean(0), arr[RANDOM][d].mean(0)[-1]) for d in draws])
        result.strategies[s] = {
            "final_accuracy": float(a.mean(0)[-1]),
            "auc_gain_vs_random": float(gain.mean()),
            "auc_gain_ci95": _interval(np.array([gain[d].mean() for d in draws])),
            "budget_share": _budget_share(fractions, a.mean(0), arr[RANDOM].mean(0)[-1]),
            "budget_share_ci95": _interval(shares),
        }
    return result


def verdict(result: AuditResult) -> tuple[str | None, str]:
    """(strategy for policy auto or None, why): the best AUC gain among strategies shown to save labels (budget-share
    interval below 1) and to cost no accuracy on the way (AUC-gain interval above 0)."""
    proven = {s: r for s, r in result.strategies.items()
              if s != RANDOM and r["budget_share_ci95"][1] is not None and r["budget_share_ci95"][1] < 1
              and r["auc_gain_ci95"][0] is not None and r["auc_gain_ci95"][0] > 0}
    if not proven:
        best = max((s for s in result.strategies if s != RANDOM),
                   key=lambda s: result.strategies[s]["auc_gain_vs_random"], default=None)
        if best is None:
            return None, "no strategy was audited"
        r = result.strategies[best]
        return None, (f"no strategy is shown to save labels (best, {best}: budget share {_fmt_share(r)}, AUC gain "
                      f"{r['auc_gain_vs_random']:+.3f})")
    best = max(proven, key=lambda s: proven[s]["auc_gain_vs_random"])
    r = proven[best]
    return best, f"{best} saves labels: budget share {_fmt_share(r)}, AUC gain {r['auc_gain_vs_random']:+.3f}"


def _fmt_share(r: dict) -> str:
    lo, hi = r["budget_share_ci95"]
    share = "∞" if not np.isfinite(r["budget_share"]) else f"{r['budget_share']:.2f}"
    return f"{share} [{'–' if lo is None else f'{lo:.2f}'}, {'∞' if hi is None else f'{hi:.2f}'}]"
