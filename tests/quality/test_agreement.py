"""Agreement statistics: textbook alpha values, pairwise agreement, per-rater stats, and real PandaLM labels."""

from __future__ import annotations

import json
from itertools import combinations

import pytest

from annotation.assignment import next_assignment, release
from annotation.models import Assignment, RankingTask
from annotation.submission import RankingPayload, submit_ranking
from quality.agreement import (
    alpha_from_units,
    gold_accuracy,
    krippendorff_alpha,
    pair_agreement,
    pairwise_agreement,
    plurality_agreement,
    project_agreement,
    rank_positions,
    ranking_alpha,
    ranking_units,
)

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 coders × 12 units, missing data.
N = None
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]


@pytest.mark.parametrize(
    "metric, expected",
    [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)],
)
def test_alpha_matches_krippendorff_2011(metric, expected):
    assert krippendorff_alpha(KRIPPENDORFF_2011, metric) == pytest.approx(expected, abs=5e-4)


@pytest.mark.parametrize("metric", ["nominal", "ordinal", "interval", "ratio"])
def test_alpha_is_one_for_perfect_agreement_with_missing_values(metric):
    data = [[1, 2, 3, 4, N], [1, 2, 3, 4, 2], [N, 2, 3, 4, 2]]
    assert krippendorff_alpha(data, metric) == pytest.approx(1.0)


def test_alpha_edge_cases():
    # Only unpairable units (one value each) or no variation at all: alpha is undefined, not a crash.
    assert alpha_from_units([[1], [2], []]) is None
    assert alpha_from_units([[3, 3], [3, 3, 3]]) is None
    # Systematic disagreement is worse than chance.
    assert alpha_from_units([[1, 2], [2, 1], [1, 2], [2, 1]], "nominal") < 0
    with pytest.raises(ValueError, match="metric"):
        alpha_from_units([[1, 2]], "cosine")


def test_rank_positions_average_tie_groups():
    assert rank_positions([[12], [10, 13], [11]]) == {12: 1.0, 10: 2.5, 13: 2.5, 11: 4.0}
    assert rank_positions([[1, 2, 3]]) == {1: 2.0, 2: 2.0, 3: 2.0}


def test_pair_agreement_counts_ties_as_their_own_verdict():
    # 6 pairs; the orders differ only on (2,3): a tie for one rater, 2 ≻ 3 for the other.
    assert pair_agreement([[1], [2, 3], [4]], [[1], [2], [3], [4]]) == (5, 6)
    assert pair_agreement([[1], [2]], [[2], [1]]) == (0, 1)
    assert gold_accuracy([[4], [3], [2], [1]], [[1], [2], [3], [4]]) == 0.0


def test_pairwise_agreement_overall_and_per_rater():
    orders = {
        "t1": {"a": [[1], [2], [3]], "b": [[1], [2], [3]], "c": [[3], [2], [1]]},
        "t2": {"a": [[4], [5]], "b": [[4], [5]]},
        "t3": {"a": [[6], [7]]},  # one rater only: not comparable, ignored
    }
    result = pairwise_agreement(orders)
    # t1: a–b agree 3/3, a–c 0/3, b–c 0/3; t2: a–b 1/1 → 4 of 10.
    assert (result.agreeing, result.compared, result.tasks) == (4, 10, 2)
    assert result.rate == pytest.approx(0.4)
    assert result.rater_rate("a") == pytest.approx(4 / 7)
    assert result.rater_rate("c") == 0.0
    assert result.rater_rate("nobody") is None


def test_ranking_alpha_units_are_task_completion_pairs():
    orders = {"t1": {"a": [[1], [2], [3]], "b": [[1], [2], [3]]}, "t2": {"a": [[4], [5]], "b": [[4], [5]]}}
    assert sorted(ranking_units(orders)) == [[1.0, 1.0], [1.0, 1.0], [2.0, 2.0], [2.0, 2.0], [3.0, 3.0]]
    assert ranking_alpha(orders, "ordinal") == pytest.approx(1.0)
    reversed_b = {"t1": {"a": [[1], [2], [3]], "b": [[3], [2], [1]]}}
    assert ranking_alpha(reversed_b, "interval") < 0


def _pandalm_orders(records) -> dict:
    """PandaLM labels as rankings of its two responses (ids 1, 2): 1 → 1 ≻ 2, 2 → 2 ≻ 1, 0 → tie."""
    as_order = {0: [[1, 2]], 1: [[1], [2]], 2: [[2], [1]]}
    return {r["idx"]: {a: as_order[r[a]] for a in ("annotator1", "annotator2", "annotator3")} for r in records}


