"""What the trainer learns from: one ranking of K completions of a prompt, as plain data.

Kept apart from :mod:`rewardmodel.trainer` so that code which only builds or hashes training data (snapshots,
dataset releases, the web process) does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RankingExample:
    prompt: str
    completions: list[str]
    pairs: list[tuple[int, int]]  # (winner index, loser index) into completions
    group: str = ""  # prompt key, used to split held-out by prompt
    weight: float = 1.0  # the ranking's share in the loss: its rater's reliability (quality), 1 by default
