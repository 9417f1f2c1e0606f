"""Review: a ranking next to the consensus and the reward model; a rejection leaves training and the consensus."""

from __future__ import annotations

import shutil

import pytest

from curation.review import ReviewError, agreement, ranking_context, rater_history, review
from quality.models import RankingReview, TaskConsensus
from quality.refresh import refresh_project
from rewardmodel.models import RewardModelVersion
from rewardmodel.snapshot import build_snapshot
from tests.curation.helpers import rate_all

pytestmark = pytest.mark.django_db


def test_agreement_counts_strict_pairs():
    assert agreement([[1], [2], [3]], {1: 3.0, 2: 2.0, 3: 1.0}) == (1.0, 3)
    assert agreement([[1], [2, 3]], {1: 0.0, 2: 1.0, 3: 2.0}) == (0.0, 2)  # the tie gives no pair
    assert agreement([[1], [2]], {}) == (None, 0)


def test_a_rejected_ranking_leaves_training_and_the_consensus(project, make_task, manager, rater, rater2):
    task = make_task(project)
    good, bad = rate_all(project, [rater]) + rate_all(project, [rater2], lambda ids: [[c] for c in ids[::-1]])
    refresh_project(project)
    assert TaskConsensus.objects.get(task=task).rankings == 2
    with pytest.raises(ReviewError) as refused:
        review(bad, "rejected", "   ", manager)
    assert refused.value.field == "reason" and not RankingReview.objects.exists()
    review(bad, "rejected", "ranked in reverse without reading", manager)
    assert build_snapshot(project.pk).ranking_ids == [good.pk]
    refresh_project(project)
    assert TaskConsensus.objects.get(task=task).rankings == 1
    review(bad, "accepted", "", manager)  # a change of mind brings it back
    assert set(build_snapshot(project.pk).ranking_ids) == {good.pk, bad.pk}


def test_context_shows_consensus_and_the_active_models_scores(project, make_task, manager, rater, rater2, tiny,
                                                               model_root):
    make_task(project)
    first, second = rate_all(project, [rater, rater2])
    refresh_project(project)
    context = ranking_context(first)
    assert context["verdict"].scores == {} and "no active" in context["verdict"].note
    assert context["consensus_agreement"] == 1.0 and context["consensus_pairs"] == 6
    shutil.copytree(tiny, model_root / "v1")
    RewardModelVersion.objects.create(project=project, number=1, status="ready", is_active=True, path="v1",
                                      base_model="tiny", job_key="k1", config={"max_length": 64})
    context = ranking_context(first)
    assert len(context["verdict"].scores) == 4 and context["model_pairs"] == 6
    assert 0.0 <= context["model_agreement"] <= 1.0
    assert [c["label"] for c in context["completions"]] == ["A", "B", "C", "D"]


def test_rater_history_counts_reviews(project, make_task, manager, rater):
    make_task(project)
    make_task(project)
    one, two = rate_all(project, [rater])
    review(one, "rejected", "careless", manager)
    history = rater_history(project, rater.pk)
    assert history["counts"] == {"total": 2, "rejected": 1, "accepted": 0}
    assert [row["review"].decision if row["review"] else None for row in history["rows"]].count("rejected") == 1
