"""Agreement between raters: pairwise preference agreement, Krippendorff's alpha, per-rater reliability.

Pure functions work on plain data (tie-group orders, value lists); the ``project_*`` helpers read the
database in a few streamed queries and feed those functions.

A ranking's order is a list of tie groups of completion ids, best first: ``[[12], [10, 13], [11]]``.
For alpha, each (task, completion) is a unit, each rater a coder, and the value a rater gives a
completion is its rank position (1 = best; a tie group shares the average of the positions it spans).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

METRICS = ("nominal", "ordinal", "interval", "ratio")

Order = Sequence[Sequence[int]]


def wilson(correct: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion (ties count half, so `correct` may be fractional)."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # At p = 0 or 1 an end of the interval is p itself; rounding must not put p outside it.
    return float(max(0.0, min(p, centre - half))), float(min(1.0, max(p, centre + half)))


def plurality_agreement(own: Iterable[tuple[int, Order]], others: Iterable[tuple[int, Order]]) -> tuple[int, int]:
    """(agreeing, compared) pairs of `own` (task id, order) rankings against the plurality of the `others` on the
    same task and pair: the call (this one better, the other better, a tie) most of them made, strictly. Compared
    only where both call a winner — how an AI judge's agreement with a crowd is usually reported (LLMFAO: GPT-4
    0.746 against the crowd's majority), so the platform's figure is the literature's.
    """
    by_task: dict[int, list[dict[int, float]]] = defaultdict(list)
    for task_id, order in others:
        by_task[task_id].append(rank_positions(order))
    agree = compared = 0
    for task_id, order in own:
        mine = rank_positions(order)
        people = by_task.get(task_id, [])
        for a, b in combinations(sorted(mine), 2):
            if mine[a] == mine[b]:
                continue
            calls = [(p[a] < p[b]) - (p[a] > p[b]) for p in people if a in p and b in p]
            counts = sorted(((calls.count(c), c) for c in (1, -1, 0)), reverse=True)
            if counts[0][0] == 0 or counts[0][0] == counts[1][0] or counts[0][1] == 0:
                continue
            compared += 1
            agree += counts[0][1] == ((mine[a] < mine[b]) - (mine[a] > mine[b]))
    return agree, compared


# --- ranks and pairwise relations ---------------------------------------------------------------


def rank_positions(order: Order) -> dict[int, float]:
    """Completion id → rank position (1-based); a tie group gets the mean of the positions it covers.

    >>> rank_positions([[12], [10, 13], [11]])
    {12: 1.0, 10: 2.5, 13: 2.5, 11: 4.0}
    """
    positions: dict[int, float] = {}
    start = 1
    for group in order:
        mean = start + (len(group) - 1) / 2
        for cid in group:
            positions[cid] = float(mean)
        start += len(group)
    return positions


def preference(positions: Mapping[int, float], a: int, b: int) -> int:
    """+1 if a ≻ b, -1 if b ≻ a, 0 for a tie."""
    pa, pb = positions[a], positions[b]
    return (pa < pb) - (pa > pb)


def pair_agreement(order_a: Order, order_b: Order) -> tuple[int, int]:
    """(agreeing pairs, compared pairs) between two orders over the completions both contain."""
    pos_a, pos_b = rank_positions(order_a), rank_positions(order_b)
    shared = sorted(pos_a.keys() & pos_b.keys())
    agree = total = 0
    for x, y in combinations(shared, 2):
        total += 1
        agree += preference(pos_a, x, y) == preference(pos_b, x, y)
    return agree, total


@dataclass
class PairwiseAgreement:
    """How often two raters of the same task make the same call (a≻b, b≻a or tie) on a pair of completions."""

    agreeing: int = 0
    compared: int = 0
    tasks: int = 0
    per_rater: dict[object, tuple[int, int]] = field(default_factory=dict)  # rater → (agreeing, compared)

    @property
    def rate(self) -> float | None:
        return self.agreeing / self.compared if self.compared else None

    def rater_rate(self, rater) -> float | None:
        agree, total = self.per_rater.get(rater, (0, 0))
        return agree / total if total else None


def pairwise_agreement(orders_by_task: Mapping[object, Mapping[object, Order]]) -> PairwiseAgreement:
    """Agreement over every task ranked by ≥ 2 raters, every pair of raters, every pair of completions.

    `orders_by_task` maps task → {rater → order}. Per rater: agreement with the other raters of the
    tasks that rater ranked (each rater pair counts for both of its raters).
    """
    result = PairwiseAgreement()
    per_rater: dict[object, list[int]] = defaultdict(lambda: [0, 0])
    for orders in orders_by_task.values():
        if len(orders) < 2:
            continue
        result.tasks += 1
        for (ra, oa), (rb, ob) in combinations(orders.items(), 2):
            agree, total = pair_agreement(oa, ob)
            result.agreeing += agree
            result.compared += total
            for r in (ra, rb):
                per_rater[r][0] += agree
                per_rater[r][1] += total
    result.per_rater = {r: (a, t) for r, (a, t) in per_rater.items()}
    return result


# --- Krippendorff's alpha -----------------------------------------------------------------------


def _delta_squared(values: np.ndarray, marginals: np.ndarray, metric: str) -> np.ndarray:
    """The metric difference δ²(c, k) between every pair of the (sorted, distinct) values."""
    c, k = values[:, None], values[None, :]
    if metric == "nominal":
        return (c != k).astype(float)
    if metric == "interval":
        return (c - k) ** 2
    if metric == "ratio":
        total = c + k
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(total == 0, 0.0, ((c - k) / np.where(total == 0, 1, total)) ** 2)
        return d
    if metric == "ordinal":
        # δ²(c,k) = (Σ_{g=c..k} n_g − (n_c + n_k)/2)² over the ranked values between c and k.
        cum = np.concatenate([[0.0], np.cumsum(marginals)])
        idx = np.arange(len(values))
        lo, hi = np.minimum.outer(idx, idx), np.maximum.outer(idx, idx)
        between = cum[hi + 1] - cum[lo]
        return (between - (marginals[lo] + marginals[hi]) / 2) ** 2
    raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")


def coincidence_matrix(units: Iterable[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, coincidence matrix o) from the values each unit received.

    Units with fewer than two values are not pairable and are left out. Each unit with m values adds
    its m·(m−1) ordered pairs of values from different coders, each weighted 1/(m−1).
    """
    pairable = [np.asarray(u, dtype=float) for u in units]
    pairable = [u[~np.isnan(u)] for u in pairable]
    pairable = [u for u in pairable if len(u) >= 2]
    if not pairable:
        return np.array([]), np.zeros((0, 0))
    values = np.unique(np.concatenate(pairable))
    counts = np.zeros((len(pairable), len(values)))
    for row, u in enumerate(pairable):
        np.add.at(counts[row], np.searchsorted(values, u), 1)
    weights = 1.0 / (counts.sum(axis=1) - 1)
    o = (counts * weights[:, None]).T @ counts - np.diag((counts * weights[:, None]).sum(axis=0))
    return values, o


