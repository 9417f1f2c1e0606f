"""Pure functions of the reward-model app: pairs from rankings, encoding/truncation, loss, metrics, reproducibility."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from annotation.pairs import ranking_to_pairs
from rewardmodel import metrics
from rewardmodel.backbones import default_backbone_path, load_backbone
from rewardmodel.encoding import encode_pairs
from rewardmodel.testing import make_tiny_backbone, synthetic_completions
from rewardmodel.trainer import RankingExample, TrainConfig, predict, ranking_loss, train


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_backbone(tmp_path_factory.mktemp("tiny") / "backbone")


def examples(n: int, seed: int = 0) -> list[RankingExample]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        comps = synthetic_completions(rng)
        order = sorted(range(len(comps)), key=lambda j: -comps[j][1])
        pairs = [(order[a], order[b]) for a in range(len(order)) for b in range(a + 1, len(order))]
        out.append(RankingExample(f"question {i}?", [c for c, _ in comps], pairs, str(i)))
    return out


def test_ranking_to_pairs_k4_gives_six_pairs_best_first():
    assert ranking_to_pairs([[3], [1], [4], [2]]) == [(3, 1), (3, 4), (3, 2), (1, 4), (1, 2), (4, 2)]


def test_ties_give_no_pair():
    assert ranking_to_pairs([[12], [10, 13], [11]]) == [(12, 10), (12, 13), (12, 11), (10, 11), (13, 11)]
    assert ranking_to_pairs([[1, 2, 3]]) == []


def test_default_backbone_is_the_packaged_minilm():
    path = default_backbone_path()
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def test_truncation_keeps_completion_and_is_counted(tiny):
    _, tok = load_backbone(tiny)
    long_prompt = "context " * 200
    enc = encode_pairs(tok, [long_prompt, "short?"], ["the answer is yes", "fine"], max_length=24)
    assert enc.truncated == 1 and len(enc.features) == 2
    ids = enc.features[0]["input_ids"]
    assert len(ids) == 24
    assert tok.decode(ids, skip_special_tokens=True).endswith("the answer is yes")
    enc2 = encode_pairs(tok, ["q"], ["word " * 100], max_length=16)  # completion alone too long: both cut, kept
    assert enc2.truncated == 1 and len(enc2.features[0]["input_ids"]) == 16


def test_ranking_loss_averages_pairs_per_ranking():
    rewards = torch.tensor([2.0, 0.0, 1.0, 0.0, 0.0])
    pairs = torch.tensor([[0, 1], [0, 2], [1, 2], [3, 4]])
    owner = torch.tensor([0, 0, 0, 1])
    loss = ranking_loss(rewards, pairs, owner, 2, margin=0.0, center_coef=0.0)
    f = torch.nn.functional.logsigmoid
    first = -(f(torch.tensor(2.0)) + f(torch.tensor(1.0)) + f(torch.tensor(-1.0))) / 3
    expected = (first - f(torch.tensor(0.0))) / 2
    assert torch.isclose(loss, expected)
    with_margin = ranking_loss(rewards, pairs, owner, 2, margin=1.0, center_coef=0.0)
    assert with_margin > loss


def test_training_is_reproducible_and_learns(tiny):
    config = TrainConfig(lr=2e-3, batch_rankings=4, max_length=32, seed=7, epochs=2, device="cpu")
    runs = []
    for _ in range(2):
        model, tok = load_backbone(tiny)
        result = train(model, tok, examples(24), config)
        runs.append(result)
    assert runs[0].losses == runs[1].losses
    assert runs[0].n_forwards == 24 * 4 * 2  # one forward per completion, not per pair
    assert runs[0].n_pairs == 24 * 6 * 2
    other = train(*load_backbone(tiny), examples(24), TrainConfig(lr=2e-3, batch_rankings=4, max_length=32, seed=8))
    assert other.losses != runs[0].losses[: len(other.losses)]


def test_training_leaves_torchs_global_settings_as_it_found_them(tiny):
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    train(*load_backbone(tiny), examples(4), TrainConfig(batch_rankings=2, max_length=32, device="cpu", num_threads=1,
                                                         deterministic=True))
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == (threads, deterministic)


def test_dropout_is_off_while_training_unless_asked_for(tiny):
    def dropout_rates(model):
        return {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}

    model, tok = load_backbone(tiny)
    assert dropout_rates(model) - {0.0}, "the tiny config should carry some dropout to switch off"
    train(model, tok, examples(4), TrainConfig(batch_rankings=2, max_length=32, device="cpu"))
    assert dropout_rates(model) == {0.0}
    kept, tok = load_backbone(tiny)
    before = dropout_rates(kept)
    train(kept, tok, examples(4), TrainConfig(batch_rankings=2, max_length=32, device="cpu", disable_dropout=False))
    assert dropout_rates(kept) == before


def test_predict_matches_batch_order(tiny):
    model, tok = load_backbone(tiny)
    prompts, comps = ["a", "b b b b b b", "c c"], ["x", "y y y y", "z"]
    together, _ = predict(model, tok, prompts, comps, batch_size=2)
    alone = torch.cat([predict(model, tok, [p], [c])[0] for p, c in zip(prompts, comps, strict=True)])
    assert torch.allclose(together, alone, atol=1e-5)


def test_calibration_metrics():
    rng = np.random.default_rng(0)
    diffs = rng.normal(3.0, 2.0, 2000)  # overconfident-ish scores, mostly correct
    cal = metrics.calibration(diffs, seed=0)
    assert cal["temperature"] > 0 and 0 <= cal["ece_after"] <= cal["ece_before"] + 1e-9
    assert sum(b["count"] for b in cal["reliability_after"]) == 2000
    assert metrics.pairwise_accuracy(np.array([1.0, -1.0, 0.0, 2.0])) == pytest.approx(0.625)
    assert metrics.flip_rate(np.array([1.0, -1.0]), np.array([1.0, 1.0])) == 0.5
    corr = metrics.length_correlation(np.arange(10.0), np.arange(10.0) * 3)
    assert corr["pearson"] == pytest.approx(1.0) and corr["spearman"] == pytest.approx(1.0)
    assert metrics.clean({"a": float("nan"), "b": [float("inf"), 1.0]}) == {"a": None, "b": [None, 1.0]}
