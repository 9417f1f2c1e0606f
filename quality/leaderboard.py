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
    between = a != b
    keep = between & (weight > 0)
    if between.any() and not keep.any():
        raise LeaderboardError("every vote between two models comes from raters whose training weight is 0 (paused "
                               "or unreliable): there is nothing to rank the models by until others rate")
    a, b, outcome, weight, cluster = a[keep], b[keep], outcome[keep], weight[keep], cluster[keep]
    if len(models) < 2 or not keep.any():
        raise LeaderboardError("a leaderboard needs votes between completions of at least two different named models")
    # Votes are compressed to one row per (a, b, outcome) with summed weights: the same likelihood, and each of the
    # bootstrap fits then costs the number of distinct games, not the number of votes.
    key = (a * len(models) + b) * 3 + outcome
    keys, key_of_vote = np.unique(key, return_inverse=True)
    ka, kb, ky = keys // 3 // len(models), keys // 3 % len(models), keys % 3

    def fit(vote_weights: np.ndarray) -> np.ndarray:
        totals = np.bincount(key_of_vote, vote_weights, len(keys))
        keep = totals > 0
        votes = Votes.from_arrays(np.zeros(keep.sum()), ka[keep], kb[keep], ky[keep], totals[keep], items=models)
        return _centred(fit_bradley_terry(votes)[0])

    scores = fit(weight)
    clusters, inverse = np.unique(cluster, return_inverse=True)
    rng = np.random.default_rng(seed)
    draws = np.empty((bootstrap, len(models)))
    for i in range(bootstrap):
        times_drawn = np.bincount(rng.integers(len(clusters), size=len(clusters)), minlength=len(clusters))
        draws[i] = fit(weight * times_drawn[inverse])
    low, high = np.percentile(draws, [2.5, 97.5], axis=0) if bootstrap else (scores, scores)
    games = np.bincount(a, weight, len(models)) + np.bincount(b, weight, len(models))
    wins = np.bincount(a, weight * (outcome == 0), len(models)) + np.bincount(b, weight * (outcome == 1), len(models))
    ties = np.bincount(a, weight * (outcome == 2), len(models)) + np.bincount(b, weight * (outcome == 2), len(models))
    rows = [LeaderboardRow(m, float(scores[i]), float(low[i]), float(high[i]), float(games[i]), float(wins[i]),
                           float(ties[i])) for i, m in enumerate(models) if games[i] > 0]
    return sorted(rows, key=lambda r: (-r.score, r.model))


def _centred(scores: np.ndarray) -> np.ndarray:
    return scores - scores.mean()


LATEST_RANKINGS = 20_000  # the refresh's leaderboard: enough for tight intervals, bounded on any project


def stored_leaderboard(project) -> tuple[list[dict], str]:
    """(rows, reason) as the last quality refresh computed them: what pages and the API show, read in one query."""
    from quality.models import QualityReport

    report = QualityReport.objects.filter(project=project).values_list("leaderboard", "leaderboard_reason").first()
    if report is None or (not report[0] and not report[1]):
        return [], ("no quality refresh has computed a leaderboard yet: run one (Refresh now, or POST "
                    "…/quality/refresh/)")
    return report[0], report[1]


def project_leaderboard(project, bootstrap: int = 200, seed: int = 0,
                        latest: int | None = LATEST_RANKINGS) -> list[LeaderboardRow]:
    """The leaderboard of a project's models from its latest ``latest`` rankings (None: all), each weighted by its
    training weight. The quality refresh computes it (``stored_leaderboard`` reads it back); by default from a bounded
    slice: a 3,000,000-ranking project would otherwise mean minutes and gigabytes."""
    from annotation.models import Completion, Ranking
    from quality.consensus import ranking_votes

    chosen = Ranking.objects.filter(task__project=project)
    if latest is not None:
        chosen = Ranking.objects.filter(pk__in=list(chosen.order_by("-id").values_list("id", flat=True)[:latest]))
    model_of = dict(Completion.objects.filter(tasks__in=chosen.values("task_id")).exclude(model_name="")
                    .values_list("id", "model_name"))
    if not model_of:
        raise LeaderboardError(f"project {project.pk} has no completions with a model name: import completions "
                               "with a \"model\" field to rank the models behind them")
    models = sorted(set(model_of.values()))
    index = {m: i for i, m in enumerate(models)}
    a, b, y, w, cluster = [], [], [], [], []
    rows = chosen.values_list("id", "order", "display_order", "weight").iterator(chunk_size=2000)
    for ranking_id, order, shown, weight in rows:
        k = sum(len(g) for g in order)
        for first, second, outcome in ranking_votes(order, shown):
            ma, mb = model_of.get(first), model_of.get(second)
            if ma is None or mb is None or ma == mb:
                continue
            a.append(index[ma])
            b.append(index[mb])
            y.append(outcome)
            w.append(weight * 2 / k)
            cluster.append(ranking_id)
    if not a:
        raise LeaderboardError(f"project {project.pk} has no ranking that compares two different named models yet")
    return model_leaderboard(models, np.array(a), np.array(b), np.array(y), np.array(w, dtype=float),
                             np.array(cluster), bootstrap=bootstrap, seed=seed)
