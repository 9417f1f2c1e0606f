"""Rating helpers for the quality tests: lease the next task as a rater and submit an order chosen by a rule."""

from __future__ import annotations

import random

from annotation.assignment import next_assignment
from annotation.submission import RankingPayload, submit_ranking


def best_first(ids: list[int], shown: list[int]) -> list[list[int]]:
    """The careful rater: completions were created best first, so lower ids are better."""
    return [[c] for c in sorted(ids)]


def worst_first(ids: list[int], shown: list[int]) -> list[list[int]]:
    return [[c] for c in sorted(ids, reverse=True)]


def as_shown(ids: list[int], shown: list[int]) -> list[list[int]]:
    """The spammer who ranks in the order the page showed."""
    return [[c] for c in shown]


def at_random(seed: int):
    rng = random.Random(seed)

    def choose(ids, shown):
        order = list(ids)
        rng.shuffle(order)
        return [[c] for c in order]

    return choose


def rate_once(project, user, choose, time_ms: int = 20_000):
    """Lease and submit one task; returns the assignment, or None when nothing is left for this rater."""
    a = next_assignment(project, user)
    if a is None:
        return None
    ids = sorted(a.task.completions.values_list("id", flat=True))
    submit_ranking(a, RankingPayload(order=choose(ids, list(a.display_order)), time_spent_ms=time_ms))
    return a
