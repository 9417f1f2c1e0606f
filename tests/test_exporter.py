"""Exports: K-way rankings expanded to TRL pairs, tie handling, flagged rankings, full ranking rows."""

from __future__ import annotations

import io
import json

from annotation.assignment import next_assignment
from annotation.exporter import iter_rankings, iter_trl_pairs, write_jsonl
from annotation.pairs import ranked_pairs
from annotation.submission import RankingPayload, submit_ranking


def rank(project, rater, order_by_index, criteria_by_index=None, **extra):
    """Lease the rater's next task and submit `order_by_index` (tie groups of 0-based completion indexes)."""
    a = next_assignment(project, rater)
    ids = list(a.task.completions.order_by("id").values_list("id", flat=True))

    def to_ids(groups):
        return [[ids[i] for i in group] for group in groups]

    criteria = {name: to_ids(groups) for name, groups in (criteria_by_index or {}).items()}
    ranking, _ = submit_ranking(a, RankingPayload(order=to_ids(order_by_index), criteria_orders=criteria, **extra))
    return ranking, ids


def test_ranked_pairs_counts():
    assert len(list(ranked_pairs([[1], [2], [3], [4]]))) == 6
    assert list(ranked_pairs([[1, 2], [3]], "drop")) == [(1, 3, False), (2, 3, False)]
    assert list(ranked_pairs([[2, 1], [3]], "mark")) == [(1, 2, True), (2, 3, False), (1, 3, False)]


def test_k4_without_ties_gives_six_correct_pairs(project, rater, make_task):
    make_task(project, texts=["A", "B", "C", "D"], prompt_text="Pick one")
    # Best first: C ≻ A ≻ D ≻ B
    ranking, ids = rank(project, rater, [[2], [0], [3], [1]])
    pairs = list(iter_trl_pairs(project))
    assert len(pairs) == 6
    assert {(p["chosen"], p["rejected"]) for p in pairs} == {
        ("C", "A"),
        ("C", "D"),
        ("C", "B"),
        ("A", "D"),
        ("A", "B"),
        ("D", "B"),
    }
    first = pairs[0]
    assert first["prompt"] == "Pick one"
    assert first["ranking_id"] == ranking.pk and first["task_id"] == ranking.task_id
    assert first["rater_id"] == rater.pk and "rater" not in first
    assert first["chosen_model"] == "model-2" and first["rejected_model"] == "model-0"
    assert "tie" not in first


def test_ties_are_dropped_by_default_and_marked_on_request(project, rater, make_task):
    make_task(project, texts=["A", "B", "C", "D"])
    rank(project, rater, [[0, 1], [2], [3]])  # A = B ≻ C ≻ D
    dropped = list(iter_trl_pairs(project, ties="drop"))
    assert len(dropped) == 5
    assert ("A", "B") not in {(p["chosen"], p["rejected"]) for p in dropped}
    marked = list(iter_trl_pairs(project, ties="mark"))
    assert len(marked) == 6
    ties = [p for p in marked if p["tie"]]
    assert len(ties) == 1 and {ties[0]["chosen"], ties[0]["rejected"]} == {"A", "B"}
    assert all(p["tie"] is False for p in marked if p is not ties[0])


def test_flagged_rankings_are_excluded_unless_asked(project, rater, rater2, make_task):
    make_task(project, texts=["A", "B", "C", "D"])
    rank(project, rater, [[0], [1], [2], [3]], flags=["unsafe"])
    rank(project, rater2, [[3], [2], [1], [0]])
    kept = list(iter_trl_pairs(project))
    assert len(kept) == 6 and {p["rater_id"] for p in kept} == {rater2.pk}
    assert len(list(iter_trl_pairs(project, exclude_flagged=False))) == 12


def test_rankings_export_content(project, rater, make_task):
    task = make_task(project, texts=["A", "<b>B</b>", "C", "D"], prompt_text="Q?")
    ranking, ids = rank(
        project,
        rater,
        [[1], [0, 2], [3]],
        rationale="B is best",
        time_spent_ms=4200,
        criteria_by_index={"helpful": [[0], [1], [2], [3]]},
    )
    rows = list(iter_rankings(project))
    assert len(rows) == 1
    row = rows[0]
    assert row["task_id"] == task.pk and row["prompt"] == "Q?" and row["ranking_id"] == ranking.pk
    assert row["completions"] == [
        {"id": ids[0], "model": "model-0", "text": "A"},
        {"id": ids[1], "model": "model-1", "text": "<b>B</b>"},
        {"id": ids[2], "model": "model-2", "text": "C"},
        {"id": ids[3], "model": "model-3", "text": "D"},
    ]
    assert row["order"] == [[ids[1]], sorted([ids[0], ids[2]]), [ids[3]]]
    assert row["criteria_orders"] == {"helpful": [[i] for i in ids]}
    assert row["rationale"] == "B is best" and row["flags"] == [] and row["time_spent_ms"] == 4200
    assert sorted(row["display_order"]) == ids and row["rater_id"] == rater.pk
    assert row["submitted_at"] == ranking.submitted_at.isoformat()
    buf = io.StringIO()
    assert write_jsonl(iter_rankings(project), buf) == 1
    assert json.loads(buf.getvalue()) == row


def test_export_only_covers_the_given_project(project, rater, make_task):
    from annotation.models import Membership, Project

    other = Project.objects.create(name="Other", k=2, overlap=1)
    Membership.objects.create(project=other, user=rater)
    make_task(other, texts=["x", "y"])
    rank(other, rater, [[0], [1]])
    assert list(iter_trl_pairs(project)) == [] and list(iter_rankings(project)) == []
    assert len(list(iter_trl_pairs(other))) == 1
