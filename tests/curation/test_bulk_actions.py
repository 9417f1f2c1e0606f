"""Bulk actions: priority, re-ask, exclude from / include in training (training follows), export, bounds."""

from __future__ import annotations

import json

import pytest

from annotation.assignment import next_assignment
from annotation.models import RankingTask
from curation import bulk_actions
from curation.models import BulkAction
from rewardmodel.snapshot import build_snapshot
from tests.curation.helpers import rate_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def three(project, make_task):
    return [make_task(project) for _ in range(3)]


def test_set_priority_changes_the_serving_order_and_is_logged(project, three, manager, rater):
    last = three[-1]
    done = bulk_actions.set_priority(project, project.tasks.filter(pk=last.pk), 50, user=manager)
    assert done.changed == 1 and BulkAction.objects.get().action == "priority"
    assert next_assignment(project, rater).task_id == last.pk
    with pytest.raises(ValueError):
        bulk_actions.set_priority(project, project.tasks.all(), 10**9)


def test_excluded_tasks_leave_training_and_come_back(project, three, manager, rater, rater2):
    rate_all(project, [rater, rater2])
    assert len(build_snapshot(project.pk).ranking_ids) == 6
    done = bulk_actions.set_excluded(project, project.tasks.filter(pk=three[0].pk), True, user=manager)
    assert done.changed == 1
    kept = build_snapshot(project.pk).ranking_ids
    assert len(kept) == 4 and not set(kept) & set(three[0].rankings.values_list("pk", flat=True))
    bulk_actions.set_excluded(project, project.tasks.all(), False, user=manager)
    assert len(build_snapshot(project.pk).ranking_ids) == 6


def test_reask_asks_new_raters_once(project, three, manager, rater, rater2, make_user):
    from annotation.models import Membership

    rate_all(project, [rater, rater2])
    done = bulk_actions.reask(project, project.tasks.filter(pk=three[1].pk), priority=5, user=manager)
    assert done.changed == 1
    copy = RankingTask.objects.get(origin=three[1])
    assert copy.status == RankingTask.OPEN and copy.priority == 5
    assert set(copy.completions.all()) == set(three[1].completions.all())
    again = bulk_actions.reask(project, project.tasks.filter(pk=three[1].pk), user=manager)
    assert again.changed == 0  # an open re-ask already asks it
    newcomer = make_user("newcomer")
    Membership.objects.create(project=project, user=newcomer)
    assert next_assignment(project, newcomer).task_id == copy.pk  # served to someone who never saw the prompt
    assert next_assignment(project, rater) is None  # the raters who saw it are not asked again


def test_export_gives_only_the_selected_tasks_rankings(project, three, manager, rater, rater2):
    rate_all(project, [rater, rater2])
    rows = list(bulk_actions.export_rankings(project, project.tasks.filter(pk=three[2].pk), user=manager))
    assert {r["task_id"] for r in rows} == {three[2].pk} and len(rows) == 2
    json.dumps(rows)  # plain JSON


def test_a_selection_above_the_bound_changes_nothing(project, three, manager, monkeypatch):
    monkeypatch.setattr(bulk_actions, "MAX_TASKS", 2)
    with pytest.raises(bulk_actions.SelectionTooLarge, match="at most 2"):
        bulk_actions.set_excluded(project, project.tasks.all(), True, user=manager)
    assert not project.tasks.filter(excluded_from_training=True).exists()
    assert not BulkAction.objects.exists()
