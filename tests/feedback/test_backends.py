"""The judge backends that load a model in the worker: the project's reward-model version and a local causal LM."""

from __future__ import annotations

import shutil

import pytest

from feedback.judging import judge_task
from feedback.models import Judge, JudgeVerdict
from rewardmodel.models import RewardModelVersion
from rewardmodel.scoring import score

pytestmark = pytest.mark.django_db


def test_the_reward_model_judge_answers_by_the_higher_reward(project, make_task, tiny, model_root):
    shutil.copytree(tiny, model_root / "v1")
    version = RewardModelVersion.objects.create(project=project, number=1, status=RewardModelVersion.READY,
                                                path="v1", base_model="tiny", job_key="k1", is_active=True)
    judge = Judge.objects.create(project=project, name="rm", backend=Judge.REWARD_MODEL)
    assert judge.queue == "gpu"
    task = make_task(project, ["a clear and correct answer", "wrong nonsense", "rude useless text"])
    outcomes = judge_task(judge, task)
    texts = dict(task.completions.values_list("id", "text"))
    for o in outcomes:  # one forward per answer: the reward order, never inconsistent across the two orders
        rewards = score(version, [task.prompt.text] * 2, [texts[o.first_id], texts[o.second_id]])
        assert o.winner_id == (o.first_id if rewards[0] > rewards[1] else o.second_id) and not o.inconsistent
    assert JudgeVerdict.objects.filter(judge=judge).count() == 6 and not JudgeVerdict.objects.filter(cost__gt=0)
    # A new version is a new judge: its template version differs, so it is asked again.
    RewardModelVersion.objects.filter(pk=version.pk).update(is_active=False)
    shutil.copytree(tiny, model_root / "v2")
    RewardModelVersion.objects.create(project=project, number=2, status=RewardModelVersion.READY, path="v2",
                                      base_model="tiny", job_key="k2", is_active=True)
    judge_task(judge, task)
    assert JudgeVerdict.objects.filter(judge=judge).values("template_version").distinct().count() == 2


def test_the_reward_model_judge_needs_an_active_version(project, make_task):
    from feedback.backends import JudgeUnavailable

    judge = Judge.objects.create(project=project, name="rm", backend=Judge.REWARD_MODEL)
    with pytest.raises(JudgeUnavailable, match="no active reward-model version"):
        judge_task(judge, make_task(project))


def always_a_model(folder):
    """A tiny causal LM taught to answer A whatever it is asked: the position bias the two orders must cancel."""
    import torch

    from rewardmodel.testing import make_tiny_causal_lm

    make_tiny_causal_lm(folder)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    ids = torch.tensor([tokenizer("question\nA")["input_ids"]])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        loss = model(ids, labels=ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.save_pretrained(folder)
    return folder


def test_a_local_model_that_always_says_a_is_caught_by_the_two_orders(project, make_task, tmp_path):
    judge = Judge.objects.create(project=project, name="local", backend=Judge.LOCAL,
                                 model=str(always_a_model(tmp_path / "lm")))
    assert judge.queue == "gpu"
    outcomes = judge_task(judge, make_task(project, ["first answer", "second answer"]))
    assert [(o.winner_id, o.inconsistent, o.failed) for o in outcomes] == [(None, True, False)]
    assert set(JudgeVerdict.objects.filter(judge=judge).values_list("outcome", flat=True)) == {"A"}


def test_a_local_judge_without_a_model_is_unavailable(project, make_task, tmp_path):
    from feedback.backends import JudgeUnavailable

    judge = Judge.objects.create(project=project, name="local", backend=Judge.LOCAL, model=str(tmp_path / "none"))
    with pytest.raises(JudgeUnavailable, match="no causal language model"):
        judge_task(judge, make_task(project))
