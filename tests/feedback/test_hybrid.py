"""Hybrid routing: AI judges vote first, and people rank where the judges leave the consensus unsure.

A judge's ranking is sent to the quality app like a person's (not counted among the task's people): with dynamic
overlap the task then needs ``min_overlap`` people, none once the judge is trusted (``Project.judge_trust`` below the
lower end of its reliability interval) and its vote settles the task, and more people when they contest it."""

from __future__ import annotations

import pytest

from annotation.assignment import next_assignment
from annotation.models import Assignment, RankingTask
from feedback.models import Judge
from quality.models import RaterQuality, TaskConsensus
from tests.feedback.helpers import calibrate, judge_all, prefers_lower_answers
from tests.quality.helpers import best_first, rate_once, worst_first

pytestmark = pytest.mark.django_db


def refreshed(task) -> RankingTask:
    return RankingTask.objects.get(pk=task.pk)


def test_a_judges_vote_takes_no_persons_slot(project, rater, rater2, make_task, chat_server):
    task = make_task(project)  # fixed overlap 2
    judge_all(Judge.objects.create(project=project, name="j", base_url=chat_server.url, model="m"), [task])
    assert Assignment.objects.get(task=task, ranking__source="judge").status == Assignment.JUDGED
    assert next_assignment(project, rater).task == task and next_assignment(project, rater2).task == task
    assert refreshed(task).submitted_count == 0


def test_judges_vote_first_and_people_rank_where_they_are_unsure(project, make_user, make_task, chat_server):
    project.k = 2
    project.save()
    chat_server.answer = prefers_lower_answers
    judge = Judge.objects.create(project=project, name="careful", base_url=chat_server.url, model="m")
    people = [make_user(f"person{i}") for i in range(3)]
    calibrate(project, [make_task(project) for _ in range(30)], people[:2], [judge])
    trust = RaterQuality.objects.get(project=project, is_judge=True).reliability_low
    assert trust > 0.75  # 30 tasks agreeing with two careful people
    project.min_overlap, project.max_overlap, project.consensus_threshold = 1, 3, 0.75
    project.save()

    # Not trusted (judge_trust blank): the judge's vote settles the consensus, one person is still asked, and their
    # agreement closes the task.
    agreed, contested = make_task(project), make_task(project)
    judge_all(judge, [agreed, contested])
    assert TaskConsensus.objects.get(task=agreed).confidence >= 0.75
    assert (refreshed(agreed).target_overlap, refreshed(agreed).status) == (1, RankingTask.OPEN)
    rate_once(project, people[2], best_first)  # lease order is by id: `agreed` first
    assert (refreshed(agreed).submitted_count, refreshed(agreed).status) == (1, RankingTask.COMPLETE)
    # A person who contests the judge opens one more slot, up to max_overlap.
    rate_once(project, people[2], worst_first)
    assert (refreshed(contested).target_overlap, refreshed(contested).status) == (2, RankingTask.OPEN)

    # Trusted: the judge's settled vote needs no person at all, and nobody is served the task.
    project.judge_trust = round(trust - 0.05, 3)
    project.save()
    alone = make_task(project)
    judge_all(judge, [alone])
    assert (refreshed(alone).target_overlap, refreshed(alone).status) == (0, RankingTask.COMPLETE)
    assert next_assignment(project, make_user("newcomer")).task == contested

    # A bar the judge does not clear: min_overlap people again.
    project.judge_trust = min(1.0, round(trust + 0.05, 3))
    project.save()
    doubted = make_task(project)
    judge_all(judge, [doubted])
    assert (refreshed(doubted).target_overlap, refreshed(doubted).status) == (1, RankingTask.OPEN)
