"""Training reads and tokenises its rankings a chunk at a time (rewardmodel.batching): every ranking once per epoch,
the same plan for the same seed, a resumed run skipping what it trained on without reading it, and a run that reads
no more of the snapshot than the chunks it reached."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import pytest

from rewardmodel.backbones import load_backbone, load_tokenizer
from rewardmodel.batching import BatchPlan, trainable
from rewardmodel.example_file import ExampleFile, Subset
from rewardmodel.examples import RankingExample
from rewardmodel.testing import synthetic_completions
from rewardmodel.trainer import TrainConfig, TrainingInterrupted, train


def examples(n: int, seed: int = 0) -> list[RankingExample]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        comps = synthetic_completions(rng, k=2 + i % 3)
        order = sorted(range(len(comps)), key=lambda j: -comps[j][1])
        pairs = [(order[a], order[b]) for a in range(len(order)) for b in range(a + 1, len(order))]
        out.append(RankingExample(f"question {i}? " + "why " * (i % 7), [c for c, _ in comps], pairs, str(i)))
    return out


class CountingReads(Sequence):
    """A sequence of examples that counts how many times one was read."""

    def __init__(self, items: list[RankingExample]) -> None:
        self.items, self.reads = items, 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        item = self.items[i]  # past the end: IndexError, which ends a plain iteration and is not a read
        self.reads += 1
        return item


def plan(data, tokenizer, **overrides) -> BatchPlan:
    settings = {"batch_rankings": 4, "bucket_chunk": 3, "epochs": 2, "seed": 5, "max_length": 32, "keep": "end"}
    return BatchPlan(data, tokenizer, **{**settings, **overrides})


@pytest.fixture(scope="module")
def tokenizer(tiny):
    return load_tokenizer(tiny)


def test_every_ranking_once_per_epoch_in_length_sorted_batches(tokenizer):
    data = examples(50)
    data[3] = RankingExample("tie only", ["a", "b"], [], "3")  # no pair: not trained on
    data[8] = RankingExample("weightless", ["a", "b"], [(0, 1)], "8", weight=0.0)
    p = plan(data, tokenizer)
    batches = list(p.batches())
    assert len(batches) == p.total_batches == 2 * 4 * 3  # 48 rankings: 4 chunks of 12 → 3 batches each
    seen = [item.example.group for batch in batches for item in batch]
    assert sorted(seen) == sorted([e.group for e in data if e.pairs and e.weight > 0] * 2)
    first_epoch = seen[: len(seen) // 2]
    assert len(set(first_epoch)) == 48
    for batch in batches:  # one chunk's batches come from one sorted run: lengths within a batch are close
        assert all(len(item.features) == len(item.example.completions) for item in batch)


def test_the_plan_is_fixed_by_the_seed_and_a_skip_is_its_tail(tokenizer):
    data = examples(40)
    whole = [[item.example.group for item in b] for b in plan(data, tokenizer).batches()]
    again = [[item.example.group for item in b] for b in plan(data, tokenizer).batches()]
    other = [[item.example.group for item in b] for b in plan(data, tokenizer, seed=6).batches()]
    assert whole == again and whole != other
    for skip in (0, 1, 3, 4, 11, len(whole) - 1, len(whole)):
        assert [[item.example.group for item in b] for b in plan(data, tokenizer).batches(skip)] == whole[skip:]


def test_skipped_chunks_are_neither_read_nor_tokenised(tokenizer):
    counting = CountingReads(examples(40))
    p = plan(counting, tokenizer, epochs=1)
    counting.reads = 0  # trainable() read each once to find its pairs
    tail = list(p.batches(skip=7))  # chunks of 12 rankings → 3 batches each: the first two chunks are skipped
    assert counting.reads == 40 - 24 and sum(len(b) for b in tail) == 16 - 4


def test_the_example_file_and_its_subsets_answer_without_reading(tokenizer):
    stored = ExampleFile()
    for i, e in enumerate(examples(30)):
        if i == 4:
            e = RankingExample(e.prompt, e.completions, [], e.group)
        stored.append(e, list(range(len(e.completions))))
    assert list(trainable(stored)) == [i for i in range(30) if i != 4]
    subset = Subset(stored, [0, 4, 9, 29])
    assert list(trainable(subset)) == [0, 2, 3] and subset[2].group == "9" and len(subset) == 4
    assert [e.group for e in subset] == ["0", "4", "9", "29"]


def test_training_reads_only_the_chunks_it_reaches(tiny):
    counting = CountingReads(examples(200))
    config = TrainConfig(batch_rankings=4, bucket_chunk=2, max_length=32, device="cpu", seed=1)
    steps = []

    def stop_after_three():
        return len(steps) >= 3

    with pytest.raises(TrainingInterrupted):
        train(*load_backbone(tiny), counting, config, progress=lambda s, t, loss: steps.append(s),
              should_stop=stop_after_three)
    # 200 reads to find the pairs, then two chunks of 8 rankings for three steps of 4: not the other 184
    assert counting.reads == 200 + 16


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tiny):
    data = examples(60)
    config = TrainConfig(batch_rankings=4, bucket_chunk=2, max_length=24, device="cpu", seed=3, epochs=2, lr=1e-3)
    whole = train(*load_backbone(tiny), data, config)
    saved, steps = {}, []
    with pytest.raises(TrainingInterrupted):
        train(*load_backbone(tiny), data, config, progress=lambda s, t, loss: steps.append(s),
              should_stop=lambda: len(steps) == 11, checkpoint=saved.update)
    resumed = train(*load_backbone(tiny), data, config, resume=saved)
    assert resumed.resumed_from == 11 and resumed.steps == whole.steps == 30
    np.testing.assert_allclose(resumed.losses, whole.losses, rtol=1e-5)
    assert (resumed.truncated, resumed.completions_cut) == (whole.truncated, whole.completions_cut)
    assert whole.truncated > 0  # max_length 24 cuts the longer prompts, so the count carried over is tested
