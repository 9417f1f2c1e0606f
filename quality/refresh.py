"""The quality refresh of a project: fit the consensus model on all its rankings and write what follows from it.

One pass reads the rankings (streamed); ``quality.consensus.fit_consensus`` estimates completion scores and rater
reliabilities jointly; then, per rater, the figures of the quality page (reliability with its interval, gold
accuracy, leave-one-out agreement, position bias with a binomial test, speed) and flags; the rankings' training
weights; automatic pauses; and every task's consensus. Progress goes to the project's ``QualityReport`` (admin, API)
and to an optional callback (the command's progress bar).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.utils import timezone

from annotation.models import Project, Ranking, RankingTask
from quality import pausing
from quality.agreement import RaterStats, add_ranking, plurality_agreement, rank_positions
from quality.consensus import ConsensusFit, collect_votes, fit_consensus, fit_with_judges
from quality.leaderboard import LeaderboardError, project_leaderboard
from quality.models import QualityReport, RaterQuality, TaskConsensus
from quality.overlap import task_confidence

Progress = Callable[[float, str], None]

POSITION_ALPHA = 1e-3  # a binomial p-value below this flags position bias (many raters are tested)
SPEED_Z = 3.0  # robust z-score of log median time beyond which a rater is a speed outlier
MIN_RANKINGS_FOR_SPEED = 5
GOLD_MIN_TASKS, GOLD_MIN_ACCURACY = 5, 0.5
CONFIDENCE_BINS = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0]
CHUNK = 2000


@dataclass
class RankingRow:
    id: int
    task_id: int
    rater_id: int
    order: list
    display: list
    time_ms: int
    flags: list
    prompt_id: int
    judge: bool = False  # an AI judge's ranking (feedback app): fitted like a rater's, never counted as a person's


def read_rankings(project: Project) -> list[RankingRow]:
    """The rankings the consensus is fitted on: raters' and AI judges' (imported ones carry no rater to judge)."""
    # A ranking a reviewer rejected (quality.models.RankingReview) is no evidence about the task.
    rows = (Ranking.objects.filter(task__project=project, source__in=[Ranking.RATER, Ranking.JUDGE])
            .exclude(review__decision="rejected").order_by("id")
            .values_list("id", "task_id", "rater_id", "order", "display_order", "time_spent_ms", "flags",
                         "task__prompt_id", "source"))
    return [RankingRow(*r[:-1], judge=r[-1] == Ranking.JUDGE) for r in rows.iterator(chunk_size=CHUNK)]


def fit_project(rankings: list[RankingRow]) -> ConsensusFit:
    """The joint fit; items are completion ids, raters user ids, Laplace blocks the prompts. AI judges are measured
    against the people's consensus (``fit_with_judges``), never fitted into the scores they are measured on."""
    votes = collect_votes((r.rater_id, r.order, r.display, r.prompt_id) for r in rankings)
    judges = {r.rater_id for r in rankings if r.judge}
    return fit_with_judges(votes, judges) if judges else fit_consensus(votes)


def task_consensus_rows(fit: ConsensusFit, rankings: list[RankingRow]) -> list[TaskConsensus]:
    """Consensus of every task: its completions by score, each pair's order probability, the least sure one."""
    item_index = {key: i for i, key in enumerate(fit.votes.items)}
    by_task: dict[int, set[int]] = defaultdict(set)
    counts: dict[int, int] = defaultdict(int)
    for r in rankings:
        by_task[r.task_id].update(c for group in r.order for c in group)
        counts[r.task_id] += 1
    ordered = {task_id: sorted((c for c in completions if c in item_index), key=lambda c: -fit.scores[item_index[c]])
               for task_id, completions in by_task.items()}
    flat = [(better, worse) for ids in ordered.values() for x, better in enumerate(ids) for worse in ids[x + 1:]]
    probabilities = iter(fit.order_probabilities(np.array([item_index[b] for b, _ in flat], dtype=np.int64),
                                                 np.array([item_index[w] for _, w in flat], dtype=np.int64))
                         if flat else [])
    out = []
    for task_id, ids in ordered.items():
        pairs = [[better, worse, round(float(next(probabilities)), 4)]
                 for x, better in enumerate(ids) for worse in ids[x + 1:]]
        confidence = task_confidence(p for _, _, p in pairs)
        out.append(TaskConsensus(task_id=task_id, order=ids, pairs=pairs, confidence=confidence,
                                 scores={str(c): round(float(fit.scores[item_index[c]]), 4) for c in ids},
                                 rankings=counts[task_id]))
    return out


