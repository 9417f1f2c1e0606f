"""Projects with rankings for the curation tests: tasks with searchable texts, rated by two raters."""

from __future__ import annotations

from annotation.assignment import next_assignment
from annotation.submission import RankingPayload, submit_ranking


def rate_all(project, users, choose=lambda ids: [[c] for c in sorted(ids)]):
    """Every user ranks every task they are served (best first by default: lower completion ids are better)."""
    rankings = []
    for user in users:
        while (a := next_assignment(project, user)) is not None:
            ids = sorted(a.task.completions.values_list("id", flat=True))
            rankings.append(submit_ranking(a, RankingPayload(order=choose(ids), time_spent_ms=15_000))[0])
    return rankings
