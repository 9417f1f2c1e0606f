"""Choosing which candidate comparisons go back to raters.  Pure numpy / scikit-learn, no Django.

Strategies:

* ``random``                 a seeded uniform draw: the baseline every other strategy is measured against
* ``uncertainty``            the B least stable pairs (highest instability; by default the active version's margin)
* ``uncertainty_diversity``  batch mode: pre-filter the β·B least stable, cluster their pair features with
  k-means into B clusters and keep the least stable pair of each cluster, so one batch does not spend all
  its labels on near-duplicates
* ``dopt``, ``past_dopt``, ``gap_ucb``, ``bald``  from the active version's last layer (active_learning.design,
  which cites each one's source): they need a ``design``

Every strategy skips items asked ``max_asks`` times or more (counts supplied by the caller) and items the
caller marks ineligible (``eligible``, e.g. a per-prompt cap).  With ``groups`` (e.g. the prompt of each pair), a
batch holds at most one item per group: the group's least stable item (for ``random``, a random one), since pairs
of one prompt say much the same thing and a batch should spread its labels.
"""

from __future__ import annotations

import numpy as np

RANDOM = "random"
UNCERTAINTY = "uncertainty"
UNCERTAINTY_DIVERSITY = "uncertainty_diversity"
DOPT = "dopt"
PAST_DOPT = "past_dopt"
GAP_UCB = "gap_ucb"
BALD = "bald"
DESIGN_STRATEGIES = (DOPT, PAST_DOPT, GAP_UCB, BALD)
STRATEGIES = (RANDOM, UNCERTAINTY, UNCERTAINTY_DIVERSITY, *DESIGN_STRATEGIES)
# What a round may be asked for: a strategy, or "auto" (active_learning.audit decides per project, from its
# evaluation stream, and falls back to random among fresh tasks when nothing is shown to help).
AUTO = "auto"
POLICIES = (AUTO, *STRATEGIES)


def eligible_mask(n: int, ask_counts: np.ndarray | None, max_asks: int | None) -> np.ndarray:
    if ask_counts is None or max_asks is None:
        return np.ones(n, dtype=bool)
    ask_counts = np.asarray(ask_counts)
    if ask_counts.shape != (n,):
        raise ValueError(f"ask_counts has shape {ask_counts.shape}, expected ({n},)")
    return ask_counts < max_asks


def _top(instability: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    # Stable sort on −instability: ties keep candidate order, so results are deterministic.
    order = np.argsort(-instability[candidates], kind="stable")
    return candidates[order[:k]]


def select(
    strategy: str,
    instability: np.ndarray,
    batch_size: int,
    features: np.ndarray | None = None,
    ask_counts: np.ndarray | None = None,
    max_asks: int | None = None,
    seed: int = 0,
    prefilter: float = 3.0,
    eligible: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    design=None,
) -> np.ndarray:
    """Indices of the chosen candidates, most urgent first (for ``random``: in draw order). The last-layer
    strategies read ``design`` (an ``active_learning.design.LastLayer`` over the same candidates)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    instability = np.asarray(instability, dtype=np.float64)
    n = len(instability)
    mask = eligible_mask(n, ask_counts, max_asks)
    if eligible is not None:
        mask &= np.asarray(eligible, dtype=bool)
    candidates = np.flatnonzero(mask)
    if strategy in DESIGN_STRATEGIES:
        if design is None:
            raise ValueError(f"{strategy} needs the active version's last layer (design)")
        from active_learning import design as designs

        if strategy in (DOPT, PAST_DOPT):
            return designs.greedy_logdet(design, batch_size, candidates,
                                         None if groups is None else np.asarray(groups), past=strategy == PAST_DOPT)
        instability = designs.gap_ucb_scores(design) if strategy == GAP_UCB else designs.bald_scores(design, seed)
    if groups is not None:
        candidates = _one_per_group(candidates, np.asarray(groups), instability, strategy, seed)
    if len(candidates) == 0:
        return np.zeros(0, dtype=np.int64)
    b = min(batch_size, len(candidates))
    if strategy == RANDOM:
        return np.random.default_rng(seed).choice(candidates, size=b, replace=False)
    if strategy in (UNCERTAINTY, GAP_UCB, BALD) or b == len(candidates):
        return _top(instability, candidates, b)
    if features is None:
        raise ValueError("uncertainty_diversity needs pair features")
    if prefilter < 1:
        raise ValueError("prefilter must be at least 1")
    pool = _top(instability, candidates, max(b, int(np.ceil(prefilter * b))))
    return diverse_top(instability, np.asarray(features)[pool], pool, b, seed)


def _one_per_group(candidates: np.ndarray, groups: np.ndarray, instability: np.ndarray, strategy: str,
                   seed: int) -> np.ndarray:
    """One candidate per group, in index order: the least stable one (for ``random``: a seeded random one)."""
    if groups.shape != instability.shape:
        raise ValueError(f"groups has shape {groups.shape}, expected {instability.shape}")
    if strategy == RANDOM:
        order = np.random.default_rng([seed, 1]).permutation(candidates)
    else:
        order = _top(instability, candidates, len(candidates))
    _, first = np.unique(groups[order], return_index=True)
    return np.sort(order[first])


def diverse_top(instability: np.ndarray, pool_features: np.ndarray, pool: np.ndarray, b: int, seed: int) -> np.ndarray:
    """k-means the pool into b clusters; the least stable member of each cluster, most unstable first."""
    x = pool_features - pool_features.mean(axis=0)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    # Rounded to 5 decimals: features computed on another machine (another BLAS, thread count or CPU) differ in
    # the last float bits, and those differences used to move a k-means assignment and with it the whole batch.
    x = (x / np.maximum(norms, 1e-12)).round(5)
    n_clusters = min(b, len(np.unique(x, axis=0)))
    from sklearn.cluster import KMeans  # loaded on use (~1.7 s): commands and web processes start without it

    labels = KMeans(n_clusters=n_clusters, init="k-means++", n_init=3, algorithm="lloyd",
                    random_state=seed).fit_predict(x)
    picked: list[int] = []
    for c in range(n_clusters):
        members = pool[labels == c]
        picked.append(int(members[np.argmax(instability[members])]))
    if len(picked) < b:  # duplicate features collapsed clusters: fill with the next least stable
        rest = np.array([i for i in pool if i not in set(picked)], dtype=np.int64)
        picked.extend(_top(instability, rest, b - len(picked)).tolist())
    chosen = np.array(picked, dtype=np.int64)
    return chosen[np.argsort(-instability[chosen], kind="stable")]
