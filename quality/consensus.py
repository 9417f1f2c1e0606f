"""Consensus from many raters' rankings, estimated jointly with each rater's reliability: the one Bradley–Terry fit.

Every ranking becomes pairwise *votes* between the completions it ranked, oriented by what the rater saw: ``a`` was
shown before ``b``, and the outcome is ``A`` (a ranked above b), ``B`` or ``TIE``. A K-way ranking gives all
K·(K−1)/2 votes, each carrying evidence 2/K, so that a ranking counts as K−1 independent comparisons and a pairwise
vote as one (its pairs are not independent; without this a K = 9 ranking would outweigh 36 pairwise raters).

The model (a noisy Bradley–Terry in the family of Crowd-BT, Chen et al. 2013, with Davidson's 1970 ties):

- each completion has a score s, with a Gaussian prior N(0, prior_sd²), so single ratings, all-tie rankings and
  disconnected comparison graphs all give finite, shrunk scores and never NaN;
- an *attentive* vote follows Davidson's model with the rater's own tie propensity ν_r:
  P(A) ∝ e^{d/2}, P(B) ∝ e^{−d/2}, P(TIE) ∝ ν_r, with d = s_a − s_b;
- with probability 1 − η_r a vote is *noise*: drawn from the rater's own distribution q_r over (A, B, TIE),
  whatever the completions. A rater who answers at random, always picks the left one or always ties is noise;
  η_r, the rater's **reliability**, is the share of their votes explained by the completions.

It is fitted by EM (the E-step: the posterior probability γ that each vote is attentive; the M-step: η_r and q_r in
closed form under Beta/Dirichlet priors, scores and ν_r by L-BFGS on the γ-weighted Davidson likelihood). The
Davidson fit is also what the model leaderboard uses (`fit_bradley_terry`), with one tie propensity.

Written here rather than taken from a library, because none fits this job (README, "Rater quality"): crowd-kit's
NoisyBT has no ties (39 % of LLMFAO's votes) and no intervals; choix and evalica fit scores but no rater reliability.
The benchmark (``bench/quality_bench.py``) compares this fit with crowd-kit's NoisyBT and a plain Bradley–Terry.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from annotation.pairs import ranked_pairs

A, B, TIE = 0, 1, 2
OUTCOMES = ("a", "b", "tie")


@dataclass
class Votes:
    """Pairwise votes as parallel arrays: rater index, items a (shown first) and b, outcome, evidence weight."""

    rater: np.ndarray
    a: np.ndarray
    b: np.ndarray
    outcome: np.ndarray
    weight: np.ndarray
    items: list[Hashable] = field(default_factory=list)  # item index → key (e.g. completion id)
    raters: list[Hashable] = field(default_factory=list)  # rater index → key (e.g. user id)
    groups: np.ndarray | None = None  # item index → comparison group (e.g. prompt): the Laplace blocks

    def __len__(self) -> int:
        return len(self.outcome)

    @classmethod
    def from_arrays(cls, rater, a, b, outcome, weight=None, items=(), raters=(), groups=None) -> Votes:
        n = len(outcome)
        return cls(np.asarray(rater, dtype=np.int64), np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64),
                   np.asarray(outcome, dtype=np.int8),
                   np.ones(n) if weight is None else np.asarray(weight, dtype=float),
                   list(items), list(raters), None if groups is None else np.asarray(groups, dtype=np.int64))

    def subset(self, mask: np.ndarray) -> Votes:
        return Votes(self.rater[mask], self.a[mask], self.b[mask], self.outcome[mask], self.weight[mask],
                     self.items, self.raters, self.groups)


def ranking_votes(order: Sequence[Sequence[int]], shown: Sequence[int] = ()) -> list[tuple[int, int, int]]:
    """(a, b, outcome) for every pair of a ranking's completions; a is the one shown first (lower id if unknown).

    >>> ranking_votes([[12], [10, 13]], shown=[13, 12, 10])
    [(13, 12, 1), (13, 10, 2), (12, 10, 0)]
    """
    position = {cid: i for i, cid in enumerate(shown)}
    first_shown = {cid: (position.get(cid, len(position)), cid) for group in order for cid in group}
    out = []
    for better, worse, tie in ranked_pairs(order, "mark"):
        if first_shown[worse] < first_shown[better]:
            out.append((worse, better, TIE if tie else B))
        else:
            out.append((better, worse, TIE if tie else A))
    return sorted(out, key=lambda v: (first_shown[v[0]], first_shown[v[1]]))


class _Index(dict):
    """Key → dense index, assigned on first sight."""

    def __missing__(self, key):
        self[key] = len(self)
        return self[key]

    def keys_in_order(self) -> list:
        return list(self)


def collect_votes(rankings: Iterable[tuple[Hashable, Sequence[Sequence[int]], Sequence[int], Hashable]]) -> Votes:
    """Votes from (rater, order, display order, group) records; items are completion ids, groups e.g. prompt ids."""
    items, raters, groups = _Index(), _Index(), _Index()
    item_group: list[int] = []
    r, a, b, y, w = [], [], [], [], []
    for rater, order, shown, group in rankings:
        ri = raters[rater]
        gi = groups[group]
        k = sum(len(g) for g in order)
        if k < 2:
            continue
        evidence = 2.0 / k
        for first, second, outcome in ranking_votes(order, shown):
            for cid in (first, second):
                if cid not in items:
                    items[cid]  # noqa: B018  (assigns the next index)
                    item_group.append(gi)
            r.append(ri)
            a.append(items[first])
            b.append(items[second])
            y.append(outcome)
            w.append(evidence)
    return Votes.from_arrays(r, a, b, y, w, items.keys_in_order(), raters.keys_in_order(), item_group)


# --- the Davidson–Bradley–Terry likelihood ------------------------------------------------------------------


def davidson_log_probs(d: np.ndarray, log_nu: np.ndarray) -> np.ndarray:
    """log P(A), log P(B), log P(TIE) for score differences d and tie log-propensities, shape (n, 3)."""
    half = d / 2
    log_z = np.logaddexp(np.logaddexp(half, -half), log_nu)
    return np.stack([half - log_z, -half - log_z, log_nu - log_z], axis=1)


def _davidson_map(votes: Votes, vote_weight: np.ndarray, n_items: int, tie_group: np.ndarray, n_tie_groups: int,
                  prior_sd: float, tie_prior: tuple[float, float], init_scores: np.ndarray | None = None,
                  init_log_nu: np.ndarray | None = None, max_iter: int = 200,
                  max_log_nu: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Scores and tie log-propensities maximising Σ w·log P(y) − |s|²/2σ² − Σ(λ−μ)²/2τ² (L-BFGS), each λ at most
    `max_log_nu` when given."""
    from scipy import optimize  # loaded on use (~1.7 s): commands and web processes start without it
    a, b, y = votes.a, votes.b, votes.outcome
    mu, tau = tie_prior
    # +½ for A, −½ for B, 0 for TIE: the derivative of the outcome's own term with respect to d.
    own = np.where(y == A, 0.5, np.where(y == B, -0.5, 0.0))
    is_tie = (y == TIE).astype(float)

    def objective(theta):
        s, lam = theta[:n_items], theta[n_items:]
        d = s[a] - s[b]
        lp = davidson_log_probs(d, lam[tie_group])
        chosen = lp[np.arange(len(y)), y]
        pa, pb, pt = np.exp(lp[:, 0]), np.exp(lp[:, 1]), np.exp(lp[:, 2])
        value = -(vote_weight * chosen).sum() + (s @ s) / (2 * prior_sd**2) + ((lam - mu) ** 2).sum() / (2 * tau**2)
        g_d = -vote_weight * (own - (pa - pb) / 2)
        grad_s = np.bincount(a, g_d, n_items) - np.bincount(b, g_d, n_items) + s / prior_sd**2
        grad_lam = np.bincount(tie_group, -vote_weight * (is_tie - pt), n_tie_groups) + (lam - mu) / tau**2
        return value, np.concatenate([grad_s, grad_lam])

    theta0 = np.concatenate([np.zeros(n_items) if init_scores is None else init_scores,
                             np.full(n_tie_groups, mu) if init_log_nu is None else init_log_nu])
    bounds = None
    if max_log_nu is not None:
        theta0[n_items:] = np.minimum(theta0[n_items:], max_log_nu)
        bounds = optimize.Bounds(np.full(len(theta0), -np.inf),
                                 np.r_[np.full(n_items, np.inf), np.full(n_tie_groups, max_log_nu)])
    result = optimize.minimize(objective, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                               options={"maxiter": max_iter, "gtol": 1e-6})
    return result.x[:n_items], result.x[n_items:]


