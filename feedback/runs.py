"""A judge run over a project: every task the judge has not ranked yet, in id order, each asked in both orders and
recorded as the judge's ranking; bounded by `limit` tasks and by the judge's budget. Rerunning continues where the
last run stopped (answered questions are never asked again)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal

from django.db import connection

from annotation.models import Ranking, RankingTask
from feedback.backends import backend_for
from feedback.judging import BudgetExhausted, judge_task, spent
from feedback.models import Judge, JudgeVerdict
from feedback.rankings import account_of, record_ranking

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
    """Judge the project's pending tasks, ``judge.parallel`` at a time; raises JudgeUnavailable when the endpoint
    stops answering (what was answered is kept). With several at a time, the budget may be passed by the questions
    already in flight when it is reached (at most `concurrency` − 1 of them)."""
    backend = backend_for(judge)
    account_of(judge)  # made once, before any thread wants it
    summary = RunSummary()
    before_cost, before_questions = spent(judge), JudgeVerdict.objects.filter(judge=judge).count()
    todo = list(pending_tasks(judge).order_by("id").values_list("id", flat=True))
    total = len(todo) if limit is None else min(limit, len(todo))
    tasks = RankingTask.objects.filter(pk__in=todo[:total]).select_related("prompt").order_by("id")

    def one(task) -> tuple[int, bool]:
        outcomes = judge_task(judge, task, backend)
        return sum(o.inconsistent for o in outcomes), record_ranking(judge, task, outcomes) is not None

    def count(result: tuple[int, bool]) -> None:
        summary.tasks += 1
        summary.inconsistent_pairs += result[0]
        summary.rankings += result[1]
        summary.failed_tasks += not result[1]
        if progress:
            progress(summary.tasks, total)

    try:
        if judge.parallel == 1:
            for task in tasks:
                count(one(task))
        else:
            _in_threads(list(tasks), one, count, judge.parallel)
        if total < len(todo):
            summary.stopped_by = "limit"
    except BudgetExhausted:
        summary.stopped_by = "budget"
    finally:
        summary.cost = str((spent(judge) - before_cost).quantize(Decimal("0.000001")))
        summary.questions = JudgeVerdict.objects.filter(judge=judge).count() - before_questions
    return summary


def _in_threads(tasks: list, one, count, workers: int) -> None:
    """`one(task)` on `workers` threads, each with its own database connection for all its tasks (closed when it
    ends), `count` called here as results arrive; the first error stops new tasks and is raised once those in
    flight are done."""
    todo: queue.Queue = queue.Queue()
    for task in tasks:
        todo.put(task)
    results: queue.Queue = queue.Queue()
    stop = threading.Event()

    def work() -> None:
        try:
            while not stop.is_set():
                try:
                    task = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    results.put((one(task), None))
                except Exception as exc:  # noqa: BLE001 (handed to the caller's thread, raised there)
                    stop.set()
                    results.put((None, exc))
        finally:
            connection.close()
            results.put(DONE)

    threads = [threading.Thread(target=work, name=f"judge-{i}", daemon=True) for i in range(min(workers, len(tasks)))]
    for thread in threads:
        thread.start()
    error, running = None, len(threads)
    while running:
        item = results.get()
        if item is DONE:
            running -= 1
        elif item[1] is not None:
            error = error or item[1]
        else:
            count(item[0])
    if error is not None:
        raise error


DONE = object()
