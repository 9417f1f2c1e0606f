"""Scripted judges for the feedback tests (answers of the local chat server) and a calibration helper."""

from __future__ import annotations

import re

from annotation.models import Membership
from feedback.judging import judge_task
from feedback.models import Judge
from feedback.rankings import record_ranking
from quality.refresh import refresh_project
from tests.quality.helpers import best_first, rate_once


def answer_number(text: str, fence: str) -> int:
    return int(re.findall(r"answer (\d+)", text.split(fence)[1])[0])


def prefers_lower_answers(request):
    """A careful judge: 'answer 0' is better than 'answer 1' (make_task creates completions best first)."""
    text = request["messages"][-1]["content"]
    return 200, "A" if answer_number(text, "```") < answer_number(text, "¶¶¶") else "B", {}


def judge_all(judge: Judge, tasks) -> None:
    for task in tasks:
        record_ranking(judge, task, judge_task(judge, task))


def calibrate(project, tasks, people, judges) -> None:
    """Every person ranks every task carefully and every judge ranks them; then a quality refresh fits them all."""
    for person in people:
        Membership.objects.get_or_create(project=project, user=person)
        for _ in tasks:
            rate_once(project, person, best_first)
    for judge in judges:
        judge_all(judge, tasks)
    refresh_project(project)
