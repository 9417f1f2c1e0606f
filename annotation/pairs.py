"""Rankings as pairwise comparisons: the one ranking→pairs function of the project.

A ranking's order is tie groups, best first. A ranking of K outputs without ties yields K·(K−1)/2 pairs
(InstructGPT). Strict pairs come from different groups; tied outputs give no strict pair (a tie says nothing about
which is better, and a soft 0.5 label would only pull both rewards together), but they can be asked for, marked.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal

TiePolicy = Literal["drop", "mark"]
TIE_POLICIES: tuple[str, ...] = ("drop", "mark")


def ranked_pairs(order: Sequence[Sequence[int]], ties: TiePolicy = "drop") -> Iterator[tuple[int, int, bool]]:
    """(better, worse, is_tie) for every pair implied by tie groups, best first.

    With ``ties="mark"`` each unordered tied pair is also yielded once, as ``(a, b, True)`` with a < b.
    """
    if ties not in TIE_POLICIES:
        raise ValueError(f"ties must be one of {TIE_POLICIES}, not {ties!r}")
    for i, group in enumerate(order):
        if ties == "mark":
            members = sorted(group)
            for x, a in enumerate(members):
                for b in members[x + 1 :]:
                    yield a, b, True
        for worse_group in order[i + 1 :]:
            for a in group:
                for b in worse_group:
                    yield a, b, False


def ranking_to_pairs(order: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """[[12], [10, 13], [11]] → [(12, 10), (12, 13), (12, 11), (10, 11), (13, 11)]; ties give no pair."""
    return [(int(w), int(lo)) for w, lo, _ in ranked_pairs(order)]
