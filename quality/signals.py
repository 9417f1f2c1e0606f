"""How quality reacts to a submitted ranking (``annotation.signals.ranking_submitted``, inside its transaction).

- A new ranking takes its rater's current training weight (from the last refresh; 0 while they are paused), so an
  excluded rater's rankings never weigh 1 while waiting for the next refresh.
- A ranking of a gold task is scored against the known order at once (``GoldScore``).
- With dynamic overlap, the task's consensus is re-estimated from its rankings, the raters' reliabilities held at
  their last refresh (a newcomer at the prior), and ``quality.overlap.decide`` sets the task's target: stop when
  confident, one more rater while it is not, up to the maximum.
- Hybrid routing: an AI judge's ranking (feedback app) is sent here too, not counted among the task's people. Its
  vote enters the consensus at the judge's fitted reliability, so a task the judge settles needs only
  ``min_overlap`` people, and none when the project's ``judge_trust`` is set and that judge's reliability interval
  lies above it (``people_floor``).

And the signal quality sends: ``rater_paused``, when a rater is paused (by the refresh as unreliable, ``by`` None,
or by a manager), once that pause commits (``quality.pausing``). The notifications app listens (webhooks).
"""

from __future__ import annotations

import math

from django.db.models import OuterRef, Subquery
from django.dispatch import Signal, receiver

from annotation.models import Membership, Ranking, RankingTask
from annotation.signals import ranking_submitted
from config.prepared import PreparedQuery
from quality import overlap
from quality.agreement import pair_agreement
from quality.consensus import ConsensusSettings, collect_votes, fit_consensus
from quality.models import GoldScore, RaterQuality, TaskConsensus
from quality.refresh import RankingRow, task_consensus_rows

rater_paused = Signal()  # kwargs: project, rater_id, reason, by (the user, or None for the refresh's own pause)


@receiver(ranking_submitted, dispatch_uid="quality-ranking-submitted")
def on_ranking_submitted(sender, ranking: Ranking, task: RankingTask, created: bool, **kwargs) -> None:
    project = task.project
    if created:
        weight = current_weight(project, ranking.rater_id)
        if weight != ranking.weight:
            Ranking.objects.filter(pk=ranking.pk).update(weight=weight)
            ranking.weight = weight
    if task.is_gold and task.gold_order:
        score_gold(ranking, task.gold_order)
    if project.dynamic_overlap and not project.serves_to_all(task):
        consensus = update_task_consensus(task)
        decision = overlap.decide(task.submitted_count, people_floor(project, task), project.max_overlap,
                                  consensus.confidence, project.consensus_threshold)
        # Set on the instance: submission saves the task once its receivers are done (annotation.signals).
        task.target_overlap = decision.target
        task.status = RankingTask.COMPLETE if decision.done else RankingTask.OPEN


def people_floor(project, task: RankingTask) -> int:
    """The fewest people the task needs: ``min_overlap``, or 0 once a trusted AI judge has ranked it."""
    if project.judge_trust is None:
        return project.min_overlap
    trusted = RaterQuality.objects.filter(project=project, is_judge=True, reliability_low__gte=project.judge_trust,
                                          rater__rankings__task=task)
    return 0 if trusted.exists() else project.min_overlap


def _weight_query(shape, project_id: int, rater_id: int):
    weight = RaterQuality.objects.filter(project_id=project_id, rater_id=OuterRef("user_id")).values("training_weight")
    return (Membership.objects.filter(project_id=project_id, user_id=rater_id).order_by()
            .values("paused", weight=Subquery(weight[:1]))[:1])


_WEIGHT = PreparedQuery(_weight_query, {"project_id": int, "rater_id": int})  # every submit reads it


def current_weight(project, rater_id: int) -> float:
    """0 while paused; else the weight of the last refresh; 1 before any (one query). An AI judge is no member:
    its weight is its last refresh's."""
    found = _WEIGHT.dicts(None, project_id=project.pk, rater_id=rater_id)
    row = (found[0]["paused"], found[0]["weight"]) if found else None
    if row is None:
        known = RaterQuality.objects.filter(project=project, rater_id=rater_id, is_judge=True).values_list(
            "training_weight", flat=True).first()
        return 1.0 if known is None else float(known)
    if row[0]:
        return 0.0
    return 1.0 if row[1] is None else float(row[1])


def score_gold(ranking: Ranking, gold_order) -> GoldScore:
    agree, total = pair_agreement(ranking.order, gold_order)
    score, _ = GoldScore.objects.update_or_create(
        ranking=ranking, defaults={"accuracy": agree / total if total else 0.0, "pairs": total})
    return score


def update_task_consensus(task: RankingTask) -> TaskConsensus:
    """The task's consensus from its own rankings, with its raters' reliabilities fixed (``fit_consensus``)."""
    rows = [RankingRow(pk, task.pk, rater, order, shown, 0, [], task.prompt_id)
            for pk, rater, order, shown in task.rankings.values_list("id", "rater_id", "order", "display_order")]
    known = {q.rater_id: (q.reliability, q.tie_propensity, q.noise)
             for q in RaterQuality.objects.filter(project_id=task.project_id,
                                                  rater_id__in={r.rater_id for r in rows})}
    row = consensus_with_known_raters(rows, known)
    consensus, _ = TaskConsensus.objects.update_or_create(task=task, defaults={
        f: getattr(row, f) for f in ("order", "pairs", "confidence", "scores", "rankings")})
    return consensus


def consensus_with_known_raters(rows: list[RankingRow], known: dict) -> TaskConsensus:
    """One task's consensus (unsaved) from its rankings, each rater held at `known[rater] = (reliability, tie
    propensity, noise)` from the last refresh, a newcomer at the prior. Pure: the feedback benchmark replays the
    platform's routing with it."""
    votes = collect_votes((r.rater_id, r.order, r.display, r.prompt_id) for r in rows)
    settings = ConsensusSettings()
    a, b = settings.reliability_prior
    fixed = {}
    for index, rater_id in enumerate(votes.raters):
        reliability, tie_propensity, noise = known.get(rater_id, (None, None, None))
        if reliability is not None and noise:
            fixed[index] = (reliability, _log(tie_propensity), noise)
        else:
            fixed[index] = (a / (a + b), None, [1 / 3] * 3)
    fit = fit_consensus(votes, settings, fixed_raters=fixed)
    return task_consensus_rows(fit, rows)[0]  # the refresh's own builder, for one task


def _log(value: float | None) -> float | None:
    return math.log(value) if value and value > 0 else None
