"""Captured policy outputs routed to raters (active_learning.captured, through pipeline rounds): least-stable groups
become K-way tasks with source=policy, under caps, and their rankings export with the run and step."""

from __future__ import annotations

import numpy as np
import pytest

from active_learning import captured, pipeline
from annotation.assignment import next_assignment
from annotation.exporter import iter_trl_pairs
from annotation.models import RankingTask
from annotation.submission import RankingPayload, submit_ranking
from rewardmodel import scoring
from serving import capture
from serving.models import CapturedSample, CapturePolicy
from tests.test_rewardmodel_api import trained  # noqa: F401 - an active tiny version that may drive routing

pytestmark = [pytest.mark.usefixtures("model_root"), pytest.mark.django_db]


def capture_groups(project, version, n_groups: int, size: int = 6, step: int = 5, run: str = "grpo-a") -> None:
    for g in range(n_groups):
        prompt = f"policy prompt {g}: explain why?"
        completions = [f"answer {g}.{i} " + "and more " * i for i in range(size)]
        pairs = [(prompt, c) for c in completions]
        scores = scoring.score(version, [prompt] * size, completions)
        assert capture.capture(project, run, step, pairs, list(scores), version.pk) == size


@pytest.fixture
def capturing(project, trained):  # noqa: F811
    CapturePolicy.objects.create(project=project, enabled=True, groups_per_round=2)
    project.eval_share = 0
    project.save()
    return project, trained


def test_groups_are_scored_and_the_least_stable_become_k_way_tasks(capturing):
    project, version = capturing
    capture_groups(project, version, 4)
    rnd = pipeline.run_round(project, "uncertainty", 2, seed=0)
    part = rnd.summary["captured"]
    assert rnd.status == "done" and part["considered"] == 4 and len(part["tasks"]) == 2, rnd.summary
    assert part["instability"] == sorted(part["instability"], reverse=True)
    for task in RankingTask.objects.filter(pk__in=part["tasks"]):
        assert task.source == captured.SOURCE and task.priority == 100
        completions = list(task.completions.all())
        assert len(completions) == project.k  # six captured, spread over the reward model's order down to K
        assert {c.model_name for c in completions} == {"grpo-a@5"}
        assert all(c.metadata["policy_run"] == "grpo-a" and c.metadata["step"] == 5 for c in completions)
        assert CapturedSample.objects.filter(task=task).count() == 6  # the whole group is marked as routed
    # The groups' instability is the mean over their pairs, the same score as the pool's pairs.
    groups = captured.open_groups(project)
    assert len(groups) == 2 and not any(s.task_id for g in groups for s in g.samples)


def test_caps_keep_capture_from_flooding_the_queue(capturing):
    project, version = capturing
    capture_groups(project, version, 10, size=3)
    parts = [pipeline.run_round(project, "uncertainty", 1, seed=s).summary["captured"] for s in range(4)]
    assert [len(p["tasks"]) for p in parts] == [2, 2, 2, 0]  # groups_per_round each, then 3 rounds' worth open
    assert "6 policy tasks still open (at most 6)" in parts[-1]["note"]
    assert RankingTask.objects.filter(project=project, source="policy", status="open").count() == 6
    CapturePolicy.objects.filter(project=project).update(enabled=False)
    off = pipeline.run_round(project, "uncertainty", 1, seed=9).summary["captured"]
    assert off == {"considered": 0, "note": "capture is off", "tasks": []}


def test_random_strategy_draws_groups_at_random():
    picks = captured.choose(np.array([0.1, 0.9, 0.5, 0.7]), 2, "random", seed=3)
    assert len(set(picks)) == 2 and picks == captured.choose(np.array([0.1, 0.9, 0.5, 0.7]), 2, "random", seed=3)
    assert captured.choose(np.array([0.1, 0.9, 0.5, 0.7]), 2, "gap_ucb", seed=3) == [1, 3]
    assert captured.choose(np.array([0.1]), 0, "random", seed=0) == []


def test_rankings_of_policy_tasks_export_with_run_and_step(capturing, rater):
    project, version = capturing
    project.overlap = 1
    project.save()
    capture_groups(project, version, 1, size=3, step=12, run="grpo-b")
    task_id = pipeline.run_round(project, "uncertainty", 1, seed=0).summary["captured"]["tasks"][0]
    assignment = next_assignment(project, rater)
    assert assignment.task_id == task_id
    order = [[c] for c in assignment.task.completions.order_by("id").values_list("id", flat=True)]
    submit_ranking(assignment, RankingPayload(order=order))
    rows = [r for r in iter_trl_pairs(project) if r["task_id"] == task_id]  # (the fixture's rankings export too)
    assert len(rows) == 3 and {r["chosen_model"] for r in rows} == {"grpo-b@12"}
    assert all(r["prompt"] == "policy prompt 0: explain why?" for r in rows)
