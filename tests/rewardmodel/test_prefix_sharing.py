"""Prefix sharing (issue 25, item 2): a decoder runs a ranking's prompt once for its K completions, packed in one row
with a 4D mask (rewardmodel.prefix_sharing), and gets the same rewards, losses and gradients as one sequence per
completion; training with it learns the same; encoders are left as they are. Tiny random backbones, fp32."""

from __future__ import annotations

import random

import pytest
import torch

from rewardmodel import prefix_sharing, readout
from rewardmodel.backbones import load_backbone
from rewardmodel.encoding import encode_pairs
from rewardmodel.examples import RankingExample
from rewardmodel.testing import GOOD, make_tiny_backbone, make_tiny_decoder, synthetic_completions
from rewardmodel.trainer import TrainConfig, collate, predict, ranking_loss, train

CPU = torch.device("cpu")
WORDS = "what is the answer please explain why how the tide works in a few words of sky blue".split()


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return make_tiny_decoder(tmp_path_factory.mktemp("llama") / "backbone", "llama", hidden=64, layers=2)


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    return make_tiny_decoder(tmp_path_factory.mktemp("gpt2") / "backbone", "gpt2", hidden=64, layers=2)


def rankings(k: int, n: int = 5, seed: int = 0, long_prompts: bool = False) -> list[RankingExample]:
    """n rankings of k completions, prompts of varied lengths (a few to ~40 words), best completion first."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = rng.randint(30, 120) if long_prompts else rng.randint(2, 40)
        prompt = " ".join(rng.choice(WORDS) for _ in range(words))
        comps = sorted(synthetic_completions(rng, k), key=lambda c: -c[1])
        pairs = [(a, b) for a in range(k) for b in range(a + 1, k)]
        out.append(RankingExample(f"{prompt} {i}?", [c for c, _ in comps], pairs, str(i)))
    return out


def both_ways(model, tok, examples, max_length):
    """(unshared rewards, shared rewards, unshared inputs, packed inputs) for the rankings' completions, in order."""
    enc = encode_pairs(tok, [e.prompt for e in examples for _ in e.completions],
                       [c for e in examples for c in e.completions], max_length)
    groups, start = [], 0
    for e in examples:
        groups.append([f["input_ids"] for f in enc.features[start : start + len(e.completions)]])
        start += len(e.completions)
    unshared = collate(tok, enc.features, CPU)
    packed = prefix_sharing.pack(groups, tok.pad_token_id, CPU, prefix_sharing.mask_kind(model))
    return readout.rewards(model, unshared), readout.rewards(model, packed), unshared, packed, enc


def with_attention(path, implementation):
    model, tok = load_backbone(path)
    model.set_attn_implementation(implementation)
    return model.eval(), tok


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("side", ["right", "left"])
def test_shared_rewards_equal_one_sequence_per_completion(llama, implementation, k, side):
    model, tok = with_attention(llama, implementation)
    tok.padding_side = side
    examples = rankings(k, n=6, seed=k)
    with torch.no_grad():
        alone, shared, unshared, packed, _ = both_ways(model, tok, examples, 256)
    assert (alone - shared).abs().max().item() < 1e-4
    # The prompt's tokens are run once per ranking, not k times.
    assert packed["input_ids"].numel() < unshared["input_ids"].numel()
    assert int((packed["position_ids"] > 0).sum()) < int(unshared["attention_mask"].sum())


def test_truncation_that_cuts_prompts_differently_shares_less_and_still_agrees(llama):
    model, tok = with_attention(llama, "sdpa")
    prompt = " ".join(f"w{i}" for i in range(60))
    long_answer = " ".join(GOOD[:2])  # fits alone, but leaves less room for the prompt than "ok"
    examples = [RankingExample(prompt, ["ok", long_answer, "wrong nonsense"], [(0, 1), (0, 2), (1, 2)], "cut"),
                RankingExample(prompt, ["ok", " ".join(f"a{i}" for i in range(200))], [(0, 1)], "completion cut"),
                RankingExample("short", ["fine", "also fine"], [(0, 1)], "fits")]
    with torch.no_grad():
        alone, shared, _, packed, enc = both_ways(model, tok, examples, 48)
    assert enc.truncated >= 3 and enc.completions_cut == 1
    assert (alone - shared).abs().max().item() < 1e-4
    # The long completion cut its prompt more: the first ranking shares less than its uncut prompt.
    first = [f["input_ids"] for f in enc.features[:3]]
    assert prefix_sharing.shared_prefix(first) < prefix_sharing.shared_prefix(first[::2])


@pytest.mark.parametrize("k", [2, 4])
def test_loss_and_gradients_equal_unshared(llama, k):
    examples = rankings(k, n=4, seed=10 + k)
    pair_index = torch.tensor([(r * k + w, r * k + lo) for r, e in enumerate(examples) for w, lo in e.pairs])
    pair_owner = torch.tensor([r for r, e in enumerate(examples) for _ in e.pairs])
    grads, losses = [], []
    for shared in (False, True):
        model, tok = with_attention(llama, "sdpa")
        model.train()
        alone, packed_rewards, *_ = both_ways(model, tok, examples, 256)
        loss = ranking_loss(packed_rewards if shared else alone, pair_index, pair_owner, len(examples), 0.0, 0.01)
        loss.backward()
        losses.append(loss.item())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert abs(losses[0] - losses[1]) < 1e-5
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) == sum(1 for _ in model.parameters())
    for name, grad in grads[0].items():
        assert torch.allclose(grad, grads[1][name], atol=1e-5, rtol=1e-3), name


