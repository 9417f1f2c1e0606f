"""Turn rankings (tie groups, best first) into pairwise comparisons.

A ranking of K outputs without ties yields K·(K−1)/2 pairs (InstructGPT). Tied outputs give no pair:
a tie says nothing about which is better, and a soft 0.5 label would only pull both rewards together.
"""

from __future__ import annotations

from collections.abc import Sequence


def ranking_to_pairs(order: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """[[12], [10, 13], [11]] → [(12, 10), (12, 13), (12, 11), (10, 11), (13, 11)]; ties give no pair."""
    pairs: list[tuple[int, int]] = []
    for i, better in enumerate(order):
        for worse_group in order[i + 1 :]:
            for winner in better:
                for loser in worse_group:
                    pairs.append((winner, loser))
    return pairs
