"""The consensus model on plain data: recovery, spammers, and the degenerate cases that must never give NaN."""

from __future__ import annotations

import numpy as np
import pytest

from quality.consensus import TIE, A, B, Votes, collect_votes, fit_bradley_terry, fit_consensus, ranking_votes


def _finite(fit):
    for name in ("scores", "reliability", "reliability_low", "reliability_high", "log_nu", "noise"):
        assert np.all(np.isfinite(getattr(fit, name))), name


def test_ranking_votes_follow_what_the_rater_saw():
    # 12 ≻ 10 = 13; shown 13, 12, 10: (13, 12) second-shown wins, (13, 10) tie, (12, 10) first-shown wins.
    assert ranking_votes([[12], [10, 13]], shown=[13, 12, 10]) == [(13, 12, B), (13, 10, TIE), (12, 10, A)]
    assert ranking_votes([[2], [1]]) == [(1, 2, B)]  # unknown display order: lower id counts as shown first


def test_k_way_rankings_count_as_k_minus_1_comparisons():
    votes = collect_votes([("r", [[1], [2], [3], [4]], [1, 2, 3, 4], "p")])
    assert len(votes) == 6
    assert votes.weight.sum() == pytest.approx(3.0)


def _synthetic(seed=0, n_tasks=150, k=4, good=6, spammers=2, left=1, per_task=5):
    rng = np.random.default_rng(seed)
    truth = {}
    records = []
    for t in range(n_tasks):
        ids = list(range(t * k, t * k + k))
        quality = rng.normal(size=k) * 1.5
        truth.update(zip(ids, quality, strict=True))
        raters = rng.choice(good + spammers + left, size=per_task, replace=False)
        for r in raters:
            shown = list(rng.permutation(ids))
            if r < good:
                noisy = quality + rng.normal(scale=0.4, size=k)
                order = [[ids[i]] for i in np.argsort(-noisy)]
            elif r < good + spammers:
                order = [[c] for c in rng.permutation(ids)]  # random
            else:
                order = [[c] for c in shown]  # always the order shown
            records.append((int(r), order, shown, t))
    return records, truth, good


def test_recovers_the_order_and_finds_the_spammers():
    # Five raters per task. With three, a random rater's votes can be absorbed into the completions' scores about as
    # well as explained as noise (README, "Rater quality"): leave-one-out agreement is the figure that shows them.
    records, truth, good = _synthetic()
    fit = fit_consensus(collect_votes(records))
    _finite(fit)
    assert fit.converged
    rel = dict(zip(fit.votes.raters, fit.reliability, strict=True))
    assert max(rel[r] for r in rel if r >= good) < min(rel[r] for r in rel if r < good)
    assert min(rel[r] for r in rel if r < good) > 0.8
    high = dict(zip(fit.votes.raters, fit.reliability_high, strict=True))
    assert all(high[r] < 0.5 for r in rel if r >= good)  # spammers' whole interval below 0.5
    # Within tasks, consensus scores order the completions like the truth.
    items = {c: i for i, c in enumerate(fit.votes.items)}
    agree = total = 0
    for t in range(150):
        ids = range(t * 4, t * 4 + 4)
        for x in ids:
            for y in ids:
                if x < y:
                    total += 1
                    agree += (fit.scores[items[x]] > fit.scores[items[y]]) == (truth[x] > truth[y])
    assert agree / total > 0.85


def test_predictions_are_distributions():
    records, _, _ = _synthetic(seed=1, n_tasks=40)
    fit = fit_consensus(collect_votes(records))
    p = fit.predict(fit.votes.rater[:10], fit.votes.a[:10], fit.votes.b[:10])
    assert np.allclose(p.sum(axis=1), 1) and (p > 0).all()
    p0 = fit.predict(None, fit.votes.a[:10], fit.votes.b[:10])
    assert np.allclose(p0.sum(axis=1), 1)


@pytest.mark.parametrize("records", [
    [("r1", [[1], [2]], [1, 2], "p")],  # a single rating
    [("r1", [[1, 2, 3]], [1, 2, 3], "p"), ("r2", [[1, 2, 3]], [3, 2, 1], "p")],  # all ties
    [("r1", [[1], [2]], [], "p"), ("r2", [[3], [4]], [], "q"), ("r3", [[6], [5]], [], "s")],  # disconnected
    [("r1", [[1], [2]], [1, 2], "p"), ("r1", [[2], [1]], [1, 2], "p")],  # a rater contradicting themself
    [("r1", [[1]], [1], "p")],  # a one-completion ranking: no vote at all
    [],
], ids=["single", "all-ties", "disconnected", "contradiction", "no-pair", "empty"])
def test_degenerate_inputs_give_finite_answers(records):
    votes = collect_votes(records)
    fit = fit_consensus(votes)
    _finite(fit)
    if len(votes.items) >= 2:
        p = fit.order_probability(0, 1)
        assert 0 < p < 1 and np.isfinite(p)


def test_all_ties_leave_the_pair_undecided():
    fit = fit_consensus(collect_votes([(f"r{i}", [[1, 2]], [1, 2], "p") for i in range(5)]))
    assert fit.order_probability(0, 1) == pytest.approx(0.5, abs=1e-6)


def test_order_probability_grows_with_agreeing_votes():
    probs = []
    for n in (1, 2, 4, 8):
        fit = fit_consensus(collect_votes([(f"r{i}", [[1], [2]], [1, 2], "p") for i in range(n)]))
        probs.append(fit.order_probability(0, 1))
    assert probs == sorted(probs) and probs[0] > 0.5 and probs[-1] > 0.95


