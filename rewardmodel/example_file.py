"""A snapshot's training examples on disk: one JSON line per example in an unnamed temporary file, read back one at
a time. Memory holds a file offset, a pair count and a weight per example (compact arrays), not the texts, so a
snapshot of millions of rankings fits any worker; what the trainer takes it reads when it takes it."""

from __future__ import annotations

import json
import tempfile
from array import array
from collections.abc import Iterator, Sequence

import numpy as np

from rewardmodel.examples import RankingExample


class ExampleFile(Sequence):
    """Append-only list of RankingExample (with the completions' database ids) kept in a temporary file, removed
    when the object is collected or closed."""

    def __init__(self, directory: str | None = None) -> None:
        self._file = tempfile.TemporaryFile(dir=directory)  # unnamed: nothing to clean up after a crash
        self._offsets = array("q")
        self._end = 0
        self.pair_counts = array("l")  # per example: len(pairs), for counts without reading the file
        self.weights = array("d")

    def append(self, example: RankingExample, completion_ids: list[int]) -> None:
        line = json.dumps([example.prompt, example.completions, example.pairs, example.group, example.weight,
                           completion_ids], separators=(",", ":")).encode() + b"\n"
        self._file.seek(self._end)
        self._file.write(line)
        self._offsets.append(self._end)
        self._end += len(line)
        self.pair_counts.append(len(example.pairs))
        self.weights.append(example.weight)

    def _row(self, i: int) -> list:
        self._file.seek(self._offsets[i])
        return json.loads(self._file.readline())

    def __len__(self) -> int:
        return len(self._offsets)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        prompt, completions, pairs, group, weight, _ = self._row(i)
        return RankingExample(prompt=prompt, completions=completions, pairs=[tuple(p) for p in pairs], group=group,
                              weight=weight)

    def __iter__(self) -> Iterator[RankingExample]:
        return (self[i] for i in range(len(self)))

    def completion_ids(self, i: int) -> list[int]:
        return self._row(i)[5]

    def close(self) -> None:
        self._file.close()


class Subset(Sequence):
    """Some of a sequence's examples, by index, read from it on access (a snapshot's training split). It carries
    the per-example pair counts and weights of a base that has them, so the trainer plans without reading."""

    def __init__(self, base: Sequence[RankingExample], indices) -> None:
        self.base, self.indices = base, array("q", (int(i) for i in indices))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self.base[self.indices[i]]

    def __iter__(self) -> Iterator[RankingExample]:
        return (self.base[i] for i in self.indices)

    def _picked(self, name: str):
        values = getattr(self.base, name, None)
        return None if values is None else np.asarray(values)[np.frombuffer(self.indices, dtype=np.int64)]

    @property
    def pair_counts(self):
        return self._picked("pair_counts")

    @property
    def weights(self):
        return self._picked("weights")