def alpha_from_units(units: Iterable[Sequence[float]], metric: str = "ordinal") -> float | None:
    """Krippendorff's alpha for `units`, each the values its coders gave (missing values: NaN or absent).

    Returns None when alpha is undefined: no pairable values, or no variation at all in the data.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")
    values, o = coincidence_matrix(units)
    if o.size == 0:
        return None
    marginals = o.sum(axis=1)
    n = marginals.sum()
    delta2 = _delta_squared(values, marginals, metric)
    observed = (o * delta2).sum()
    expected = (np.outer(marginals, marginals) * delta2).sum()
    if expected == 0:
        return None
    return float(1 - (n - 1) * observed / expected)


def krippendorff_alpha(reliability_data, metric: str = "ordinal") -> float | None:
    """Alpha from a coders × units matrix (NaN or None = missing), the layout of Krippendorff (2011)."""
    data = np.array(
        [[np.nan if v is None else v for v in row] for row in reliability_data],
        dtype=float,
    )
    return alpha_from_units(data.T, metric)


def ranking_units(orders_by_task: Mapping[object, Mapping[object, Order]]) -> list[list[float]]:
    """Alpha units for rankings: one per (task, completion), holding each rater's rank position for it."""
    units: list[list[float]] = []
    for orders in orders_by_task.values():
        by_completion: dict[int, list[float]] = defaultdict(list)
        for order in orders.values():
            for cid, pos in rank_positions(order).items():
                by_completion[cid].append(pos)
        units.extend(by_completion.values())
    return units


def ranking_alpha(orders_by_task: Mapping[object, Mapping[object, Order]], metric: str = "ordinal") -> float | None:
    return alpha_from_units(ranking_units(orders_by_task), metric)


# --- per-rater reliability ----------------------------------------------------------------------


def gold_accuracy(order: Order, gold: Order) -> float | None:
    """Share of completion pairs on which a rater's order makes the same call as the gold order."""
    agree, total = pair_agreement(order, gold)
    return agree / total if total else None


def shown_first_is_top(order: Order, display_order: Sequence[int]) -> bool | None:
    """Whether the completion shown first on screen ended up in the top tie group (None if unknown)."""
    if not display_order or not order:
        return None
    return display_order[0] in set(order[0])


