"""Selection from the reward model's last layer: experimental design and posterior acquisitions.  Pure numpy.

The active version scores an item as r = w·φ + b, with φ its last-layer features (what the head reads). For a pair
(a, b) let d = φa − φb and p = σ(r_a − r_b). Treating w as the unknown of a Bradley–Terry model on fixed φ gives
the Fisher information of a labelled pair, p(1−p)·d·dᵀ, and a Laplace posterior w ~ N(ŵ, H⁻¹) with
H = λI + Σ_labelled p(1−p)·d·dᵀ. The strategies:

* ``dopt``       D-optimal design (Shen, Sun & Ton, "Active Reward Modeling", ICML 2025, code YunyiShen/ARM-FI):
                 the batch that greedily maximises log det(λI + Σ_batch p(1−p)·d·dᵀ); it favours pairs that cover new
                 directions of the embedding space at moderate reward gaps (p(1−p) vanishes for sure pairs).
* ``past_dopt``  the same, starting from the information of the pairs already labelled (their "past-aware" design):
                 new pairs are worth what they add to what is known.
* ``gap_ucb``    optimistic reward gaps (the DeltaUCB class of ActiveUltraFeedback, Melikidze et al. 2026,
                 lasgroup/ActiveUltraFeedback): the pairs with the largest |r_a − r_b| + β·sd(r_a − r_b) under the
                 posterior. Large predicted gaps are where humans agree, so the labels carry signal, not noise.
* ``bald``       BALD (Houlsby et al. 2011) from the Laplace posterior: the mutual information between the pair's label
                 and w, estimated with fixed Gaussian draws of the logit.

Greedy log-det uses rank-one (Sherman–Morrison) updates: O(n·d) a pick after one O(n·d²) start. Features wider
than ``MAX_DIMS`` are first projected on their top principal directions over the candidates, so a 4,096-wide
decoder costs what a 128-wide one does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_DIMS = 128
BALD_DRAWS = 64


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


@dataclass
class LastLayer:
    """The active version's view of the candidates and of the labelled pairs (rows of item-feature differences and
    reward differences, a − b and winner − loser)."""

    candidate_diffs: np.ndarray  # (n, d)
    candidate_logits: np.ndarray  # (n,)
    labelled_diffs: np.ndarray  # (m, d)
    labelled_logits: np.ndarray  # (m,)
    l2: float = 1.0

    @classmethod
    def of(cls, features: np.ndarray, scores: np.ndarray, candidates: np.ndarray, labelled: np.ndarray,
           l2: float = 1.0) -> LastLayer:
        """From item features and the active version's scores, candidate pairs (a, b) and labelled (winner, loser)."""
        features = np.asarray(features, dtype=np.float64)
        scores = np.asarray(scores, dtype=np.float64)
        candidates = np.asarray(candidates, dtype=np.int64).reshape(-1, 2)
        labelled = np.asarray(labelled, dtype=np.int64).reshape(-1, 2)
        return cls(features[candidates[:, 0]] - features[candidates[:, 1]],
                   scores[candidates[:, 0]] - scores[candidates[:, 1]],
                   features[labelled[:, 0]] - features[labelled[:, 1]],
                   scores[labelled[:, 0]] - scores[labelled[:, 1]], l2)

    def projected(self) -> LastLayer:
        """The same design in at most MAX_DIMS dimensions (principal directions of the candidate differences; the
        differences are centred at 0 by symmetry, so no mean is removed)."""
        d = self.candidate_diffs.shape[1]
        if d <= MAX_DIMS or len(self.candidate_diffs) == 0:
            return self
        _, _, vt = np.linalg.svd(self.candidate_diffs, full_matrices=False)
        basis = vt[:MAX_DIMS].T
        return LastLayer(self.candidate_diffs @ basis, self.candidate_logits, self.labelled_diffs @ basis,
                         self.labelled_logits, self.l2)

    def information(self) -> np.ndarray:
        """λI + Σ_labelled p(1−p)·d·dᵀ: the posterior precision of the head given the labelled pairs."""
        d = self.candidate_diffs.shape[1]
        p = sigmoid(self.labelled_logits)
        weighted = self.labelled_diffs * (p * (1 - p))[:, None]
        return self.l2 * np.eye(d) + weighted.T @ self.labelled_diffs

    def logit_sd(self) -> np.ndarray:
        """Posterior standard deviation of each candidate's r_a − r_b (Laplace)."""
        cov = np.linalg.inv(self.information())
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", self.candidate_diffs, cov, self.candidate_diffs), 0.0))


def greedy_logdet(design: LastLayer, batch_size: int, candidates: np.ndarray, groups: np.ndarray | None,
                  past: bool) -> np.ndarray:
    """Greedy D-optimal batch among `candidates` (indices into the design's rows), one per group when given."""
    design = design.projected()
    d = design.candidate_diffs.shape[1]
    precision = design.information() if past else design.l2 * np.eye(d)
    inverse = np.linalg.inv(precision)
    p = sigmoid(design.candidate_logits[candidates])
    v = design.candidate_diffs[candidates] * np.sqrt(p * (1 - p))[:, None]  # the pair's information is v·vᵀ
    gain = np.einsum("ij,jk,ik->i", v, inverse, v)  # log det grows by log(1 + gain)
    open_ = np.ones(len(candidates), dtype=bool)
    picked: list[int] = []
    used: set = set()
    while len(picked) < batch_size and open_.any():
        scores = np.where(open_, gain, -np.inf)
        best = int(np.argmax(scores))
        picked.append(int(candidates[best]))
        open_[best] = False
        if groups is not None:
            used.add(groups[candidates[best]])
            open_ &= ~np.isin(groups[candidates], list(used))
        u = inverse @ v[best]
        denominator = 1.0 + float(v[best] @ u)
        inverse -= np.outer(u, u) / denominator
        gain -= (v @ u) ** 2 / denominator
    return np.array(picked, dtype=np.int64)


def gap_ucb_scores(design: LastLayer, beta: float = 1.0) -> np.ndarray:
    """Optimistic reward gap of each candidate: |r_a − r_b| + β·sd(r_a − r_b)."""
    design = design.projected()
    return np.abs(design.candidate_logits) + beta * design.logit_sd()


def bald_scores(design: LastLayer, seed: int = 0) -> np.ndarray:
    """Mutual information between each candidate's label and the head, under the Laplace posterior."""
    design = design.projected()
    mean, sd = design.candidate_logits, design.logit_sd()
    z = np.random.default_rng([seed, 11]).standard_normal(BALD_DRAWS)
    probs = sigmoid(mean[:, None] + sd[:, None] * z[None, :])
    eps = 1e-12

    def entropy(q):
        q = np.clip(q, eps, 1 - eps)
        return -(q * np.log(q) + (1 - q) * np.log(1 - q))

    return np.maximum(entropy(probs.mean(axis=1)) - entropy(probs).mean(axis=1), 0.0)