def tie_ceiling(settings: ConsensusSettings, mu: float) -> float:
    """The largest log ν an attentive rater may have: P(TIE | d = 0) = ν/(ν + 2) ≤ max_tie_share, and never below
    two prior spreads above the data's own tie propensity (a project where everyone ties a lot keeps its raters)."""
    share = min(max(settings.max_tie_share, 1e-6), 1 - 1e-6)
    return max(float(np.log(2 * share / (1 - share))), mu + 2 * settings.tie_sd)


def tie_prior_from(votes: Votes) -> float:
    """Davidson's ν at d = 0 is P(TIE)/P(A): the prior's centre is the data's tie share, so ties cost nothing."""
    share = float(np.average(votes.outcome == TIE, weights=votes.weight)) if len(votes) else 0.2
    share = min(max(share, 0.02), 0.95)
    return float(np.log(2 * share / (1 - share)))


def fit_bradley_terry(votes: Votes, n_items: int | None = None, weight: np.ndarray | None = None,
                      prior_sd: float = 2.0) -> tuple[np.ndarray, float]:
    """Plain (weighted) Davidson–Bradley–Terry: item scores and one tie log-propensity, for leaderboards."""
    n_items = len(votes.items) if n_items is None else n_items
    w = votes.weight if weight is None else votes.weight * weight
    scores, lam = _davidson_map(votes, w, n_items, np.zeros(len(votes), dtype=np.int64), 1, prior_sd,
                                (tie_prior_from(votes), 1.0))
    return scores, float(lam[0])


