"""Dynamic overlap: how many raters a task still needs, from how sure its consensus is.

Pure policy, shared by the platform (``quality.signals`` applies it after every submission) and the benchmark. A task
is *settled* when, for every pair of its completions, the consensus says which is better with probability at least
the project's threshold. A settled task stops at ``min_overlap``; an unsettled one gets one more rater at a time, up
to ``max_overlap``. Opening one slot at a time keeps "never more rankings than the current target" exact: the next
slot opens only once the last ranking has been counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


def task_confidence(pair_probabilities: Iterable[float]) -> float:
    """The least sure pair decides: min over pairs of max(p, 1 − p); 1.0 for a task without pairs."""
    values = [max(p, 1 - p) for p in pair_probabilities]
    return min(values) if values else 1.0


@dataclass(frozen=True)
class OverlapDecision:
    target: int  # how many rankings the task may have now
    done: bool  # stop serving it


def decide(submitted: int, min_overlap: int, max_overlap: int, confidence: float, threshold: float) -> OverlapDecision:
    """The task's new target after its `submitted`-th ranking."""
    if submitted < min_overlap:
        return OverlapDecision(min_overlap, False)
    if confidence >= threshold or submitted >= max_overlap:
        return OverlapDecision(submitted, True)
    return OverlapDecision(submitted + 1, False)