def test_fixed_raters_are_held():
    votes = collect_votes([("a", [[1], [2]], [1, 2], "p"), ("b", [[2], [1]], [1, 2], "p")])
    fit = fit_consensus(votes, fixed_raters={0: (0.95, None, [1 / 3] * 3), 1: (0.2, None, [1 / 3] * 3)})
    assert fit.reliability_low is not None
    assert fit.scores[0] > fit.scores[1]  # the reliable rater's call wins


def test_plain_bradley_terry_orders_by_wins_and_handles_ties():
    rng = np.random.default_rng(0)
    strength = np.array([1.0, 0.0, -1.0])
    a, b, y = [], [], []
    for _ in range(600):
        i, j = rng.choice(3, 2, replace=False)
        p = 1 / (1 + np.exp(-(strength[i] - strength[j])))
        a.append(i)
        b.append(j)
        y.append(TIE if rng.random() < 0.2 else (A if rng.random() < p else B))
    scores, log_nu = fit_bradley_terry(Votes.from_arrays(np.zeros(600), a, b, y, items=[0, 1, 2]))
    assert list(np.argsort(-scores)) == [0, 1, 2]
    assert np.isfinite(log_nu)


def test_batched_order_probabilities_match_the_laplace_blocks():
    from scipy import stats

    records, _, _ = _synthetic(seed=2, n_tasks=30)
    fit = fit_consensus(collect_votes(records))
    a, b = fit.votes.a[:50], fit.votes.b[:50]
    batched = fit.order_probabilities(a, b)
    expected = []
    for x, y in zip(a, b, strict=True):  # the pair's own block of the inverse Hessian, looked up by hand
        members, cov = fit.covariance[int(fit.votes.groups[x])]
        i, j = list(members).index(x), list(members).index(y)
        var = cov[i, i] + cov[j, j] - 2 * cov[i, j]
        expected.append(stats.norm.cdf((fit.scores[x] - fit.scores[y]) / np.sqrt(var)))
    assert np.allclose(batched, expected)
    assert fit.order_probability(int(a[0]), int(b[0])) == pytest.approx(batched[0])


def _with_tiers(seed=0, n_tasks=300, good=6, tiers=2, per_task=3):
    """Pairwise tasks; real raters tie close pairs (about a third of their votes); raters from `good` on tie
    everything."""
    rng = np.random.default_rng(seed)
    records = []
    for t in range(n_tasks):
        ids = [2 * t, 2 * t + 1]
        quality = rng.normal(size=2)
        for r in rng.choice(good + tiers, size=per_task, replace=False):
            shown = list(rng.permutation(ids))
            if r >= good:
                order = [ids]
            else:
                noisy = quality + rng.normal(scale=0.4, size=2)
                gap = noisy[0] - noisy[1]
                order = [ids] if abs(gap) < 0.7 else [[ids[0]], [ids[1]]] if gap > 0 else [[ids[1]], [ids[0]]]
            records.append((int(r), order, shown, t))
    return records, good


def test_raters_who_tie_everything_are_noise():
    from quality.consensus import ConsensusSettings

    records, good = _with_tiers()
    fit = fit_consensus(collect_votes(records))
    rel = dict(zip(fit.votes.raters, fit.reliability, strict=True))
    share = np.mean([len(order) == 1 for r, order, _, _ in records if r < good])
    assert 0.2 < share < 0.5  # the real raters do tie, often
    assert max(rel[r] for r in rel if r >= good) < 0.4 and min(rel[r] for r in rel if r < good) > 0.9
    # Without the ceiling on an attentive rater's tie propensity, ν absorbs their ties and they look attentive.
    unbounded = fit_consensus(collect_votes(records), ConsensusSettings(max_tie_share=1 - 1e-9))
    assert min(r for rater, r in zip(unbounded.votes.raters, unbounded.reliability, strict=True) if rater >= good) > 0.7


def test_a_judge_is_measured_against_the_people_and_cannot_capture_the_consensus():
    """A judge votes on every pair, transitively, by its own order (the truth, much perturbed: Kendall τ 0.65); each
    pair has one person's vote, right 80 % of the time. Fitted jointly, scores fitted to the judge explain all its
    votes: it comes out near-perfect and the people look noisy. Measured against the people's consensus, the judge
    is what it is, below the people."""
    from quality.consensus import fit_with_judges

    rng = np.random.default_rng(3)
    n = 16
    judge_score = np.arange(n)[::-1] + rng.normal(0, 4, n)
    records = []
    for a in range(n):
        for b in range(a + 1, n):
            records.append(("judge", [[a], [b]] if judge_score[a] > judge_score[b] else [[b], [a]], [a, b], 0))
            right = rng.random() < 0.8
            records.append((f"p{rng.integers(10)}", [[a], [b]] if right else [[b], [a]], [a, b], 0))
    votes = collect_votes(records)
    judge = votes.raters.index("judge")
    people = [i for i, key in enumerate(votes.raters) if key != "judge"]
    captured = fit_consensus(votes)
    assert captured.reliability[judge] > 0.95 > float(np.median(captured.reliability[people]))
    fit = fit_with_judges(votes, {"judge"})
    assert fit.reliability_high[judge] < 0.7 < float(np.median(fit.reliability[people]))