def leave_one_out_agreement(rankings: list[RankingRow], weight_of: dict[int, float]) -> dict[int, tuple[int, int]]:
    """Per rater, (agreeing, compared) pairs against the reliability-weighted majority of the task's other raters.

    For each pair of completions, the others' call is the sign of Σ weight · preference (+1, −1, 0 for a tie); the
    rater agrees when their own call is the same. Pairs where the others are evenly split are not compared.
    """
    by_task: dict[int, list[RankingRow]] = defaultdict(list)
    for r in rankings:
        by_task[r.task_id].append(r)
    result: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for rows in by_task.values():
        if len(rows) < 2:
            continue
        positions = [rank_positions(r.order) for r in rows]
        weights = [weight_of.get(r.rater_id, 0.8) for r in rows]
        shared = sorted(set.intersection(*(set(p) for p in positions)))
        for x, a in enumerate(shared):
            for b in shared[x + 1:]:
                calls = [(p[a] < p[b]) - (p[a] > p[b]) for p in positions]
                total = sum(w * c for w, c in zip(weights, calls, strict=True))
                for i, r in enumerate(rows):
                    others = total - weights[i] * calls[i]
                    if abs(others) < 1e-9 and not any(calls[j] == 0 for j in range(len(rows)) if j != i):
                        continue
                    others_call = 0 if abs(others) < 1e-9 else (1 if others > 0 else -1)
                    result[r.rater_id][0] += calls[i] == others_call
                    result[r.rater_id][1] += 1
    return {k: (v[0], v[1]) for k, v in result.items()}


def speed_scores(median_times: dict[int, float]) -> dict[int, float]:
    """Robust z-score (median/MAD) of each rater's log median time; needs three raters or more."""
    if len(median_times) < 3:
        return {}
    logs = {r: math.log(max(t, 0.05)) for r, t in median_times.items()}
    values = np.array(list(logs.values()))
    centre = float(np.median(values))
    mad = float(np.median(np.abs(values - centre))) * 1.4826
    if mad < 1e-9:  # most raters take the same time: fall back on the mean absolute deviation (×1.2533 ≈ σ)
        mad = float(np.mean(np.abs(values - centre))) * 1.2533
    if mad < 1e-9:
        return {r: 0.0 for r in logs}
    return {r: (v - centre) / mad for r, v in logs.items()}


def rater_flags(q: RaterQuality, project: Project) -> list[str]:
    flags = []
    if (q.evidence >= project.min_rater_evidence and q.reliability_high is not None
            and q.reliability_high < project.reliability_threshold):
        flags.append(RaterQuality.UNRELIABLE)
    if q.position_p is not None and q.position_p < POSITION_ALPHA and q.position_bias > q.position_expected:
        flags.append(RaterQuality.POSITION_BIAS)
    if q.speed_z is not None and q.speed_z < -SPEED_Z:
        flags.append(RaterQuality.TOO_FAST)
    if q.speed_z is not None and q.speed_z > SPEED_Z:
        flags.append(RaterQuality.TOO_SLOW)
    if q.gold_tasks >= GOLD_MIN_TASKS and q.gold_accuracy is not None and q.gold_accuracy < GOLD_MIN_ACCURACY:
        flags.append(RaterQuality.GOLD)
    return flags