@dataclass
class RaterStats:
    rater: object
    username: str = ""
    rankings: int = 0
    skips: int = 0
    flagged: int = 0
    times_ms: list[int] = field(default_factory=list, repr=False)
    gold_scores: list[float] = field(default_factory=list, repr=False)
    first_shown_top: int = 0
    first_shown_known: int = 0
    top_share_expected: float = 0.0  # Σ |top group| / K: what position-blind ranking would give
    agreement: float | None = None

    @property
    def median_time_s(self) -> float | None:
        return statistics.median(self.times_ms) / 1000 if self.times_ms else None

    @property
    def gold_accuracy(self) -> float | None:
        return sum(self.gold_scores) / len(self.gold_scores) if self.gold_scores else None

    @property
    def gold_tasks(self) -> int:
        return len(self.gold_scores)

    @property
    def position_bias(self) -> float | None:
        """How often the completion shown first was ranked top (0–1)."""
        return self.first_shown_top / self.first_shown_known if self.first_shown_known else None

    @property
    def position_expected(self) -> float | None:
        """What position_bias would be if screen position did not matter (1/K without ties)."""
        return self.top_share_expected / self.first_shown_known if self.first_shown_known else None

    @property
    def flag_rate(self) -> float | None:
        """Flagged rankings plus flag-skips, over everything the rater handed in (rankings + skips)."""
        handled = self.rankings + self.skips
        return self.flagged / handled if handled else None


def add_ranking(stats: RaterStats, order: Order, display_order: Sequence[int], time_ms: int, flags, gold) -> None:
    """Fold one ranking into its rater's stats (`gold` is the task's gold order, or None)."""
    stats.rankings += 1
    stats.times_ms.append(int(time_ms))
    if flags:
        stats.flagged += 1
    if gold:
        score = gold_accuracy(order, gold)
        if score is not None:
            stats.gold_scores.append(score)
    top = shown_first_is_top(order, display_order)
    if top is not None:
        stats.first_shown_known += 1
        stats.first_shown_top += top
        stats.top_share_expected += len(order[0]) / sum(len(g) for g in order)


# --- database helpers ---------------------------------------------------------------------------


@dataclass
class ProjectAgreement:
    project_id: int
    rankings: int
    pairwise: PairwiseAgreement
    alpha_ordinal: float | None
    alpha_interval: float | None
    raters: list[RaterStats]
    truncated: bool = False  # True when only the latest `max_rankings` rankings were read

    @property
    def pairwise_rate(self) -> float | None:
        return self.pairwise.rate


def project_agreement(project, max_rankings: int | None = None) -> ProjectAgreement:
    """Agreement and per-rater statistics for a project, from its rankings (latest first when capped).

    Reads rankings in one streamed query (plus one for gold orders, one for skips, one for usernames),
    so memory is bounded by the rankings read, never by the size of the task table.
    """
    from django.contrib.auth import get_user_model

    from annotation.models import Assignment, Ranking, RankingTask

    rows = (
        Ranking.objects.filter(task__project=project).from_raters()
        .order_by("-id")
        .values_list("task_id", "rater_id", "order", "display_order", "time_spent_ms", "flags")
    )
    if max_rankings is not None:
        rows = rows[: max_rankings + 1]
    gold = dict(
        RankingTask.objects.filter(project=project, is_gold=True, gold_order__isnull=False).values_list(
            "id", "gold_order"
        )
    )
    orders_by_task: dict[int, dict[int, Order]] = defaultdict(dict)
    stats: dict[int, RaterStats] = {}
    count = 0
    truncated = False
    for task_id, rater_id, order, display, time_ms, flags in rows.iterator(chunk_size=2000):
        if max_rankings is not None and count >= max_rankings:
            truncated = True
            break
        count += 1
        orders_by_task[task_id][rater_id] = order
        s = stats.setdefault(rater_id, RaterStats(rater=rater_id))
        add_ranking(s, order, display, time_ms, flags, gold.get(task_id))
    skips = (
        Assignment.objects.filter(task__project=project, status=Assignment.SKIPPED)
        .values_list("rater_id", "skip_reason")
        .iterator(chunk_size=2000)
    )
    for rater_id, reason in skips:
        s = stats.setdefault(rater_id, RaterStats(rater=rater_id))
        s.skips += 1
        s.flagged += reason.startswith("flag")
    pairwise = pairwise_agreement(orders_by_task)
    names = dict(get_user_model().objects.filter(pk__in=stats.keys()).values_list("pk", "username"))
    for rater_id, s in stats.items():
        s.username = names.get(rater_id, str(rater_id))
        s.agreement = pairwise.rater_rate(rater_id)
    units = ranking_units(orders_by_task)
    return ProjectAgreement(
        project_id=project.pk,
        rankings=count,
        pairwise=pairwise,
        alpha_ordinal=alpha_from_units(units, "ordinal"),
        alpha_interval=alpha_from_units(units, "interval"),
        raters=sorted(stats.values(), key=lambda s: (-s.rankings, s.username)),
        truncated=truncated,
    )
