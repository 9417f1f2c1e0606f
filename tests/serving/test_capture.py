"""Capture (serving.capture): what a trainer scored, kept where the project opted in; groups whole, sampled by
hash, capped per day, deduplicated by content, purged after the retention; through the score API too."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from serving.capture import capture, groups_of, purge
from serving.models import CapturedSample, CapturePolicy, PolicyRun
from tests.test_rewardmodel_api import trained  # noqa: F401 - an active tiny version


def grpo_call(prompts: int, group: int, tag: str = "") -> tuple[list[tuple[str, str]], list[float]]:
    """What a GRPO step sends: each prompt's `group` completions one after the other."""
    pairs = [(f"question {p}{tag}?", f"answer {p}.{g}{tag}") for p in range(prompts) for g in range(group)]
    return pairs, [float(i) for i in range(len(pairs))]


@pytest.fixture
def policy(project):
    return CapturePolicy.objects.create(project=project, enabled=True)


def test_nothing_is_kept_without_the_opt_in(project, trained):  # noqa: F811
    pairs, scores = grpo_call(3, 4)
    assert capture(project, "run-1", 0, pairs, scores, trained.pk) == 0
    CapturePolicy.objects.create(project=project, enabled=False)
    assert capture(project, "run-1", 0, pairs, scores, trained.pk) == 0 and not CapturedSample.objects.exists()


def test_groups_are_kept_whole_and_once(project, policy, trained):  # noqa: F811
    pairs, scores = grpo_call(3, 4)
    assert groups_of(pairs) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    capture(project, "run-1", 7, pairs, scores, trained.pk)
    capture(project, "run-1", 7, pairs, scores, trained.pk)  # a retried call: the same content, kept once
    assert CapturedSample.objects.count() == 12
    assert CapturedSample.objects.values("group_key").distinct().count() == 3
    run = PolicyRun.objects.get(project=project, name="run-1")
    assert run.last_step == 7 and CapturedSample.objects.filter(run=run, step=7, version=trained).count() == 12


def test_sampling_and_the_daily_cap(project, policy, trained):  # noqa: F811
    policy.sample_rate = 0.5
    policy.save()
    pairs, scores = grpo_call(40, 4)
    capture(project, "run-1", 1, pairs, scores, trained.pk)
    kept = CapturedSample.objects.count()
    assert kept % 4 == 0 and 40 < kept < 120  # whole groups, about half of them
    policy.sample_rate, policy.daily_cap = 1.0, kept + 6
    policy.save()
    more, scores = grpo_call(10, 4, tag="b")
    capture(project, "run-1", 2, more, scores, trained.pk)
    assert CapturedSample.objects.count() == kept + 4  # one more whole group fits under the cap


def test_purge_keeps_what_was_routed(project, policy, trained, make_task):  # noqa: F811
    pairs, scores = grpo_call(2, 2)
    capture(project, "run-1", 0, pairs, scores, trained.pk)
    old = timezone.now() - timedelta(days=policy.retention_days + 1)
    CapturedSample.objects.update(created_at=old)
    CapturedSample.objects.filter(pk=CapturedSample.objects.first().pk).update(task=make_task(project))
    assert purge() == 3 and CapturedSample.objects.count() == 1


def test_the_score_api_captures_a_named_run(project, policy, trained, rater, token_client):  # noqa: F811
    body = {"items": [{"prompt": "q?", "completion": c} for c in ("a", "bb", "ccc")],
            "capture": {"run": "grpo-7", "step": 3}}
    got = token_client(rater).post(f"/api/projects/{project.pk}/score/", body, format="json").json()
    assert got["captured"] == 3
    samples = CapturedSample.objects.order_by("id")
    assert [s.reward for s in samples] == pytest.approx(got["scores"])
    assert {s.run.name for s in samples} == {"grpo-7"} and {s.step for s in samples} == {3}
