"""The promotion gate: whether a newly trained version may become the active one (and so steer routing).

A version is *eligible* only with enough evidence behind it: at least ``min_train_rankings`` training rankings
and ``min_heldout_pairs`` held-out pairs. A model that has seen four rankings and was checked on six pairs must
not be promoted, nor send rater work anywhere (Goodhart: the reward model is a proxy, and a tiny one is noise).

An eligible version is promoted when nothing is active, or unless the held-out pairs show it is worse than the
active version: it is rejected when the whole 95 % paired bootstrap interval of the accuracy difference
(new − active, same held-out pairs) lies below −``margin`` (default 0). A point estimate rejects on noise half the
time when two versions are equal, and so does a strict non-inferiority rule (lower end ≥ −margin) on held-out sets
of a few dozen pairs: in a closed-loop replay it rejected a version that was +0.08 better (interval −0.05 to
+0.22, 37 pairs) and froze the loop on an older model. The newer version has seen more data, so the burden of
proof is on "worse". Resampling is over held-out rankings, not single pairs: the K·(K−1)/2 pairs of one ranking
share a prompt and a rater and are not independent.

Whatever the comparison, a version is never promoted unless its own held-out accuracy clears chance: the lower end of
its 95 % interval (the same cluster bootstrap) must lie above 0.5. Without it the first eligible version was promoted
at 0.357, and would have steered routing and the RL trainers' rewards the wrong way.

Every decision carries a reason in words, stored on the version and shown in the admin, the API and the CLI.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

DEFAULT_MIN_TRAIN_RANKINGS = 50
DEFAULT_MIN_HELDOUT_PAIRS = 50
DEFAULT_MARGIN = 0.0
BOOTSTRAP_SAMPLES = 2000


@dataclass(frozen=True)
class GateSettings:
    min_train_rankings: int = DEFAULT_MIN_TRAIN_RANKINGS
    min_heldout_pairs: int = DEFAULT_MIN_HELDOUT_PAIRS
    margin: float = DEFAULT_MARGIN

    @classmethod
    def for_project(cls, project_id: int) -> GateSettings:
        from rewardmodel.models import RetrainPolicy

        policy = RetrainPolicy.objects.filter(project_id=project_id).first()
        if policy is None:
            return cls()
        return cls(policy.min_train_rankings, policy.min_heldout_pairs, policy.promotion_margin)


@dataclass(frozen=True)
class Decision:
    promote: bool
    eligible: bool
    reason: str
    accuracy_delta: float | None = None  # new − active on the same held-out pairs
    ci_low: float | None = None
    ci_high: float | None = None
    margin: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def correctness(diffs: np.ndarray) -> np.ndarray:
    """Per pair: 1 when the winner scored higher, 0.5 on an exact tie, 0 otherwise (as pairwise_accuracy)."""
    return np.where(diffs > 0, 1.0, np.where(diffs == 0, 0.5, 0.0))


def cluster_bootstrap(values: np.ndarray, clusters: np.ndarray, seed: int,
                      samples: int = BOOTSTRAP_SAMPLES) -> tuple[float, float, float]:
    """(mean of per-pair `values`, 2.5 % and 97.5 % quantiles), resampling whole clusters with replacement."""
    _, cluster_index = np.unique(clusters, return_inverse=True)
    n_clusters = int(cluster_index.max()) + 1
    sums = np.bincount(cluster_index, weights=values, minlength=n_clusters)
    sizes = np.bincount(cluster_index, minlength=n_clusters).astype(np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_clusters, size=(samples, n_clusters))
    # Ratio estimator: the resampled pair-level mean (clusters may differ in size, ties give fewer pairs).
    boot = sums[draws].sum(axis=1) / sizes[draws].sum(axis=1)
    low, high = np.quantile(boot, [0.025, 0.975])
    return float(values.mean()), float(low), float(high)


def paired_bootstrap(new_diffs: np.ndarray, old_diffs: np.ndarray, clusters: np.ndarray, seed: int,
                     samples: int = BOOTSTRAP_SAMPLES) -> tuple[float, float, float]:
    """(accuracy difference new − old, 2.5 % and 97.5 % quantiles), resampling whole clusters with replacement."""
    return cluster_bootstrap(correctness(new_diffs) - correctness(old_diffs), clusters, seed, samples)


CHANCE = 0.5


def accuracy_interval(diffs: np.ndarray, clusters: np.ndarray, seed: int,
                      samples: int = BOOTSTRAP_SAMPLES) -> tuple[float, float, float]:
    """(held-out accuracy, 2.5 % and 97.5 % quantiles), resampling whole clusters (rankings) as the paired test."""
    return cluster_bootstrap(correctness(diffs), clusters, seed, samples)


def ineligibility(settings: GateSettings, train_rankings: int | None, heldout_pairs: int | None) -> str | None:
    """Why a version with these sizes may neither be promoted nor drive routing; None when it may."""
    if (train_rankings or 0) < settings.min_train_rankings:
        return (f"not eligible: trained on {train_rankings or 0} rankings, the project requires at least "
                f"{settings.min_train_rankings}")
    if (heldout_pairs or 0) < settings.min_heldout_pairs:
        return (f"not eligible: {heldout_pairs or 0} held-out pairs, the project requires at least "
                f"{settings.min_heldout_pairs} to judge it")
    return None


def decide(settings: GateSettings, train_rankings: int, new_diffs: np.ndarray, active_diffs: np.ndarray | None,
           clusters: np.ndarray, seed: int = 0) -> Decision:
    """The gate's verdict for a new version; ``active_diffs`` is None when the project has no active version."""
    pairs = int(new_diffs.size)
    why_not = ineligibility(settings, train_rankings, pairs)
    if why_not:
        return Decision(False, False, why_not)
    accuracy, acc_low, acc_high = accuracy_interval(new_diffs, clusters, seed)
    chance = (f"held-out accuracy {accuracy:.3f} (95% CI {acc_low:.3f} to {acc_high:.3f}) on {pairs} pairs does not "
              f"clear chance ({CHANCE})") if acc_low <= CHANCE else ""
    if active_diffs is None:
        if chance:
            return Decision(False, True, f"rejected: {chance}")
        return Decision(True, True, "promoted: first eligible version (no active version)")
    delta, low, high = paired_bootstrap(new_diffs, active_diffs, clusters, seed)
    interval = f"accuracy vs active {delta:+.3f} (95% CI {low:+.3f} to {high:+.3f}) on {pairs} held-out pairs"
    if chance:
        return Decision(False, True, f"rejected: {chance}; {interval}", delta, low, high, settings.margin)
    if high >= -settings.margin:
        return Decision(True, True, f"promoted: {interval}; not shown to be worse than active", delta, low, high,
                        settings.margin)
    return Decision(False, True, f"rejected: {interval}; worse than active", delta, low, high, settings.margin)