def confidence_histogram(confidences: list[float]) -> dict:
    counts, _ = np.histogram(confidences, bins=CONFIDENCE_BINS)
    return {"bins": CONFIDENCE_BINS, "counts": [int(c) for c in counts]}


def refresh_project(project: Project, progress: Progress | None = None) -> QualityReport:
    """Recompute everything the quality app knows about `project`; returns its report."""
    started = time.monotonic()
    report, _ = QualityReport.objects.get_or_create(project=project)
    report.status, report.started_at, report.finished_at, report.message = QualityReport.RUNNING, timezone.now(), \
        None, ""
    report.save()

    def step(fraction: float, stage: str) -> None:
        QualityReport.objects.filter(pk=project.pk).update(progress=fraction, stage=stage)
        if progress:
            progress(fraction, stage)

    try:
        step(0.0, "reading rankings")
        rankings = read_rankings(project)
        step(0.2, f"fitting consensus on {len(rankings)} rankings")
        fit = fit_project(rankings)
        step(0.6, "rater statistics")
        raters = rater_quality_rows(project, rankings, fit)
        step(0.7, "task consensus")
        consensus = task_consensus_rows(fit, rankings)
        step(0.8, "saving")
        with transaction.atomic():
            save_raters(project, raters)
            TaskConsensus.objects.bulk_create(consensus, batch_size=CHUNK, update_conflicts=True,
                                              unique_fields=["task"],
                                              update_fields=["order", "scores", "pairs", "confidence", "rankings",
                                                             "updated_at"])
            pauses = pausing.apply_automatic(project, [q for q in raters if not q.is_judge])
        step(0.9, "model leaderboard")  # after the weights and pauses it reads are saved
        report.leaderboard, report.leaderboard_reason = leaderboard_rows(project)
        confidences = [c.confidence for c in consensus]
        contested = sum(c < project.consensus_threshold for c in confidences)
        report.summary = {
            "rankings": len(rankings),
            "raters": sum(not q.is_judge for q in raters),
            "judges": sum(q.is_judge for q in raters),
            "tasks": len(consensus),
            "contested_tasks": contested,
            "confident_tasks": len(consensus) - contested,
            "confidence_histogram": confidence_histogram(confidences),
            "flagged_raters": sum(bool(q.flags) for q in raters if not q.is_judge),
            "unreliable_raters": sum(q.unreliable for q in raters if not q.is_judge),
            "pauses": pauses,
            "em_iterations": fit.iterations,
            "converged": fit.converged,
            "seconds": round(time.monotonic() - started, 2),
            # What was read, not what exists now: a ranking submitted during the refresh leaves the project stale,
            # so the next scheduled check refreshes it again.
            "last_ranking_id": rankings[-1].id if rankings else None,
        }
        report.status, report.progress, report.stage = QualityReport.DONE, 1.0, "done"
        report.finished_at = timezone.now()
        report.save()
        if progress:
            progress(1.0, "done")
        return report
    except Exception as exc:
        QualityReport.objects.filter(pk=project.pk).update(status=QualityReport.FAILED, finished_at=timezone.now(),
                                                            message=f"{type(exc).__name__}: {exc}"[:2000])
        raise


def leaderboard_rows(project: Project) -> tuple[list[dict], str]:
    """The model leaderboard's rows, or none and the reason."""
    try:
        return [row.as_dict(rank) for rank, row in enumerate(project_leaderboard(project), start=1)], ""
    except LeaderboardError as exc:
        return [], str(exc)


