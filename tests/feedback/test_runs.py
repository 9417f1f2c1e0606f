"""manage.py judge_tasks: a judge ranks a project's tasks with a progress bar, stops at its budget, continues where
it stopped, and a dead endpoint or a wrong name is a clear error with a non-zero exit."""

from __future__ import annotations

import itertools
import json
import time
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Ranking
from feedback.models import Judge
from feedback.runs import run_judge

pytestmark = pytest.mark.django_db


def judge_tasks(*argv) -> tuple[dict, str]:
    out, err = StringIO(), StringIO()
    call_command("judge_tasks", *argv, stdout=out, stderr=err)
    return json.loads(out.getvalue()), err.getvalue()


@pytest.fixture
def judged(project, make_task, chat_server):
    chat_server.answer = lambda request: (200, "TIE", {})
    for _ in range(5):
        make_task(project, ["x", "y"])
    return Judge.objects.create(project=project, name="llm", base_url=chat_server.url, model="m", concurrency=1,
                                cost_per_1k_input=Decimal("1"))  # 100 prompt tokens: 0.1 a question


def test_a_run_with_a_limit_then_a_budget_then_the_rest(project, judged, chat_server):
    summary, err = judge_tasks("--project", project.name, "--judge", "llm", "--limit", "2")
    assert summary == {"tasks": 2, "rankings": 2, "failed_tasks": 0, "inconsistent_pairs": 0, "questions": 4,
                       "cost": "0.400000", "stopped_by": "limit"}
    assert "2/2 tasks" in err
    judged.refresh_from_db()  # the run gave the judge its account
    judged.budget = Decimal("0.8")
    judged.save()
    summary, err = judge_tasks("--project", str(project.pk), "--judge", "llm")
    assert summary["stopped_by"] == "budget" and summary["rankings"] == 2 and "spent its budget" in err
    judged.budget = None
    judged.save()
    summary, _ = judge_tasks("--project", project.name, "--judge", "llm")
    assert summary["rankings"] == 1 and summary["stopped_by"] == ""
    assert Ranking.objects.filter(source=Ranking.JUDGE).count() == 5 and len(chat_server.requests) == 10


def test_clear_errors(project, judged, chat_server):
    with pytest.raises(CommandError, match="no judge 'gpt'.*llm"):
        judge_tasks("--project", project.name, "--judge", "gpt")
    chat_server.answer = lambda request: (503, None, {"retry-after-ms": "5"})
    judged.max_retries = 0
    judged.save()
    with pytest.raises(CommandError, match="503.*run it again"):
        judge_tasks("--project", project.name, "--judge", "llm")
    assert not Ranking.objects.filter(source=Ranking.JUDGE).exists()


def slow(seconds: float, reply: str = "A"):
    def answer(request):
        time.sleep(seconds)
        return 200, reply, {}
    return answer


@pytest.mark.django_db(transaction=True)  # the run's threads read the tasks through their own connections
def test_tasks_are_asked_concurrently_with_the_same_result(project, make_task, chat_server):
    chat_server.answer = slow(0.2)
    for _ in range(8):
        make_task(project, ["x", "y"])
    judge = Judge.objects.create(project=project, name="llm", base_url=chat_server.url, model="m", concurrency=4)
    started = time.monotonic()
    summary = run_judge(judge)
    elapsed = time.monotonic() - started
    assert (summary.tasks, summary.rankings, summary.questions) == (8, 8, 16)
    assert elapsed < 16 * 0.2 / 2  # one at a time takes 3.2 s
    assert Ranking.objects.filter(source=Ranking.JUDGE).values("task").distinct().count() == 8
    assert summary.inconsistent_pairs == 8  # "A" in both orders: position bias, caught on every pair


@pytest.mark.django_db(transaction=True)
def test_a_rate_limit_spaces_the_calls(project, make_task, chat_server):
    for _ in range(3):
        make_task(project, ["x", "y"])
    judge = Judge.objects.create(project=project, name="llm", base_url=chat_server.url, model="m", concurrency=4,
                                 requests_per_minute=300)  # one call every 0.2 s
    run_judge(judge)
    gaps = [b - a for a, b in itertools.pairwise(sorted(chat_server.times))]
    assert len(chat_server.times) == 6 and min(gaps) > 0.15
