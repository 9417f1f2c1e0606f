"""Model leaderboard: Bradley–Terry scores for the models whose completions were ranked, with bootstrap intervals.

The method of the public chatbot arenas: every pairwise vote between completions of two different models is a game
between those models; a Bradley–Terry fit (here the consensus module's Davidson fit, so ties count as half a win
each way) gives each model a score, and refitting on rankings drawn with replacement gives 95 % intervals. Votes
are weighted by their rater's training weight (``quality.weights``): a rater excluded from training does not move
the leaderboard either. Scores are also shown on the familiar Elo scale (400 points = 10:1 odds, mean 1000).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from quality.consensus import Votes, fit_bradley_terry

ELO_PER_NAT = 400 / math.log(10)


class LeaderboardError(ValueError):
    """The project's data cannot give a leaderboard (e.g. no model names); the message says why."""


@dataclass
class LeaderboardRow:
    model: str
    score: float
    low: float
    high: float
    games: float  # evidence: Σ weights of the votes the model took part in
    wins: float
    ties: float

    @property
    def elo(self) -> float:
        return 1000 + ELO_PER_NAT * self.score

    def as_dict(self, rank: int) -> dict:
        return {"rank": rank, "model": self.model, "score": round(self.score, 4), "low": round(self.low, 4),
                "high": round(self.high, 4), "elo": round(self.elo, 1),
                "elo_low": round(1000 + ELO_PER_NAT * self.low, 1),
                "elo_high": round(1000 + ELO_PER_NAT * self.high, 1),
                "games": round(self.games, 2), "wins": round(self.wins, 2), "ties": round(self.ties, 2)}


def model_leaderboard(models: list[str], a: np.ndarray, b: np.ndarray, outcome: np.ndarray, weight: np.ndarray,
                      cluster: np.ndarray, bootstrap: int = 200, seed: int = 0) -> list[LeaderboardRow]:
    """Rows best first. `a`, `b` index `models`; `cluster` says which ranking each vote came from (the unit that
    the bootstrap resamples, since a ranking's votes are not independent)."""
    keep = (a != b) & (weight > 0)
    a, b, outcome, weight, cluster = a[keep], b[keep], outcome[keep], weight[keep], cluster[keep]
    if len(models) < 2 or not keep.any():
        raise LeaderboardError("a leaderboard needs votes between completions of at least two different named models")
    votes = Votes.from_arrays(np.zeros(len(a)), a, b, outcome, weight, items=models)
    scores = _centred(fit_bradley_terry(votes)[0])
    clusters, inverse = np.unique(cluster, return_inverse=True)
    members = np.split(np.argsort(inverse, kind="stable"), np.cumsum(np.bincount(inverse))[:-1])
    rng = np.random.default_rng(seed)
    draws = np.empty((bootstrap, len(models)))
    for i in range(bootstrap):
        chosen = np.concatenate([members[c] for c in rng.integers(len(clusters), size=len(clusters))])
        draws[i] = _centred(fit_bradley_terry(votes.subset(chosen))[0])
    low, high = np.percentile(draws, [2.5, 97.5], axis=0) if bootstrap else (scores, scores)
    games = np.bincount(a, weight, len(models)) + np.bincount(b, weight, len(models))
    wins = np.bincount(a, weight * (outcome == 0), len(models)) + np.bincount(b, weight * (outcome == 1), len(models))
    ties = np.bincount(a, weight * (outcome == 2), len(models)) + np.bincount(b, weight * (outcome == 2), len(models))
    rows = [LeaderboardRow(m, float(scores[i]), float(low[i]), float(high[i]), float(games[i]), float(wins[i]),
                           float(ties[i])) for i, m in enumerate(models) if games[i] > 0]
    return sorted(rows, key=lambda r: (-r.score, r.model))


def _centred(scores: np.ndarray) -> np.ndarray:
    return scores - scores.mean()