def test_gpt2_shares_too(gpt2):
    model, tok = with_attention(gpt2, "sdpa")
    with torch.no_grad():
        alone, shared, *_ = both_ways(model, tok, rankings(3, n=4), 128)
    assert (alone - shared).abs().max().item() < 1e-4


def test_shared_prefix_leaves_every_completion_a_token_of_its_own():
    assert prefix_sharing.shared_prefix([[1, 2, 3, 4], [1, 2, 5]]) == 2
    assert prefix_sharing.shared_prefix([[1, 2, 3], [1, 2, 3]]) == 2  # identical: the last token stays each one's own
    assert prefix_sharing.shared_prefix([[1, 2], [1, 2, 3]]) == 1
    assert prefix_sharing.shared_prefix([[7], [8, 9]]) == 0


def test_only_masks_the_attention_applies_as_given(llama, tmp_path):
    model, _ = with_attention(llama, "sdpa")
    assert prefix_sharing.mask_kind(model) == "bool"
    model.set_attn_implementation("eager")
    assert prefix_sharing.mask_kind(model) == "additive"
    model.config._attn_implementation = "flash_attention_2"  # reads a 2D padding mask only (not installed here)
    assert prefix_sharing.mask_kind(model) is None
    model.config._attn_implementation = "sdpa"
    model.config.sliding_window = 16
    assert prefix_sharing.mask_kind(model) is None and prefix_sharing.mask_kind(model, max_length=32) is None
    assert prefix_sharing.mask_kind(model, max_length=16) == "bool"  # a window no sequence outgrows cuts nothing
    encoder, _ = load_backbone(make_tiny_backbone(tmp_path / "bert"))
    assert prefix_sharing.mask_kind(encoder) is None


def heldout_accuracy(model, tok, held: list[RankingExample]) -> float:
    r, _ = predict(model, tok, [e.prompt for e in held for _ in e.completions],
                   [c for e in held for c in e.completions], 128)
    wins, total, start = 0, 0, 0
    for e in held:
        wins += sum(bool(r[start + w] > r[start + lo]) for w, lo in e.pairs)
        total += len(e.pairs)
        start += len(e.completions)
    return wins / total


def test_training_with_a_shared_prompt_learns_the_same(llama):
    train_set, held = rankings(4, n=32, seed=1), rankings(4, n=16, seed=2)
    runs = {}
    for share in (False, True):
        model, tok = load_backbone(llama)
        config = TrainConfig(lr=3e-3, batch_rankings=4, max_length=128, seed=1, epochs=2, device="cpu",
                             share_prompt=share)
        result = train(model, tok, train_set, config)
        runs[share] = result, heldout_accuracy(model, tok, held)
    (off, off_acc), (on, on_acc) = runs[False], runs[True]
    assert on.resolved["share_prompt"] and not off.resolved["share_prompt"]
    assert on.n_forwards == off.n_forwards and on.steps == off.steps  # the same batches, in the same order
    assert max(abs(a - b) for a, b in zip(on.losses, off.losses, strict=True)) < 1e-3
    assert on_acc == off_acc and on_acc > 0.75


def test_the_flag_does_nothing_for_an_encoder(tmp_path):
    path = make_tiny_backbone(tmp_path / "bert")
    train_set = rankings(3, n=8, seed=3)
    runs = []
    for share in (False, True):
        model, tok = load_backbone(path)
        runs.append(train(model, tok, train_set, TrainConfig(batch_rankings=4, max_length=64, seed=0, device="cpu",
                                                             share_prompt=share)))
    assert runs[0].losses == runs[1].losses
    assert not runs[0].resolved["share_prompt"] and not runs[1].resolved["share_prompt"]


def test_a_batch_whose_mask_would_be_too_big_runs_unshared(llama, monkeypatch):
    train_set = rankings(2, n=6, seed=4)
    config = {"batch_rankings": 3, "max_length": 128, "seed": 0, "device": "cpu"}
    plain = train(*load_backbone(llama), train_set, TrainConfig(**config, share_prompt=False))
    monkeypatch.setattr(prefix_sharing, "MAX_MASK_ELEMENTS", 1)
    fallback = train(*load_backbone(llama), train_set, TrainConfig(**config))
    assert fallback.losses == plain.losses  # every batch ran one sequence per completion, exactly as unshared
    groups = [[[1, 2, 3, 4], [1, 2, 5]]]
    assert prefix_sharing.packed_width(groups[0]) == 5 and not prefix_sharing.mask_fits(groups)


@pytest.mark.usefixtures("model_root")
def test_two_processes_sharing_prompts_take_the_single_process_steps(llama, tmp_path):
    from rewardmodel import distributed

    config = TrainConfig(lr=2e-3, batch_rankings=5, max_length=128, seed=4, device="cpu", num_threads=1)
    data = rankings(3, n=12, seed=5)  # batches of 5, 5 and 2: each process packs its share of every batch
    single = train(*load_backbone(llama), data, config)
    double = distributed.run(tmp_path / "job", str(llama), config, data, tmp_path / "ckpt.pt", 0, per_node=2)
    assert single.resolved["share_prompt"] and double.steps == single.steps == 3
    assert max(abs(a - b) for a, b in zip(double.losses, single.losses, strict=True)) < 1e-4
