"""Review of rankings: one rater's ranking next to the task's consensus and the active reward model's verdict,
accept or reject with a reason (``quality.models.RankingReview``: a rejected ranking leaves training and the
consensus), and a rater's history for the drill-down.

Agreement is counted on strict pairs (``annotation.pairs.ranked_pairs``): the share of the ranking's pairs on which
the other side (consensus scores, reward-model scores) puts the same completion ahead.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q

from annotation.models import Completion, Project, Ranking
from annotation.pairs import ranked_pairs
from quality.models import GoldScore, PauseEvent, RankingReview, RaterQuality, TaskConsensus
from rewardmodel.encoding import TooManyTokens
from rewardmodel.registry import active_version

MAX_REASON = 500
HISTORY_ROWS = 200


class ReviewError(ValueError):
    """Bad review input: ``field`` names what was wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def review(ranking: Ranking, decision: str, reason: str, reviewer) -> RankingReview:
    """Record (or change) the verdict on ``ranking``; a rejection needs a reason. Effective from the next training
    snapshot and quality refresh."""
    reason = (reason or "").strip()
    if decision not in (RankingReview.ACCEPTED, RankingReview.REJECTED):
        raise ReviewError("decision", "must be accepted or rejected")
    if decision == RankingReview.REJECTED and not reason:
        raise ReviewError("reason", "say why the ranking is rejected: the reason is kept with it")
    if len(reason) > MAX_REASON:
        raise ReviewError("reason", f"at most {MAX_REASON} characters, got {len(reason)}")
    with transaction.atomic():
        row, _ = RankingReview.objects.update_or_create(
            ranking=ranking, defaults={"decision": decision, "reason": reason, "reviewer": reviewer})
    return row


def agreement(order, scores: dict[int, float]) -> tuple[float | None, int]:
    """(share of the ranking's strict pairs that ``scores`` order the same way, pairs counted)."""
    agree = total = 0
    for better, worse, _ in ranked_pairs(order):
        if better in scores and worse in scores and scores[better] != scores[worse]:
            total += 1
            agree += scores[better] > scores[worse]
    return (agree / total if total else None), total


@dataclass
class Verdict:
    """The active reward model's scores of a task's completions, or why there are none."""

    version_id: int | None
    scores: dict[int, float]
    note: str = ""


def model_verdict(project: Project, completions: list[Completion], prompt: str) -> Verdict:
    """Scores of ``completions`` by the project's active reward-model version (bounded like any scoring request)."""
    from rewardmodel import scoring  # torch and transformers load on first use, not when the admin starts

    version = active_version(project)
    if version is None:
        return Verdict(None, {}, "no active reward-model version yet")
    try:
        budget = scoring.token_budget(version, settings.VERDICT_SCORE_MAX_TOKENS)
        rewards = scoring.score(version, [prompt] * len(completions), [c.text for c in completions], max_tokens=budget)
    except TooManyTokens:
        return Verdict(version.pk, {}, "the completions are too long to score in a page request")
    except FileNotFoundError:
        return Verdict(version.pk, {}, "the active version's files are missing on this machine")
    return Verdict(version.pk, {c.pk: float(r) for c, r in zip(completions, rewards, strict=True)})


def ranking_context(ranking: Ranking, with_model: bool = True) -> dict:
    """Everything the review page shows about one ranking."""
    task = ranking.task
    completions = list(task.completions.all())
    labels = {c.pk: chr(ord("A") + i) for i, c in enumerate(completions)}
    consensus = TaskConsensus.objects.filter(task=task).first()
    consensus_scores = {int(k): float(v) for k, v in (consensus.scores if consensus else {}).items()}
    verdict = model_verdict(task.project, completions, task.prompt.text) if with_model else None
    review_row = RankingReview.objects.filter(ranking=ranking).select_related("reviewer").first()
    gold = GoldScore.objects.filter(ranking=ranking).first()
    c_agree, c_pairs = agreement(ranking.order, consensus_scores)
    context = {
        "ranking": ranking,
        "task": task,
        "completions": [{"id": c.pk, "label": labels[c.pk], "model": c.model_name, "text": c.text,
                         "consensus_score": consensus_scores.get(c.pk),
                         "model_score": verdict.scores.get(c.pk) if verdict else None} for c in completions],
        "labels": labels,
        "consensus": consensus,
        "consensus_agreement": c_agree,
        "consensus_pairs": c_pairs,
        "gold_accuracy": gold.accuracy if gold else None,
        "review": review_row,
    }
    if verdict is not None:
        m_agree, m_pairs = agreement(ranking.order, verdict.scores)
        context |= {"verdict": verdict, "model_agreement": m_agree, "model_pairs": m_pairs}
    return context


def order_label(order, labels: dict[int, str]) -> str:
    """Tie groups as letters, best first: ``A > B = C > D``."""
    return " > ".join(" = ".join(labels.get(int(c), "?") for c in group) for group in order)


def rater_history(project: Project, rater_id: int, limit: int = HISTORY_ROWS) -> dict:
    """A rater's record in a project: quality estimate, review counts, pauses and their latest rankings with their
    agreement with each task's consensus."""
    rankings = Ranking.objects.filter(task__project=project, rater_id=rater_id)
    counts = rankings.aggregate(
        total=Count("pk"), rejected=Count("pk", filter=Q(review__decision=RankingReview.REJECTED)),
        accepted=Count("pk", filter=Q(review__decision=RankingReview.ACCEPTED)))
    latest = list(rankings.select_related("task", "review", "gold_score").order_by("-submitted_at", "-id")[:limit])
    consensus = {c.task_id: c for c in TaskConsensus.objects.filter(task_id__in={r.task_id for r in latest})}
    rows = []
    for r in latest:
        scores = {int(k): float(v) for k, v in consensus[r.task_id].scores.items()} if r.task_id in consensus else {}
        share, pairs = agreement(r.order, scores)
        review_row = getattr(r, "review", None)  # a missing reverse one-to-one raises an AttributeError: None
        gold = getattr(r, "gold_score", None)
        rows.append({"ranking": r, "consensus_agreement": share, "pairs": pairs,
                     "review": review_row, "gold_accuracy": gold.accuracy if gold else None})
    return {
        "quality": RaterQuality.objects.filter(project=project, rater_id=rater_id).first(),
        "counts": counts,
        "pauses": list(PauseEvent.objects.filter(project=project, rater_id=rater_id)[:20]),
        "rows": rows,
    }
