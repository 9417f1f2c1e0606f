"""Decoder backbones (issue 11, part 1): chat format, pad token, the reward read at the last real token whatever the
padding side, truncation that keeps the completion's end, and training/scoring end to end. Tiny random decoders are
built from a config (rewardmodel.testing); nothing is downloaded."""

from __future__ import annotations

import pytest
import torch

from rewardmodel import readout, scoring
from rewardmodel.backbones import PLAIN_TEMPLATE, default_backbone_path, load_backbone, load_tokenizer
from rewardmodel.encoding import encode_pairs, template_parts
from rewardmodel.models import RewardModelVersion
from rewardmodel.testing import make_tiny_decoder
from rewardmodel.trainer import TrainConfig, collate, predict, train
from rewardmodel.training import run_training
from tests.test_rewardmodel_training import FAST, add_rankings
from tests.test_rewardmodel_units import examples

PROMPTS = ["why is the sky blue?", "a", "please explain how the tide works in a few words", "ok"]
ANSWERS = ["helpful precise explanation", "wrong nonsense wrong nonsense wrong", "x", "correct and kind reply"]


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return make_tiny_decoder(tmp_path_factory.mktemp("llama") / "backbone", "llama")


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    return make_tiny_decoder(tmp_path_factory.mktemp("gpt2") / "backbone", "gpt2")


def test_each_backbone_gets_the_format_it_reads(llama, gpt2):
    _, tok = load_backbone(llama)
    assert "<|assistant|>" in tok.chat_template and tok.pad_token == tok.eos_token == "</s>"
    _, plain = load_backbone(gpt2)
    assert plain.chat_template == PLAIN_TEMPLATE  # a base model without a template gets the plain transcript
    assert load_tokenizer(default_backbone_path()).chat_template is None  # encoders keep text pairs
    own = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    _, custom = load_backbone(llama, chat_template=own)
    assert template_parts(custom) == ("[user] ", "\n[assistant] ", "\n")


def test_chat_encoding_puts_prompt_and_completion_in_their_turns(llama):
    _, tok = load_backbone(llama)
    enc = encode_pairs(tok, ["why?"], ["because"], max_length=64)
    text = tok.decode(enc.features[0]["input_ids"])
    assert text == "<s><|user|>\nwhy?<|end|>\n<|assistant|>\nbecause<|end|>\n"
    assert enc.truncated == 0


def test_truncation_cuts_the_prompt_first_then_keeps_the_completions_end(llama):
    _, tok = load_backbone(llama)
    fixed = len(encode_pairs(tok, [""], [""], 64).features[0]["input_ids"])
    long_prompt = " ".join(f"w{i}" for i in range(200))
    enc = encode_pairs(tok, [long_prompt, "short"], ["the answer", "fine"], max_length=40)
    assert enc.truncated == 1 and enc.completions_cut == 0 and len(enc.features) == 2
    text = tok.decode(enc.features[0]["input_ids"])
    assert len(enc.features[0]["input_ids"]) == 40
    assert text.startswith("<s><|user|>\n") and "w199" in text and "w0 " not in text
    assert text.endswith("<|assistant|>\nthe answer<|end|>\n")  # the template's end of turn survives the cut
    long_answer = " ".join(f"a{i}" for i in range(200))
    end = encode_pairs(tok, ["q"], [long_answer], max_length=40)
    start = encode_pairs(tok, ["q"], [long_answer], max_length=40, keep="start")
    assert end.truncated == end.completions_cut == 1 == start.completions_cut
    assert tok.decode(end.features[0]["input_ids"]).endswith("a199<|end|>\n")
    assert "a0 " in tok.decode(start.features[0]["input_ids"])
    assert all(len(e.features[0]["input_ids"]) == 40 for e in (end, start))
    with pytest.raises(ValueError, match="chat template alone takes"):
        encode_pairs(tok, ["q"], ["a"], max_length=fixed - 1)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_the_reward_is_read_at_the_last_real_token_whatever_the_padding(family, llama, gpt2):
    model, tok = load_backbone(llama if family == "llama" else gpt2)
    model.eval()
    enc = encode_pairs(tok, PROMPTS, ANSWERS, max_length=64)
    with torch.no_grad():
        alone = torch.stack([readout.rewards(model, collate(tok, [f], torch.device("cpu")))[0]
                             for f in enc.features])
        sides = {}
        for side in ("right", "left"):
            tok.padding_side = side
            sides[side] = readout.rewards(model, collate(tok, enc.features, torch.device("cpu")))
        # By hand: the score head on the unpadded sequence's last hidden state.
        ids = torch.tensor([enc.features[0]["input_ids"]])
        hidden = model.base_model(input_ids=ids).last_hidden_state[0, -1]
        by_hand = model.score(hidden).squeeze()
    assert torch.allclose(sides["right"], alone, atol=1e-5)
    assert torch.allclose(sides["left"], alone, atol=1e-5)
    assert torch.isclose(alone[0], by_hand, atol=1e-5)
    if family == "gpt2":
        # The plain transcript ends with EOS, which is also the pad token: transformers' own head reads the token
        # before it, so it would score every answer without having seen that it ended.
        assert enc.features[0]["input_ids"][-1] == tok.pad_token_id
        with torch.no_grad():
            own = model(**collate(tok, enc.features[:1], torch.device("cpu"))).logits.squeeze()
        assert not torch.isclose(own, alone[0], atol=1e-4)


def test_a_decoder_learns_and_prediction_is_padding_invariant(llama):
    model, tok = load_backbone(llama)
    config = TrainConfig(lr=3e-3, batch_rankings=4, max_length=64, seed=1, epochs=3, device="cpu")
    result = train(model, tok, examples(24), config)
    assert result.truncated == 0 and result.n_forwards == 24 * 4 * 3
    first, last = sum(result.losses[:3]) / 3, sum(result.losses[-3:]) / 3
    assert last < first
    right, _ = predict(model, tok, PROMPTS, ANSWERS, 64, batch_size=3)
    tok.padding_side = "left"
    left, _ = predict(model, tok, PROMPTS, ANSWERS, 64, batch_size=3)
    assert torch.allclose(right, left, atol=1e-5)


@pytest.mark.usefixtures("model_root")
def test_a_decoder_version_trains_scores_and_embeds_end_to_end(project, make_task, rater, rater2, llama):
    add_rankings(project, make_task, [rater, rater2], 8)
    own = "{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    out = run_training(project.pk, task_id="decoder", backbone=str(llama),
                       overrides={**FAST, "max_length": 64, "chat_template": own})
    version = RewardModelVersion.objects.get(pk=out["version_id"])
    assert version.metrics["train_truncated"] == 0 and version.metrics["truncation_keeps"] == "the completion's end"
    model, tok = load_backbone(version.directory)
    assert tok.chat_template == own  # saved with the version: scoring formats text as training did
    expected, _ = predict(model, tok, PROMPTS, ANSWERS, 64)
    assert torch.allclose(torch.from_numpy(scoring.score(version, PROMPTS, ANSWERS)), expected, atol=1e-5)
    features = scoring.embed(version, PROMPTS, ANSWERS)
    assert features.shape == (4, model.config.hidden_size)
    with torch.no_grad():
        head = model.score(torch.from_numpy(features)).squeeze(-1)
    assert torch.allclose(head, expected, atol=1e-4)  # the features are exactly what the head reads
