"""Stability metrics and selection strategies on synthetic embeddings (pure numpy, no database)."""

from __future__ import annotations

import numpy as np
import pytest

from active_learning.selection import select
from active_learning.stability import (
    InstabilityWeights,
    binary_entropy,
    fit_bt_head,
    fit_ensemble,
    pair_features,
    pair_stability,
    pairwise_accuracy,
    percentile_rank,
    rater_votes,
)


def synthetic(n_items: int = 200, dim: int = 8, seed: int = 0):
    """Items with a hidden linear reward; comparisons labelled by it."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_items, dim))
    w_true = rng.normal(size=dim)
    return x, w_true, x @ w_true


def test_bt_head_recovers_the_ordering():
    x, _, r = synthetic()
    rng = np.random.default_rng(1)
    pairs = rng.integers(0, len(x), size=(400, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    cmp = np.where((r[pairs[:, 0]] > r[pairs[:, 1]])[:, None], pairs, pairs[:, ::-1])
    w = fit_bt_head(x[cmp[:, 0]] - x[cmp[:, 1]], l2=0.1)
    assert pairwise_accuracy(x @ w, cmp) > 0.95


def test_bald_is_non_negative_and_larger_far_from_the_data():
    rng = np.random.default_rng(0)
    dim = 5
    # Training data varies along the first two directions; the rest are barely explored (tiny spread).
    x_train = rng.normal(scale=0.05, size=(120, dim))
    x_train[:, :2] = rng.normal(size=(120, 2))
    r = x_train[:, 0] - x_train[:, 1]
    pairs = np.array([(i, i + 60) for i in range(60)])
    cmp = np.where((r[pairs[:, 0]] > r[pairs[:, 1]])[:, None], pairs, pairs[:, ::-1])
    heads = fit_ensemble(x_train, cmp, n_members=10, seed=3, l2=0.1)
    near = np.zeros((2, dim))
    near[0, :2] = [2.0, -2.0]
    near[1, :2] = [-2.0, 2.0]  # clearly ordered by what was learned
    far = np.zeros((2, dim))
    far[0, 2:] = [3.0, 3.0, 3.0]
    far[1, 2:] = [-3.0, -3.0, -3.0]  # differs only in never-labelled directions
    feats = np.vstack([near, far])
    stab = pair_stability(heads, feats, np.array([[0, 1], [2, 3]]))
    assert np.all(stab.bald >= 0)
    assert stab.variance[1] > stab.variance[0]
    assert stab.bald[1] > stab.bald[0]
    assert stab.margin[0] > stab.margin[1]
    assert stab.instability[1] > stab.instability[0]
    assert stab.p_mean[0] > 0.9


def test_boundary_pairs_are_less_stable_than_clear_ones():
    x, w_true, r = synthetic(dim=4)
    rng = np.random.default_rng(2)
    pairs = rng.integers(0, len(x), size=(300, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    cmp = np.where((r[pairs[:, 0]] > r[pairs[:, 1]])[:, None], pairs, pairs[:, ::-1])
    heads = fit_ensemble(x, cmp[:30], n_members=8, seed=0)
    gaps = np.abs(r[pairs[:, 0]] - r[pairs[:, 1]])
    stab = pair_stability(heads, x, pairs)
    close, clear = gaps < np.quantile(gaps, 0.2), gaps > np.quantile(gaps, 0.8)
    assert stab.instability[close].mean() > stab.instability[clear].mean()
    assert stab.margin[close].mean() < stab.margin[clear].mean()


def test_flips_between_versions_are_detected():
    feats = np.eye(3)
    heads = np.ones((2, 3))
    active = np.array([3.0, 1.0, 2.0])
    parent = np.array([1.0, 3.0, 0.0])  # parent orders (0, 1) the other way, (0, 2) the same way
    pairs = np.array([[0, 1], [0, 2]])
    stab = pair_stability(heads, feats, pairs, active_scores=active, parent_scores=parent)
    assert stab.flip.tolist() == [1.0, 0.0]
    assert stab.margin.tolist() == [2.0, 1.0]
    assert stab.instability[0] < stab.instability[1]  # by default flips are reported, and only the margin ranks
    weighted = pair_stability(heads, feats, pairs, active_scores=active, parent_scores=parent,
                              weights=InstabilityWeights(flip=1.25))
    assert weighted.instability[0] > weighted.instability[1]


def test_entropy_and_ranks_helpers():
    assert binary_entropy(np.array([0.5]))[0] == pytest.approx(np.log(2))
    assert binary_entropy(np.array([0.0, 1.0])).max() < 1e-9
    assert percentile_rank(np.array([3.0, 1.0, 2.0, 2.0])).tolist() == [1.0, 0.0, 0.5, 0.5]
    assert percentile_rank(np.array([7.0, 7.0])).tolist() == [0.0, 0.0]


def test_fit_ensemble_refuses_empty_labels():
    with pytest.raises(ValueError, match="no labelled"):
        fit_ensemble(np.zeros((3, 2)), np.zeros((0, 2)))


def test_uncertainty_takes_the_top_and_respects_the_cap():
    inst = np.array([0.1, 0.9, 0.5, 0.8, 0.7])
    assert select("uncertainty", inst, 2).tolist() == [1, 3]
    counts = np.array([0, 2, 0, 1, 0])
    assert select("uncertainty", inst, 2, ask_counts=counts, max_asks=2).tolist() == [3, 4]
    assert select("uncertainty", inst, 9, ask_counts=counts, max_asks=1).tolist() == [4, 2, 0]
    assert len(select("random", inst, 5, ask_counts=np.full(5, 3), max_asks=3)) == 0


def test_one_pick_per_group_and_an_eligibility_mask():
    inst = np.array([0.1, 0.9, 0.5, 0.8, 0.7, 0.6])
    groups = np.array([7, 7, 8, 8, 9, 9])  # e.g. the prompt of each pair
    assert select("uncertainty", inst, 5, groups=groups).tolist() == [1, 3, 4]  # the least stable of each group
    assert select("uncertainty", inst, 5, groups=groups, eligible=inst < 0.85).tolist() == [3, 4, 0]
    for seed in range(5):
        picked = select("random", inst, 5, groups=groups, seed=seed)
        assert sorted(groups[picked].tolist()) == [7, 8, 9]
    x = np.random.default_rng(0).normal(size=(6, 4))
    picked = select("uncertainty_diversity", inst, 2, features=x, groups=groups, prefilter=3)
    assert len(picked) == 2 and len(set(groups[picked].tolist())) == 2


def test_random_is_seeded_and_drawn_without_repeats():
    inst = np.zeros(50)
    a = select("random", inst, 10, seed=4)
    assert a.tolist() == select("random", inst, 10, seed=4).tolist()
    assert a.tolist() != select("random", inst, 10, seed=5).tolist()
    assert len(set(a.tolist())) == 10


def test_diversity_spreads_the_batch_across_clusters():
    rng = np.random.default_rng(0)
    centers = np.array([[10.0, 0], [-10.0, 0], [0, 10.0], [0, -10.0]])
    feats = np.vstack([c + rng.normal(scale=0.1, size=(25, 2)) for c in centers])
    cluster = np.repeat(np.arange(4), 25)
    inst = rng.uniform(0.0, 0.1, size=100)
    inst[cluster == 0] += 1.0  # cluster 0 is the least stable: pure uncertainty takes only from it
    top = select("uncertainty", inst, 4)
    assert set(cluster[top]) == {0}
    diverse = select("uncertainty_diversity", inst, 4, features=feats, prefilter=25, seed=1)
    assert set(cluster[diverse]) == {0, 1, 2, 3}
    assert cluster[diverse[0]] == 0  # most unstable first


def test_bad_strategy_and_batch_are_refused():
    with pytest.raises(ValueError, match="unknown strategy"):
        select("greedy", np.zeros(3), 1)
    with pytest.raises(ValueError, match="batch_size"):
        select("random", np.zeros(3), 0)


def test_pair_features_are_order_free():
    feats = np.random.default_rng(0).normal(size=(4, 3))
    assert np.allclose(pair_features(feats, np.array([[0, 1]])), pair_features(feats, np.array([[1, 0]])))


def test_diverse_selection_does_not_depend_on_the_last_float_bits():
    """Features from another machine differ by ~1e-7; the batch must not change (it once did, via k-means)."""
    rng = np.random.default_rng(3)
    feats = rng.normal(size=(200, 16))
    inst = rng.random(200)
    reference = select("uncertainty_diversity", inst, 20, features=feats, seed=4)
    for trial in range(5):
        noisy = feats + np.random.default_rng(trial).normal(scale=1e-8, size=feats.shape)
        assert select("uncertainty_diversity", inst, 20, features=noisy, seed=4).tolist() == reference.tolist()


def test_rater_votes_count_both_orders_and_mark_contested_pairs():
    comparisons = np.array([[0, 1], [1, 0], [2, 3], [2, 3], [2, 3], [4, 5], [5, 4], [5, 4], [6, 7]])
    votes = rater_votes(comparisons, np.array([[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]))
    assert votes.for_a.tolist() == [1, 3, 1, 1, 0] and votes.for_b.tolist() == [1, 0, 2, 0, 0]
    assert votes.minority_share.tolist() == pytest.approx([0.5, 0.0, 1 / 3, 0.0, 0.0])
    # 1–1 and 1–2 are contested at 0.3; unanimous, single-vote and unvoted pairs never are.
    assert votes.contested(0.3).tolist() == [True, False, True, False, False]
    assert votes.contested(0.4).tolist() == [True, False, False, False, False]
    assert not votes.contested(0.51).any()