# --- the joint fit -------------------------------------------------------------------------------------------


@dataclass
class ConsensusSettings:
    prior_sd: float = 2.0  # completions' scores: a vote moves a score, a dozen agreeing votes make it sure
    reliability_prior: tuple[float, float] = (4.0, 1.0)  # Beta(a, b) on η: a newcomer is presumed mostly attentive
    noise_prior: float = 1.0  # Dirichlet pseudo-count per outcome of a rater's noise distribution
    tie_sd: float = 1.0  # spread of raters' tie propensities (log ν) around the data's tie share
    # The most an attentive rater ties two completions the consensus cannot tell apart (d = 0). Without a ceiling a
    # rater who ties everything is "attentive" with ν → ∞ (ties explained, completions ignored) and keeps a high
    # reliability; with it their ties are better explained as noise. LLMFAO's real workers tie at most 0.86 of their
    # votes (on 7–14 votes; ≤ 0.70 with more).
    max_tie_share: float = 0.9
    max_iter: int = 100
    tol: float = 1e-5  # on the relative change of the log-likelihood


@dataclass
class ConsensusFit:
    """The fitted model. Arrays are indexed like ``votes.items`` and ``votes.raters``."""

    votes: Votes
    settings: ConsensusSettings
    scores: np.ndarray
    log_nu: np.ndarray  # per rater
    reliability: np.ndarray  # posterior mean of η per rater
    reliability_low: np.ndarray
    reliability_high: np.ndarray
    noise: np.ndarray  # (raters, 3): each rater's noise distribution over (A, B, TIE)
    evidence: np.ndarray  # Σ vote evidence per rater
    attentive: np.ndarray  # γ per vote
    iterations: int
    converged: bool
    log_likelihood: float
    covariance: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # group → (items, cov)

    def predict(self, rater: np.ndarray | None, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """P(A), P(B), P(TIE) of a new vote on (a, b) by known raters (index) or, with rater None, a typical one."""
        d = self.scores[a] - self.scores[b]
        if rater is None:
            eta = float(np.average(self.reliability, weights=self.evidence)) if self.evidence.sum() else 0.8
            lam = np.full(len(d), float(np.average(self.log_nu, weights=self.evidence + 1e-9)))
            noise = np.tile(np.average(self.noise, axis=0, weights=self.evidence + 1e-9), (len(d), 1))
            eta = np.full(len(d), eta)
        else:
            eta, lam, noise = self.reliability[rater], self.log_nu[rater], self.noise[rater]
        return eta[:, None] * np.exp(davidson_log_probs(d, lam)) + (1 - eta[:, None]) * noise

    def order_probability(self, a: int, b: int) -> float:
        """Posterior probability that a's score is above b's (Laplace approximation within their group)."""
        return float(self.order_probabilities(np.array([a]), np.array([b]))[0])

    def order_probabilities(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """order_probability for many pairs at once (each pair within one group), one pass per group."""
        from scipy import stats  # loaded on use (~1.7 s): commands and web processes start without it

        a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
        if not self.covariance:
            self.covariance = laplace_covariance(self)
        groups = self.votes.groups if self.votes.groups is not None else np.zeros(len(self.scores), dtype=np.int64)
        position = np.zeros(len(self.scores), dtype=np.int64)
        for members, _ in self.covariance.values():
            position[members] = np.arange(len(members))
        var = np.empty(len(a))
        pair_group = groups[a]
        order = np.argsort(pair_group, kind="stable")
        bounds = np.flatnonzero(np.r_[True, np.diff(pair_group[order]) != 0, True])
        for start, end in zip(bounds[:-1], bounds[1:], strict=True):
            sel = order[start:end]
            cov = self.covariance[int(pair_group[sel[0]])][1]
            i, j = position[a[sel]], position[b[sel]]
            var[sel] = cov[i, i] + cov[j, j] - 2 * cov[i, j]
        return stats.norm.cdf((self.scores[a] - self.scores[b]) / np.sqrt(np.maximum(var, 1e-12)))


def fit_consensus(votes: Votes, settings: ConsensusSettings | None = None,
                  fixed_raters: dict[int, tuple[float, float, Sequence[float]]] | None = None) -> ConsensusFit:
    """Fit scores and rater reliabilities jointly by EM (on one BLAS thread: see ``_fit``)."""
    # Measured (bench/quality_bench.py, 100,000 rankings on 2 cores): L-BFGS-B's many small BLAS calls run 1.6×
    # slower on two threads than on one (87 s vs 53 s), and a worker gains nothing from sharing one fit's threads.
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(votes, settings, fixed_raters)


def _fit(votes: Votes, settings: ConsensusSettings | None = None,
         fixed_raters: dict[int, tuple[float, float, Sequence[float]]] | None = None) -> ConsensusFit:
    """Fit scores and rater reliabilities jointly by EM.

    ``fixed_raters`` maps rater index → (η, log ν, noise distribution) held fixed: a task's consensus between two
    project-wide fits uses the raters' last estimates instead of re-estimating them from a handful of votes.
    """
    from scipy import stats  # loaded on use (~1.7 s): commands and web processes start without it
    settings = settings or ConsensusSettings()
    n_items, n_raters = len(votes.items) or int(max(votes.a.max(initial=-1), votes.b.max(initial=-1)) + 1), \
        len(votes.raters) or int(votes.rater.max(initial=-1) + 1)
    ra, rb = settings.reliability_prior
    w, r, y = votes.weight, votes.rater, votes.outcome
    mu = tie_prior_from(votes)
    eta = initial_reliability(votes, n_raters)
    log_nu = np.full(n_raters, mu)
    noise = np.full((n_raters, 3), 1 / 3)
    fixed = np.zeros(n_raters, dtype=bool)
    for idx, (f_eta, f_lam, f_noise) in (fixed_raters or {}).items():
        eta[idx], noise[idx] = f_eta, f_noise
        log_nu[idx] = mu if f_lam is None else f_lam
        fixed[idx] = True
    scores = np.zeros(n_items)
    evidence = np.bincount(r, w, n_raters)
    if len(votes) == 0:  # nothing to fit: priors only
        prior_mean = np.full(n_raters, ra / (ra + rb))
        return ConsensusFit(votes, settings, scores, log_nu, prior_mean, stats.beta.ppf(0.025, ra, rb) + 0 * eta,
                            stats.beta.ppf(0.975, ra, rb) + 0 * eta, noise, evidence, np.ones(0), 0, True, 0.0)
    previous = -np.inf
    converged = False
    gamma = np.ones(len(votes))
    iterations = 0
    for _ in range(settings.max_iter):
        iterations += 1
        # E-step
        p_model = np.exp(davidson_log_probs(scores[votes.a] - scores[votes.b], log_nu[r])[np.arange(len(y)), y])
        attentive = eta[r] * p_model
        total = attentive + (1 - eta[r]) * noise[r, y]
        gamma = attentive / np.maximum(total, 1e-300)
        log_lik = float((w * np.log(np.maximum(total, 1e-300))).sum())
        if abs(log_lik - previous) <= settings.tol * max(1.0, abs(log_lik)):
            converged = True
            break
        previous = log_lik
        # M-step: reliabilities and noise in closed form, then scores and tie propensities.
        new_eta = (ra + np.bincount(r, w * gamma, n_raters)) / (ra + rb + evidence)
        counts = np.zeros((n_raters, 3))
        np.add.at(counts, (r, y), w * (1 - gamma))
        new_noise = (counts + settings.noise_prior) / (counts.sum(axis=1, keepdims=True) + 3 * settings.noise_prior)
        eta = np.where(fixed, eta, new_eta)
        noise = np.where(fixed[:, None], noise, new_noise)
        scores, new_lam = _davidson_map(votes, w * gamma, n_items, r, n_raters, settings.prior_sd,
                                        (mu, settings.tie_sd), scores, log_nu, max_iter=50,
                                        max_log_nu=tie_ceiling(settings, mu))
        log_nu = np.where(fixed, log_nu, new_lam)
    # A Beta posterior from the soft counts: 95 % interval of each rater's reliability.
    attentive_evidence = np.bincount(r, w * gamma, n_raters)
    alpha, beta = ra + attentive_evidence, rb + evidence - attentive_evidence
    low, high = stats.beta.ppf(0.025, alpha, beta), stats.beta.ppf(0.975, alpha, beta)
    return ConsensusFit(votes, settings, scores, log_nu, alpha / (alpha + beta), low, high, noise, evidence, gamma,
                        iterations, converged, previous)


def initial_reliability(votes: Votes, n_raters: int) -> np.ndarray:
    """EM's starting point, as Dawid–Skene starts from majority vote: 2a − 1 (clipped to [0.05, 0.95]), a being how
    often a rater's call (this one won, the other won, or a tie) is the most common call of the other raters on the
    same pair of completions.

    Started from one common value, EM can settle where the completions' scores absorb a random rater's votes (with
    three raters per task both readings explain the data about equally well); started from agreement, it keeps
    the reading where raters who agree with each other are the reliable ones. Votes whose pair has no other vote,
    or whose other raters are split evenly, do not count; raters with none left start at 0.8.
    """
    eta = np.full(n_raters, 0.8)
    if not len(votes):
        return eta
    low, high = np.minimum(votes.a, votes.b), np.maximum(votes.a, votes.b)
    # The call as seen from the pair (lower index, higher index): 0 the lower won, 1 the higher won, 2 a tie.
    call = np.where(votes.outcome == TIE, 2, np.where((votes.outcome == A) == (votes.a == low), 0, 1))
    _, pair = np.unique(low.astype(np.int64) * (int(high.max()) + 1) + high, return_inverse=True)
    counts = np.zeros((pair.max() + 1, 3))
    np.add.at(counts, (pair, call), votes.weight)
    others = counts[pair]
    others[np.arange(len(call)), call] -= votes.weight
    top = others.max(axis=1)
    unique_top = (others >= top[:, None] - 1e-9).sum(axis=1) == 1
    decided = (top > 1e-9) & unique_top
    agrees = others.argmax(axis=1) == call
    weight = votes.weight * decided
    seen = np.bincount(votes.rater, weight, n_raters)
    agreeing = np.bincount(votes.rater, weight * agrees, n_raters)
    has = seen > 0
    eta[has] = np.clip(2 * agreeing[has] / seen[has] - 1, 0.05, 0.95)
    return eta


def laplace_covariance(fit: ConsensusFit) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per comparison group, the inverse Hessian of the scores' negative log posterior (its items, matrix).

    Votes only ever compare completions of one prompt, so the Hessian is block-diagonal by group; blocks of the same
    size are inverted in one batched call (100,000 four-completion tasks take well under a second).
    """
    votes = fit.votes
    n_items = len(fit.scores)
    groups = votes.groups if votes.groups is not None else np.zeros(n_items, dtype=np.int64)
    lp = np.exp(davidson_log_probs(fit.scores[votes.a] - fit.scores[votes.b], fit.log_nu[votes.rater]))
    pa, pb = lp[:, 0], lp[:, 1]
    curvature = votes.weight * fit.attentive * (pa + pb - (pa - pb) ** 2) / 4
    unique, block_of_item = np.unique(groups, return_inverse=True)
    order = np.argsort(block_of_item, kind="stable")  # items of a block stay in increasing index order
    starts = np.flatnonzero(np.r_[True, np.diff(block_of_item[order]) != 0])
    members_of = np.split(order, starts[1:])
    sizes = np.array([len(m) for m in members_of])
    position = np.empty(n_items, dtype=np.int64)
    for members in members_of:
        position[members] = np.arange(len(members))
    vote_block = block_of_item[votes.a]
    result: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    precision = 1 / fit.settings.prior_sd**2
    for size in np.unique(sizes):
        blocks = np.flatnonzero(sizes == size)
        slot = np.full(len(members_of), -1)
        slot[blocks] = np.arange(len(blocks))
        h = np.zeros((len(blocks), size, size))
        h[:, np.arange(size), np.arange(size)] = precision
        mask = slot[vote_block] >= 0
        if mask.any():
            s = slot[vote_block[mask]]
            i, j, c = position[votes.a[mask]], position[votes.b[mask]], curvature[mask]
            np.add.at(h, (s, i, i), c)
            np.add.at(h, (s, j, j), c)
            np.add.at(h, (s, i, j), -c)
            np.add.at(h, (s, j, i), -c)
        cov = np.linalg.inv(h)
        for blk in blocks:
            result[int(unique[blk])] = (members_of[blk], cov[slot[blk]])
    return result



# --- AI judges: measured against the people, never shaping the scores they are measured on ------------------------


def fit_with_judges(votes: Votes, judges: set, settings: ConsensusSettings | None = None) -> ConsensusFit:
    """The consensus when some raters (keys in `judges`) are AI judges.

    A judge votes on every pair, transitively and without fatigue. In a joint fit its votes are so easily explained by
    scores fitted to them that it captures the consensus: on LLMFAO with one vote per pair held out, GPT-4 came out at
    reliability 0.995 (0.80 with every vote), and its weight then overrode the people. So the scores a judge is
    measured against are the people's: (1) the people's votes alone are fitted jointly, as without judges; (2) each
    judge's reliability, tie propensity and noise are fitted by EM against those fixed scores; (3) the consensus of
    everyone is fitted with every rater held at those estimates, so a judge's votes count at its measured weight.
    """
    settings = settings or ConsensusSettings()
    judge_index = [i for i, key in enumerate(votes.raters) if key in judges]
    if not judge_index:
        return fit_consensus(votes, settings)
    is_judge_vote = np.isin(votes.rater, judge_index)
    people = _reindexed(votes.subset(~is_judge_vote))
    base = fit_consensus(people, settings)
    score_of = dict(zip(people.items, base.scores, strict=True))
    scores = np.array([score_of.get(key, 0.0) for key in votes.items])
    people_row = {key: i for i, key in enumerate(people.raters)}
    mu = tie_prior_from(people)
    fixed, interval = {}, {}
    for i, key in enumerate(votes.raters):
        if i in judge_index:
            own = votes.subset(votes.rater == i)
            eta, log_nu, noise, low, high = _rater_against(own, scores, settings, mu)
        else:
            j = people_row[key]
            eta, log_nu, noise = base.reliability[j], base.log_nu[j], base.noise[j]
            low, high = base.reliability_low[j], base.reliability_high[j]
        fixed[i] = (float(eta), float(log_nu), list(noise))
        interval[i] = (float(eta), float(low), float(high))
    fit = fit_consensus(votes, settings, fixed_raters=fixed)
    for i, (eta, low, high) in interval.items():  # each rater's own estimate, not one more E-step on the mixture
        fit.reliability[i], fit.reliability_low[i], fit.reliability_high[i] = eta, low, high
    return fit


def _reindexed(votes: Votes) -> Votes:
    """The same votes with dense rater and item indices (a subset may leave gaps)."""
    raters, rater_index = np.unique(votes.rater, return_inverse=True)
    items, item_index = np.unique(np.r_[votes.a, votes.b], return_inverse=True)
    n = len(votes)
    groups = None if votes.groups is None else votes.groups[items]
    return Votes.from_arrays(rater_index, item_index[:n], item_index[n:], votes.outcome, votes.weight,
                             [votes.items[i] for i in items] if votes.items else items.tolist(),
                             [votes.raters[r] for r in raters] if votes.raters else raters.tolist(), groups)


def _rater_against(votes: Votes, scores: np.ndarray, settings: ConsensusSettings, mu: float, max_iter: int = 100):
    """One rater's (η, log ν, noise, 95 % interval of η) by EM with the completions' scores held fixed."""
    from scipy import optimize, stats  # loaded on use (~1.7 s): commands and web processes start without it
    ra, rb = settings.reliability_prior
    d, y, w = scores[votes.a] - scores[votes.b], votes.outcome, votes.weight
    rows = np.arange(len(y))
    eta, log_nu, noise = ra / (ra + rb), mu, np.full(3, 1 / 3)
    ceiling = tie_ceiling(settings, mu)
    gamma = np.ones(len(y))
    for _ in range(max_iter):
        p_model = np.exp(davidson_log_probs(d, np.full(len(y), log_nu))[rows, y])
        attentive = eta * p_model
        gamma = attentive / np.maximum(attentive + (1 - eta) * noise[y], 1e-300)
        new_eta = (ra + (w * gamma).sum()) / (ra + rb + w.sum())
        counts = np.bincount(y, w * (1 - gamma), 3)
        noise = (counts + settings.noise_prior) / (counts.sum() + 3 * settings.noise_prior)

        def objective(lam, weight=w * gamma):
            lp = davidson_log_probs(d, np.full(len(y), lam))[rows, y]
            return -(weight * lp).sum() + (lam - mu) ** 2 / (2 * settings.tie_sd**2)

        log_nu = float(optimize.minimize_scalar(objective, bounds=(mu - 10, ceiling), method="bounded").x)
        if abs(new_eta - eta) < 1e-6:
            eta = new_eta
            break
        eta = new_eta
    attentive_evidence = float((w * gamma).sum())
    alpha, beta = ra + attentive_evidence, rb + float(w.sum()) - attentive_evidence
    return (alpha / (alpha + beta), log_nu, noise, float(stats.beta.ppf(0.025, alpha, beta)),
            float(stats.beta.ppf(0.975, alpha, beta)))
