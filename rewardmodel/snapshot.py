"""A frozen, hashed snapshot of a project's rankings, split held-out by prompt, or by the evaluation stream.

Two sources (``RetrainPolicy.training_source``):

- ``rankings``: one example per trainable ranking, weighted by ``Ranking.weight`` (its rater's reliability from the
  quality refresh; rankings of excluded raters weigh 0 and are left out, listed under ``zero_weight_ranking_ids``);
- ``consensus``: one example per task, its quality consensus order, with only the pairs the consensus is sure of
  (probability ≥ the project's ``consensus_threshold``); ``ranking_ids`` then lists the rankings behind them.

Once the project's evaluation stream (annotation.eval_stream: a random sample of tasks that routing never touches)
holds enough pairs to judge a version, its rankings are the held-out set and nothing else is: a version is judged on
pairs nobody chose. Until then the prompt split applies to the other rankings, and the stream's are held out too.
Either way no version ever trains on the stream.

Built streaming: rankings come from the database in batches (a server-side cursor), each batch's texts with it, and
the examples go to a file (rewardmodel.example_file) as they are made; the hash is taken as the records pass. Memory
holds a few numbers per example, not the texts: 300k rankings peak at a fraction of what a list of them took
(bench/snapshot_memory.py).
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from annotation.models import Completion, Prompt, Ranking
from annotation.pairs import ranking_to_pairs
from rewardmodel.example_file import ExampleFile
from rewardmodel.examples import RankingExample
from rewardmodel.models import RetrainPolicy

# Rankings (or tasks) per database round trip: their texts are what a batch holds in memory.
BATCH = 2000


@dataclass
class Snapshot:
    examples: ExampleFile  # a sequence of RankingExample, read from disk on access
    # Plain lists: describe() hands them to JSON (the version's stored snapshot) anyway.
    ranking_ids: list[int]  # per example: its ranking (source "rankings") or its task (source "consensus")
    prompt_ids: list[int]  # per example
    sha256: str
    prompt_groups: array  # per example: its prompt text's index among the distinct texts (the split's key)
    group_first: array  # per distinct prompt text: its first example, to read the text from
    skipped_ids: list[int] = field(default_factory=list)  # rankings with no pair (all tied): nothing to learn
    zero_weight_ids: list[int] = field(default_factory=list)  # rankings of excluded raters (weight 0)
    source: str = "rankings"
    contributing_ids: list[int] = field(default_factory=list)  # source "consensus": the rankings behind the tasks
    eval_stream: bytearray = field(default_factory=bytearray)  # per example: its task is in the evaluation stream

    split_by: str = "prompt"  # what the last split() used: "prompt" or "evaluation stream"

    @property
    def skipped_no_pairs(self) -> int:
        return len(self.skipped_ids)

    def n_pairs(self, indices: Iterable[int] | None = None) -> int:
        counts = self.examples.pair_counts
        return sum(counts) if indices is None else sum(counts[i] for i in indices)

    def split(self, fraction: float, seed: int, stream_pairs: int = 1) -> tuple[list[int], list[int]]:
        """(train indices, held-out indices). When the evaluation stream's rankings hold at least `stream_pairs`
        pairs, they are the held-out set (`fraction` and `seed` do not apply). Otherwise whole prompts go to one
        side, seeded and order-independent, and the stream's rankings are held out as well.

        A prompt's side depends only on (seed, its text), not on which other prompts exist yet nor on database
        ids: a prompt held out once stays held out as rankings arrive, so the promotion gate compares a new version
        with the active one on prompts neither has trained on; the same data split the same way in every project
        (a replay's two arms, a re-import); and two tasks with the same prompt text never straddle the split. At
        least one prompt is held out when there are two or more.
        """
        streamed = [i for i, e in enumerate(self.eval_stream) if e]
        if streamed and self.n_pairs(streamed) >= stream_pairs:
            self.split_by = "evaluation stream"
            return [i for i, e in enumerate(self.eval_stream) if not e], streamed
        self.split_by = "prompt"
        # One position per distinct prompt text (read once from the example file). Ties between two texts' 64-bit
        # positions, where the order of the texts would decide, do not happen in practice.
        position = [_unit_hash(seed, self.examples[first].prompt) for first in self.group_first]
        distinct = range(len(position))
        held = {k for k in distinct if position[k] < fraction} if len(distinct) > 1 else set()
        if fraction > 0 and len(distinct) > 1 and not held:
            held = {min(distinct, key=position.__getitem__)}
        if len(held) == len(distinct):  # keep something to train on
            held.discard(max(distinct, key=position.__getitem__))
        streamed_set = set(streamed)
        keys = self.prompt_groups
        train = [i for i, k in enumerate(keys) if k not in held and i not in streamed_set]
        heldout = [i for i, k in enumerate(keys) if k in held or i in streamed_set]
        return train, heldout

    def describe(self, train: list[int], heldout: list[int]) -> dict:
        ids = self.ranking_ids
        if self.source == "consensus":
            return {
                "source": "consensus",
                "task_ids": ids,
                "ranking_ids": self.contributing_ids,
                "sha256": self.sha256,
                "n_rankings": len(self.contributing_ids),
                "n_tasks": len(ids),
                "n_pairs": self.n_pairs(),
                "skipped_ranking_ids": self.skipped_ids,
                "split": {"by": self.split_by, "train_task_ids": [ids[i] for i in train],
                          "heldout_task_ids": [ids[i] for i in heldout],
                          "heldout_prompt_ids": sorted({self.prompt_ids[i] for i in heldout})},
            }
        weights = self.examples.weights
        return {
            "source": "rankings",
            "ranking_ids": ids,
            "zero_weight_ranking_ids": self.zero_weight_ids,
            "weights": {"min": min(weights, default=None),
                        "mean": sum(weights) / len(weights) if weights else None},
            "sha256": self.sha256,
            "n_rankings": len(ids),
            "n_pairs": self.n_pairs(),
            "skipped_no_pairs": self.skipped_no_pairs,
            "skipped_ranking_ids": self.skipped_ids,
            "split": {
                "by": self.split_by,
                "train_ranking_ids": [ids[i] for i in train],
                "heldout_ranking_ids": [ids[i] for i in heldout],
                "heldout_prompt_ids": sorted({self.prompt_ids[i] for i in heldout}),
            },
        }


class _Builder:
    """Collects a snapshot's examples as they are made: writes each to the example file, keeps its ids, its prompt
    text's group, and feeds its record to the hash."""

    def __init__(self, *head) -> None:
        self.examples = ExampleFile()
        self.ids, self.prompt_ids, self.groups, self.group_first = [], [], array("l"), array("q")
        self.evals = bytearray()
        self._group_of: dict[bytes, int] = {}  # prompt text digest → group: one entry per distinct text
        self.hash = _ListHash(*head)

    def add(self, example: RankingExample, row_id: int, prompt_id: int, prompt_digest: str, completion_ids: list[int],
            record: list, in_stream: bool) -> None:
        group = self._group_of.setdefault(bytes.fromhex(prompt_digest), len(self._group_of))
        if group == len(self.group_first):
            self.group_first.append(len(self.ids))
        self.examples.append(example, completion_ids)
        self.ids.append(row_id)
        self.prompt_ids.append(prompt_id)
        self.groups.append(group)
        self.evals.append(in_stream)
        self.hash.add(record)

    def snapshot(self, **extra) -> Snapshot:
        return Snapshot(self.examples, self.ids, self.prompt_ids, self.hash.hexdigest(), self.groups,
                        self.group_first, eval_stream=self.evals, **extra)


class _ListHash:
    """snapshot_hash of a list given item by item: the same digest without the list (or its JSON) in memory."""

    def __init__(self, *head) -> None:
        self._sha, self._first = hashlib.sha256(b"["), True
        for item in head:
            self.add(item)

    def add(self, item) -> None:
        self._sha.update((b"" if self._first else b",") + _dumps(item).encode())
        self._first = False

    def hexdigest(self) -> str:
        sha = self._sha.copy()
        sha.update(b"]")
        return sha.hexdigest()


def _dumps(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _batches(rows: Iterable, size: int = BATCH) -> Iterator[list]:
    rows = iter(rows)
    while batch := list(islice(rows, size)):
        yield batch


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _unit_hash(seed: int, key: str) -> float:
    """A stable pseudo-random number in [0, 1) for (seed, key): the same on every machine and Python."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def snapshot_hash(records: list) -> str:
    return hashlib.sha256(_dumps(records).encode()).hexdigest()


def trainable_rankings(project_id: int):
    """The rankings training learns from: unflagged ones (flagged ones are left out, as in the TRL export), not
    rejected by a reviewer, of tasks not excluded from training (the data browser's two ways to take data out), people's
    only unless the project's retrain policy includes AI judges' (``judge_rankings="weighted"``: each carries its
    judge's reliability as its weight, like a person's)."""
    rankings = (Ranking.objects.filter(task__project_id=project_id, flags=[], task__excluded_from_training=False)
                .exclude(review__decision="rejected"))
    policy = RetrainPolicy.objects.filter(project_id=project_id).values_list("judge_rankings", flat=True).first()
    return rankings if policy == RetrainPolicy.WEIGHTED else rankings.from_people()


def build_snapshot(project_id: int, ranking_ids: list[int] | None = None, source: str = "rankings") -> Snapshot:
    """The project's trainable rankings (or exactly `ranking_ids`), in id order; rankings without any pair are
    skipped. With ``source="consensus"``, the consensus of the tasks those rankings belong to."""
    if ranking_ids is not None:
        rankings = Ranking.objects.filter(task__project_id=project_id, id__in=ranking_ids)
    else:
        rankings = trainable_rankings(project_id)
    rankings = rankings.order_by("id")
    if source == "consensus":
        return _consensus_snapshot(project_id, rankings.values_list("id", "task_id").iterator(chunk_size=BATCH))
    if source != "rankings":
        raise ValueError(f"unknown training source {source!r}; choose rankings or consensus")
    rows = rankings.values_list("id", "order", "weight", "task__prompt_id", "task__eval_key").iterator(
        chunk_size=BATCH)  # a server-side cursor: the rankings come a batch at a time
    built, skipped, zero = _Builder(), [], []
    for batch in _batches(rows):
        batch_prompts = {row[3] for row in batch}
        prompts = {pk: (text, _digest(text))
                   for pk, text in Prompt.objects.filter(id__in=batch_prompts).values_list("id", "text")}
        used_ids = {int(c) for row in batch for group in row[1] for c in group}
        texts = dict(Completion.objects.filter(id__in=used_ids).values_list("id", "text"))
        for pk, ranked, weight, prompt_id, eval_key in batch:
            if weight <= 0:
                zero.append(pk)
                continue
            order = [[int(c) for c in group] for group in ranked]
            flat = [c for group in order for c in group]
            missing = [c for c in flat if c not in texts]
            if missing:
                raise ValueError(f"ranking {pk} refers to unknown completions {missing}")
            index = {c: i for i, c in enumerate(flat)}
            pairs = [(index[w], index[lo]) for w, lo in ranking_to_pairs(order)]
            if not pairs:
                skipped.append(pk)
                continue
            prompt_text, prompt_digest = prompts[prompt_id]
            example = RankingExample(prompt=prompt_text, completions=[texts[c] for c in flat], pairs=pairs,
                                     group=str(prompt_id), weight=float(weight))
            record = [pk, prompt_id, order, prompt_digest, [_digest(texts[c]) for c in flat]]
            if weight != 1.0:  # unweighted snapshots keep the hash they always had
                record.append(round(float(weight), 6))
            if eval_key is not None:  # likewise, snapshots without an evaluation stream
                record.append("eval")
            built.add(example, pk, prompt_id, prompt_digest, flat, record, eval_key is not None)
    return built.snapshot(skipped_ids=skipped, zero_weight_ids=zero)


def _consensus_snapshot(project_id: int, rankings: Iterable[tuple[int, int]]) -> Snapshot:
    """One example per task with a consensus: its order, and the pairs sure at the project's threshold."""
    from annotation.models import Project
    from quality.models import TaskConsensus

    threshold = Project.objects.values_list("consensus_threshold", flat=True).get(pk=project_id)
    behind: dict[int, list[int]] = {}  # task → its rankings' ids (ids only: the rankings themselves stay out)
    for pk, task_id in rankings:
        behind.setdefault(task_id, []).append(pk)
    built, skipped, contributing = _Builder("consensus"), [], []
    for task_ids in _batches(sorted(behind)):
        consensus = {c.task_id: c for c in TaskConsensus.objects.filter(task_id__in=task_ids).select_related(
            "task__prompt")}
        used_ids = {int(c) for row in consensus.values() for c in row.order}
        texts = dict(Completion.objects.filter(id__in=used_ids).values_list("id", "text"))
        for task_id in task_ids:
            row = consensus.get(task_id)
            if row is None:
                skipped.extend(behind[task_id])  # not refreshed yet: the next refresh gives it a consensus
                continue
            flat = [int(c) for c in row.order if int(c) in texts]
            index = {c: i for i, c in enumerate(flat)}
            pairs = [(index[int(b)], index[int(w)]) for b, w, p in row.pairs
                     if p >= threshold and int(b) in index and int(w) in index]
            if not pairs:
                skipped.extend(behind[task_id])
                continue
            prompt = row.task.prompt
            prompt_digest = _digest(prompt.text)
            example = RankingExample(prompt=prompt.text, completions=[texts[c] for c in flat], pairs=pairs,
                                     group=str(prompt.pk))
            in_stream = row.task.eval_key is not None
            record = [task_id, prompt.pk, flat, pairs, prompt_digest, [_digest(texts[c]) for c in flat]]
            if in_stream:
                record.append("eval")
            contributing.extend(behind[task_id])
            built.add(example, task_id, prompt.pk, prompt_digest, flat, record, in_stream)
    return built.snapshot(skipped_ids=skipped, source="consensus", contributing_ids=sorted(contributing))
