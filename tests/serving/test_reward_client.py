"""verdict_client.VerdictReward: the reward function TRL's online trainers take, against a live Verdict (a real HTTP
server, PostgreSQL, a reward server over Redis), and TRL's GRPO trainer running steps with it."""

from __future__ import annotations

import threading
import time
import types

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token

from rewardmodel import scoring
from serving.models import CapturedSample, CapturePolicy, PolicyRun
from serving.server import RewardServer
from verdict_client import ApiError, VerdictReward
from verdict_client.reward import _chunks

pytestmark = [pytest.mark.usefixtures("model_root"),
              pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (the reward server)"),
              pytest.mark.django_db(transaction=True)]

from tests.test_rewardmodel_api import trained  # noqa: E402, F401 - an active tiny version


@pytest.fixture
def reward_server():
    from serving.server import REQUESTS_KEY, redis_client, servers_alive

    redis_client().delete(REQUESTS_KEY)
    server = RewardServer(max_items=256, max_wait_s=0.01, resolve_every_s=0.2, name="rl")
    thread = threading.Thread(target=server.serve_forever, kwargs={"idle_timeout_s": 1}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not servers_alive():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield server
    server.stop()
    thread.join(timeout=10)


def token_of(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


def test_chunks_keep_a_prompts_completions_together():
    pairs = [("a", "1"), ("a", "2"), ("a", "3"), ("b", "1"), ("b", "2"), ("b", "3"), ("c", "1")]
    assert _chunks(pairs, 4) == [(0, 3), (3, 7)]
    assert _chunks(pairs, 5) == [(0, 3), (3, 7)]
    assert _chunks(pairs, 2) == [(0, 2), (2, 3), (3, 5), (5, 7)]
    assert _chunks(pairs, 7) == [(0, 7)]
    assert _chunks([("a", str(i)) for i in range(5)], 2) == [(0, 2), (2, 4), (4, 5)]  # one long group: split
    assert _chunks([("x", "0"), *[("a", str(i)) for i in range(5)]], 3) == [(0, 1), (1, 4), (4, 6)]


def test_reward_function_scores_strings_and_messages_and_is_captured(  # noqa: F811
        live_server, trained, project, rater, reward_server):  # noqa: F811
    CapturePolicy.objects.create(project=project, enabled=True)
    reward = VerdictReward(live_server.url, token_of(rater), project.pk, run="grpo-test", batch_size=4)
    assert reward.__name__ == "verdict"
    prompts = ["q1?"] * 3 + ["q2?"] * 3
    completions = ["a good answer", "bad", "an answer", "yes", "no", "maybe"]
    state = types.SimpleNamespace(global_step=7)
    got = reward(prompts=prompts, completions=completions, trainer_state=state, completion_ids=[[1]] * 6)
    assert got == pytest.approx(scoring.score(trained, prompts, completions).tolist(), abs=1e-5)
    assert reward.last_version == trained.number and reward.captured == 6
    samples = CapturedSample.objects.filter(run__name="grpo-test")
    assert samples.count() == 6 and set(samples.values_list("step", flat=True)) == {7}
    assert samples.values("group_key").distinct().count() == 2  # the two prompts' groups, each whole
    assert PolicyRun.objects.get(name="grpo-test").last_step == 7
    assert reward_server.stats.requests == 2  # batch_size 4 cut between the prompts: 3 + 3

    # Conversational data (TRL passes message lists): flattened as the importer flattens them.
    chat_prompts = [[{"role": "user", "content": "q1?"}]] * 2
    chat_completions = [[{"role": "assistant", "content": "a good answer"}], [{"role": "assistant", "content": "bad"}]]
    assert reward(prompts=chat_prompts, completions=chat_completions) == pytest.approx(got[:2], abs=1e-5)


def test_reward_function_raises_rather_than_inventing_a_reward(live_server, trained, project, make_user):  # noqa: F811
    outsider = make_user("outsider")
    reward = VerdictReward(live_server.url, token_of(outsider), project.pk, retries=0)
    with pytest.raises(ApiError) as refused:
        reward(prompts=["q?"], completions=["a"])
    assert refused.value.status == 404
    with pytest.raises(ValueError):
        VerdictReward(live_server.url, "t", project.pk, batch_size=257)


def test_grpo_trains_against_a_live_verdict(live_server, trained, project, rater, reward_server, tmp_path):  # noqa: F811
    """TRL's GRPO trainer, a tiny Llama policy built from a config, three steps; every reward comes from Verdict."""
    import torch
    from datasets import Dataset
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    from rewardmodel.testing import make_tiny_tokenizer

    CapturePolicy.objects.create(project=project, enabled=True)
    tokenizer = make_tiny_tokenizer(chat=False)
    tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(0)
    policy = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                          num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                          max_position_embeddings=128, bos_token_id=tokenizer.bos_token_id,
                                          eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    prompts = Dataset.from_dict({"prompt": ["what is the answer?", "please explain why", "how is it?",
                                            "explain the question"]})
    reward = VerdictReward(live_server.url, token_of(rater), project.pk, run="grpo-tiny")
    config = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4,
                        max_completion_length=8, max_steps=3, learning_rate=1e-4, logging_steps=1, report_to=[],
                        save_strategy="no", use_cpu=True, seed=0, disable_tqdm=True)
    trainer = GRPOTrainer(model=policy, reward_funcs=[reward], args=config, train_dataset=prompts,
                          processing_class=tokenizer)
    trainer.train()

    logged = [row for row in trainer.state.log_history if "rewards/verdict/mean" in row]
    assert len(logged) == 3  # TRL logged Verdict's reward at every step, under the function's name
    samples = CapturedSample.objects.filter(run__name="grpo-tiny")
    assert samples.exists() and reward.captured == samples.count()  # duplicates (a tiny policy repeats) kept once
    steps = set(samples.values_list("step", flat=True))
    assert steps == {0, 1, 2}  # trainer_state.global_step at each reward call
    for key in samples.values_list("group_key", flat=True).distinct():
        assert samples.filter(group_key=key).values("prompt").distinct().count() == 1
    assert reward_server.stats.requests >= 3


def test_the_client_imports_without_django():
    import subprocess
    import sys

    code = "import sys, verdict_client; assert not [m for m in sys.modules if m.split('.')[0] in ('django', 'torch')]"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
