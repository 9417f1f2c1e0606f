"""A judge run over a project: every task the judge has not ranked yet, in id order, each asked in both orders and
recorded as the judge's ranking; bounded by `limit` tasks and by the judge's budget. Rerunning continues where the
last run stopped (answered questions are never asked again)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal

from annotation.models import Ranking, RankingTask
from feedback.backends import backend_for
from feedback.judging import BudgetExhausted, judge_task, spent
from feedback.models import Judge, JudgeVerdict
from feedback.rankings import record_ranking

Progress = Callable[[int, int], None]


@dataclass
class RunSummary:
    tasks: int = 0  # tasks judged in this run
    rankings: int = 0
    failed_tasks: int = 0  # a pair with no usable reply: no ranking
    inconsistent_pairs: int = 0  # the judge contradicted itself across the two orders
    questions: int = 0  # new questions put to the endpoint
    cost: str = "0"
    stopped_by: str = ""  # "", "limit", "budget"

    def as_dict(self) -> dict:
        return asdict(self)


def pending_tasks(judge: Judge):
    ranked = Ranking.objects.filter(source=Ranking.JUDGE, rater_id=judge.user_id).values("task_id")
    tasks = RankingTask.objects.filter(project=judge.project)
    return tasks.exclude(pk__in=ranked) if judge.user_id else tasks


def run_judge(judge: Judge, limit: int | None = None, progress: Progress | None = None) -> RunSummary:
    """Judge the project's pending tasks; raises JudgeUnavailable when the endpoint stops answering (what was
    answered is kept)."""
    backend = backend_for(judge)
    summary = RunSummary()
    before_cost, before_questions = spent(judge), JudgeVerdict.objects.filter(judge=judge).count()
    todo = list(pending_tasks(judge).order_by("id").values_list("id", flat=True))
    total = len(todo) if limit is None else min(limit, len(todo))
    try:
        for task in RankingTask.objects.filter(pk__in=todo[:total]).select_related("prompt").order_by("id"):
            outcomes = judge_task(judge, task, backend)
            summary.tasks += 1
            summary.inconsistent_pairs += sum(o.inconsistent for o in outcomes)
            if record_ranking(judge, task, outcomes) is None:
                summary.failed_tasks += 1
            else:
                summary.rankings += 1
            if progress:
                progress(summary.tasks, total)
        if total < len(todo):
            summary.stopped_by = "limit"
    except BudgetExhausted:
        summary.stopped_by = "budget"
    finally:
        summary.cost = str((spent(judge) - before_cost).quantize(Decimal("0.000001")))
        summary.questions = JudgeVerdict.objects.filter(judge=judge).count() - before_questions
    return summary
