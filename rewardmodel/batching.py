"""Which rankings a training step takes, tokenised a chunk at a time, so that training memory does not grow with the
number of rankings.

The plan: each epoch, a seeded permutation of the rankings to train on, cut into chunks of ``batch_rankings ×
bucket_chunk`` rankings. A chunk is read (from the snapshot's example file, rewardmodel.example_file) and tokenised
only when training reaches it; within it the rankings are sorted by their longest completion (less padding), cut
into batches, and the batches shuffled. How many batches a chunk gives is known without reading it, so the total
number of steps is known up front and a resumed run skips whole chunks without tokenising them.

What memory holds for the whole run is one index per ranking (a numpy array, 8 bytes each) and one chunk's texts and
token ids; the examples themselves stay wherever the sequence keeps them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from rewardmodel.encoding import encode_pairs
from rewardmodel.examples import RankingExample


@dataclass
class Item:
    """One ranking of a batch with its completions' token features."""

    example: RankingExample
    features: list[dict[str, list[int]]]


def counts_and_weights(examples: Sequence[RankingExample]) -> tuple[np.ndarray, np.ndarray]:
    """Each example's pair count and weight. A sequence that keeps them (the example file, a subset of it) answers
    without reading any example; any other is read once."""
    counts, weights = getattr(examples, "pair_counts", None), getattr(examples, "weights", None)
    if counts is not None and weights is not None:
        return np.asarray(counts, dtype=np.int64), np.asarray(weights, dtype=np.float64)
    counts, weights = np.zeros(len(examples), dtype=np.int64), np.zeros(len(examples), dtype=np.float64)
    for i, e in enumerate(examples):
        counts[i], weights[i] = len(e.pairs), e.weight
    return counts, weights


def _trainable(counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.flatnonzero((counts > 0) & (weights > 0))


def trainable(examples: Sequence[RankingExample]) -> np.ndarray:
    """Indices of the examples with at least one pair and a weight above 0."""
    return _trainable(*counts_and_weights(examples))


class BatchPlan:
    """The batches of a run over the trainable examples, `epochs` times, in a fixed order for a given seed (every
    process of a distributed job plans the same ones)."""

    def __init__(self, examples: Sequence[RankingExample], tokenizer, *, batch_rankings: int, bucket_chunk: int,
                 epochs: int, seed: int, max_length: int, keep: str) -> None:
        counts, weights = counts_and_weights(examples)
        kept = _trainable(counts, weights)
        self.examples, self.kept, self.tokenizer = examples, kept, tokenizer
        self.pairs_per_epoch = int(counts[kept].sum())
        self.batch, self.span = batch_rankings, max(1, batch_rankings * bucket_chunk)
        self.epochs, self.seed, self.max_length, self.keep = epochs, seed, max_length, keep
        chunks = [min(self.span, len(kept) - start) for start in range(0, len(kept), self.span)]
        self.batches_per_epoch = sum(math.ceil(n / self.batch) for n in chunks)
        self.total_batches = self.batches_per_epoch * epochs
        self.truncated = 0  # completions cut to fit max_length, over the chunks tokenised so far
        self.completions_cut = 0

    def _order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.kept)

    def batches(self, skip: int = 0) -> Iterator[list[Item]]:
        """Every batch of the run after the first `skip` ones; chunks wholly skipped are neither read nor tokenised."""
        for epoch in range(self.epochs):
            if skip >= self.batches_per_epoch:
                skip -= self.batches_per_epoch
                continue
            order = self._order(epoch)
            for number, start in enumerate(range(0, len(order), self.span)):
                indices = order[start : start + self.span]
                count = math.ceil(len(indices) / self.batch)
                if skip >= count:
                    skip -= count
                    continue
                batches = self._chunk(indices, random.Random(f"{self.seed}/{epoch}/{number}"))
                yield from batches[skip:]
                skip = 0

    def _chunk(self, indices: np.ndarray, rng: random.Random) -> list[list[Item]]:
        """Read and tokenise one chunk; sort it by length, cut it into batches, shuffle them."""
        examples = [self.examples[int(i)] for i in indices]
        encoded = encode_pairs(self.tokenizer, [e.prompt for e in examples for _ in e.completions],
                               [c for e in examples for c in e.completions], self.max_length, self.keep)
        self.truncated += encoded.truncated
        self.completions_cut += encoded.completions_cut
        items, at = [], 0
        for e in examples:
            items.append(Item(e, encoded.features[at : at + len(e.completions)]))
            at += len(e.completions)
        items.sort(key=lambda item: max(len(f["input_ids"]) for f in item.features))
        batches = [items[i : i + self.batch] for i in range(0, len(items), self.batch)]
        rng.shuffle(batches)
        return batches