def test_agreement_on_real_pandalm_labels(shared_data):
    records = json.loads((shared_data / "pandalm-testset-v1.json").read_text())[:300]
    orders = _pandalm_orders(records)
    result = pairwise_agreement(orders)
    # Independent count straight from the labels: with two responses, agreement = equal labels.
    labels = [[r["annotator1"], r["annotator2"], r["annotator3"]] for r in records]
    same = sum(x == y for row in labels for x, y in combinations(row, 2))
    assert result.compared == 3 * len(records)
    assert result.agreeing == same
    # Measured on these 300 pairs: agreement 0.904, ordinal alpha 0.878 (interval is the same with K=2).
    assert 0.85 < result.rate < 0.95
    alpha = ranking_alpha(orders, "ordinal")
    assert 0.80 < alpha < 0.95
    assert ranking_alpha(orders, "interval") == pytest.approx(alpha)
    for annotator in ("annotator1", "annotator2", "annotator3"):
        assert 0.85 < result.rater_rate(annotator) < 0.95


def _rank(assignment: Assignment, best_first: list[int], *, tie_top: bool = False, **extra):
    order = [[c] for c in best_first]
    if tie_top:
        order = [best_first[:2]] + order[2:]
    return submit_ranking(assignment, RankingPayload(order=order, **extra))[0]


def test_project_agreement_from_the_database(project, rater, rater2, make_task):
    tasks = [make_task(project) for _ in range(3)]
    gold_task = tasks[2]
    gold_ids = list(gold_task.completions.order_by("id").values_list("id", flat=True))
    RankingTask.objects.filter(pk=gold_task.pk).update(is_gold=True, gold_order=[[c] for c in gold_ids])
    for who, times in ((rater, (4000, 6000, 8000)), (rater2, (1000, 1000, 3000))):
        for i in range(3):
            a = next_assignment(project, who)
            ids = list(a.task.completions.order_by("id").values_list("id", flat=True))
            # rater agrees with the gold order everywhere; rater2 reverses it, and always puts first what it saw first.
            if who == rater2:
                ids = [a.display_order[0]] + [c for c in reversed(ids) if c != a.display_order[0]]
            _rank(a, ids, time_spent_ms=times[i], flags=["unsafe"] if (who == rater2 and i == 0) else [])
    stats = project_agreement(project)
    assert stats.rankings == 6 and stats.pairwise.tasks == 3 and not stats.truncated
    assert 0 <= stats.pairwise_rate < 1
    by_name = {s.username: s for s in stats.raters}
    r1, r2 = by_name["rater1"], by_name["rater2"]
    assert (r1.rankings, r2.rankings) == (3, 3)
    assert r1.median_time_s == 6.0 and r2.median_time_s == 1.0
    assert r1.gold_accuracy == 1.0 and r1.gold_tasks == 1
    assert r2.gold_accuracy <= 0.5
    assert r2.position_bias == 1.0 and r2.position_expected == pytest.approx(0.25)
    assert r1.flag_rate == 0.0 and r2.flag_rate == pytest.approx(1 / 3)
    assert r1.agreement == r2.agreement == stats.pairwise_rate
    assert stats.alpha_ordinal is not None and stats.alpha_interval is not None


def test_project_agreement_counts_flag_skips_and_caps_rankings(project, rater, rater2, make_task):
    for _ in range(3):
        make_task(project)
    a = next_assignment(project, rater)
    release(a, "flag:unsafe")
    a = next_assignment(project, rater)
    ids = list(a.task.completions.order_by("id").values_list("id", flat=True))
    _rank(a, ids, tie_top=True)
    b = next_assignment(project, rater2)
    _rank(b, list(b.task.completions.order_by("id").values_list("id", flat=True)))
    stats = project_agreement(project)
    r1 = next(s for s in stats.raters if s.username == "rater1")
    assert (r1.rankings, r1.skips, r1.flagged) == (1, 1, 1) and r1.flag_rate == 0.5
    # A top tie group of two out of four completions: position-blind expectation is 2/4.
    assert r1.position_expected == pytest.approx(0.5)
    capped = project_agreement(project, max_rankings=1)
    assert capped.rankings == 1 and capped.truncated


def test_empty_project_has_no_statistics(project):
    stats = project_agreement(project)
    assert stats.rankings == 0 and stats.pairwise_rate is None
    assert stats.alpha_ordinal is None and stats.raters == []


def test_plurality_agreement_counts_only_pairs_where_both_call_a_winner():
    people = [(1, [[10], [11]]), (1, [[10], [11]]), (1, [[10, 11]]),  # task 1: 10 wins 2–0 (one tie)
              (2, [[21], [20]]), (2, [[20, 21]]), (2, [[20, 21]]),  # task 2: the plurality is a tie
              (3, [[30], [31]]), (3, [[31], [30]]),  # task 3: split evenly
              (4, [[41], [40]])]  # task 4: 41 wins
    judge = [(1, [[10], [11]]), (2, [[20], [21]]), (3, [[30], [31]]), (4, [[40], [41]]), (5, [[50], [51]])]
    assert plurality_agreement(judge, people) == (1, 2)  # task 1 agrees, task 4 does not
    assert plurality_agreement([(1, [[10, 11]])], people) == (0, 0)  # a judge's tie is not compared