def rater_quality_rows(project: Project, rankings: list[RankingRow], fit: ConsensusFit) -> list[RaterQuality]:
    gold = dict(RankingTask.objects.filter(project=project, is_gold=True, gold_order__isnull=False)
                .values_list("id", "gold_order"))
    stats_of: dict[int, RaterStats] = {}
    for r in rankings:
        s = stats_of.setdefault(r.rater_id, RaterStats(rater=r.rater_id))
        add_ranking(s, r.order, r.display, r.time_ms, r.flags, gold.get(r.task_id))
    index = {key: i for i, key in enumerate(fit.votes.raters)}
    reliability = {rid: float(fit.reliability[i]) for rid, i in index.items()}
    # Agreement is people's among people; each judge is compared with the people alone, so a judge never sways a
    # person's figure nor another judge's.
    people = [r for r in rankings if not r.judge]
    judges = {r.rater_id for r in rankings if r.judge}
    loo = leave_one_out_agreement(people, reliability)
    crowd: dict[int, tuple[int, int]] = {}
    for judge in judges:  # agreement is per task: only the tasks this judge ranked need the people's rows again
        own = [r for r in rankings if r.rater_id == judge]
        tasks = {r.task_id for r in own}
        theirs = [r for r in people if r.task_id in tasks]
        loo[judge] = leave_one_out_agreement(theirs + own, reliability).get(judge, (0, 0))
        crowd[judge] = plurality_agreement(((r.task_id, r.order) for r in own),
                                           ((r.task_id, r.order) for r in theirs))
    speed = speed_scores({rid: s.median_time_s for rid, s in stats_of.items()
                          if s.median_time_s is not None and s.rankings >= MIN_RANKINGS_FOR_SPEED
                          and rid not in judges})
    rows = []
    for rid, s in stats_of.items():
        i = index.get(rid)
        agree, compared = loo.get(rid, (0, 0))
        q = RaterQuality(
            project=project, rater_id=rid, rankings=s.rankings,
            evidence=float(fit.evidence[i]) if i is not None else 0.0,
            reliability=reliability.get(rid),
            reliability_low=float(fit.reliability_low[i]) if i is not None else None,
            reliability_high=float(fit.reliability_high[i]) if i is not None else None,
            tie_propensity=float(np.exp(fit.log_nu[i])) if i is not None else None,
            noise=[round(float(v), 4) for v in fit.noise[i]] if i is not None else [],
            gold_accuracy=s.gold_accuracy, gold_tasks=s.gold_tasks,
            loo_agreement=agree / compared if compared else None, loo_pairs=compared,
            crowd_agreement=crowd[rid][0] / crowd[rid][1] if crowd.get(rid, (0, 0))[1] else None,
            crowd_pairs=crowd.get(rid, (0, 0))[1],
            # A judge is asked in both orders (feedback.judging): the order its ranking records is not what it saw.
            position_bias=None if rid in judges else s.position_bias,
            position_expected=None if rid in judges else s.position_expected,
            position_p=None if rid in judges else _binomial_p(s),
            median_time_s=None if rid in judges else s.median_time_s,
            speed_z=speed.get(rid), is_judge=rid in judges,
        )
        q.flags = rater_flags(q, project)
        rows.append(q)
    return rows


def _binomial_p(s: RaterStats) -> float | None:
    """Two-sided binomial test: is the first-shown completion ranked top more (or less) often than by chance?"""
    from scipy import stats  # loaded on use (~1.7 s): commands and web processes start without it
    if not s.first_shown_known or s.position_expected is None:
        return None
    expected = min(max(s.position_expected, 1e-6), 1 - 1e-6)
    return float(stats.binomtest(s.first_shown_top, s.first_shown_known, expected).pvalue)


def save_raters(project: Project, rows: list[RaterQuality]) -> None:
    """Upsert the raters' rows and write each rater's training weight onto their rankings (0 while paused)."""
    paused = set(project.memberships.filter(paused=True).values_list("user_id", flat=True))
    for q in rows:
        q.training_weight = q.weight_when(q.rater_id in paused)
    fields = [f.name for f in RaterQuality._meta.concrete_fields if f.name not in ("id", "project", "rater")]
    RaterQuality.objects.bulk_create(rows, batch_size=CHUNK, update_conflicts=True,
                                     unique_fields=["project", "rater"], update_fields=fields)
    for q in rows:
        Ranking.objects.filter(task__project=project, rater_id=q.rater_id).exclude(
            weight=q.training_weight).update(weight=q.training_weight)
