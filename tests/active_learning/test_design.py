"""Last-layer strategies (active_learning.design through selection.select): what each one prefers, on designs small
enough to reason about by hand."""

from __future__ import annotations

import numpy as np
import pytest

from active_learning.design import LastLayer, bald_scores, gap_ucb_scores, greedy_logdet
from active_learning.selection import BALD, DOPT, GAP_UCB, PAST_DOPT, select


def design(diffs, logits, labelled_diffs=(), labelled_logits=()) -> LastLayer:
    d = len(diffs[0])
    return LastLayer(np.array(diffs, float), np.array(logits, float),
                     np.array(labelled_diffs, float).reshape(-1, d), np.array(labelled_logits, float))


def test_dopt_spreads_a_batch_over_directions():
    # Three copies of one direction and one of another as long: a batch of two takes one of each.
    ll = design([[1, 0], [1, 0], [1, 0], [0, 1]], [0, 0, 0, 0])
    assert sorted(select(DOPT, np.zeros(4), 2, design=ll)) == [0, 3]


def test_past_dopt_skips_what_is_already_known():
    ll = design([[1, 0], [0, 1]], [0, 0], labelled_diffs=[[1, 0]] * 50, labelled_logits=[0] * 50)
    assert select(PAST_DOPT, np.zeros(2), 1, design=ll).tolist() == [1]
    assert select(DOPT, np.zeros(2), 1, design=design([[1.2, 0], [0, 1]], [0, 0])).tolist() == [0]


def test_sure_pairs_carry_no_information():
    # A long difference the model is certain about (p ≈ 1) is worth less than a short uncertain one.
    ll = design([[10, 0], [0, 1]], [30, 0])
    assert select(DOPT, np.zeros(2), 1, design=ll).tolist() == [1]


def test_rank_one_updates_match_a_direct_log_det():
    rng = np.random.default_rng(0)
    ll = design(rng.normal(size=(40, 5)).tolist(), rng.normal(size=40).tolist(),
                rng.normal(size=(10, 5)).tolist(), rng.normal(size=10).tolist())
    picked = greedy_logdet(ll, 6, np.arange(40), None, past=True)
    p = 1 / (1 + np.exp(-ll.candidate_logits))
    v = ll.candidate_diffs * np.sqrt(p * (1 - p))[:, None]
    info = ll.information()
    for i in picked:  # each pick is the best one given the ones before it, by a direct computation
        gains = [np.linalg.slogdet(info + np.outer(v[j], v[j]))[1] for j in range(40)]
        chosen_before = set(picked[: list(picked).index(i)])
        best = max((g, j) for j, g in enumerate(gains) if j not in chosen_before)[1]
        assert best == i
        info = info + np.outer(v[i], v[i])


def test_one_pair_per_group():
    ll = design([[3, 0], [3, 0.1], [0, 1], [1, 1]], [0, 0, 0, 0])
    groups = np.array([7, 7, 8, 9])
    picked = select(DOPT, np.zeros(4), 3, design=ll, groups=groups)
    assert len(set(groups[picked])) == len(picked) == 3


def test_gap_ucb_prefers_large_gaps_and_bald_uncertain_ones():
    ll = design([[1, 0], [1, 0], [0, 1]], [4.0, 0.1, 0.2], labelled_diffs=[[1, 0]] * 20, labelled_logits=[0] * 20)
    assert gap_ucb_scores(ll).argmax() == 0
    assert select(GAP_UCB, np.zeros(3), 1, design=ll).tolist() == [0]
    # Same predicted logit near 0; the pair along the direction nothing was learnt about is the informative one.
    assert bald_scores(ll).argmax() == 2 and select(BALD, np.zeros(3), 1, design=ll).tolist() == [2]


def test_wide_features_are_projected():
    rng = np.random.default_rng(1)
    ll = design(rng.normal(size=(30, 1000)).tolist(), rng.normal(size=30).tolist())
    assert ll.projected().candidate_diffs.shape == (30, 30) or ll.projected().candidate_diffs.shape[1] <= 128
    assert len(select(DOPT, np.zeros(30), 5, design=ll)) == 5


def test_design_strategies_need_a_design():
    with pytest.raises(ValueError, match="last layer"):
        select(DOPT, np.zeros(3), 1)
