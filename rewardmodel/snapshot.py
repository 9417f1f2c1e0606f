"""A frozen, hashed snapshot of a project's rankings, split held-out by prompt."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from annotation.models import Completion, Ranking
from annotation.pairs import ranking_to_pairs
from rewardmodel.trainer import RankingExample


@dataclass
class Snapshot:
    examples: list[RankingExample]
    ranking_ids: list[int]
    prompt_ids: list[int]  # per example
    completion_ids: list[list[int]]  # per example, aligned with examples[i].completions
    sha256: str
    skipped_ids: list[int] = field(default_factory=list)  # rankings with no pair (all tied): nothing to learn

    @property
    def skipped_no_pairs(self) -> int:
        return len(self.skipped_ids)

    def split(self, fraction: float, seed: int) -> tuple[list[int], list[int]]:
        """(train indices, held-out indices): whole prompts go to one side, seeded and order-independent.

        A prompt's side depends only on (seed, its text), not on which other prompts exist yet nor on database
        ids: a prompt held out once stays held out as rankings arrive, so the promotion gate compares a new version
        with the active one on prompts neither has trained on; the same data split the same way in every project
        (a replay's two arms, a re-import); and two tasks with the same prompt text never straddle the split. At
        least one prompt is held out when there are two or more.
        """
        keys = [e.prompt for e in self.examples]
        distinct = sorted(set(keys))
        position = {k: _unit_hash(seed, k) for k in distinct}
        held = {k for k in distinct if position[k] < fraction} if len(distinct) > 1 else set()
        if fraction > 0 and len(distinct) > 1 and not held:
            held = {min(distinct, key=position.__getitem__)}
        if len(held) == len(distinct):  # keep something to train on
            held.discard(max(distinct, key=position.__getitem__))
        train = [i for i, k in enumerate(keys) if k not in held]
        heldout = [i for i, k in enumerate(keys) if k in held]
        return train, heldout

    def describe(self, train: list[int], heldout: list[int]) -> dict:
        return {
            "ranking_ids": self.ranking_ids,
            "sha256": self.sha256,
            "n_rankings": len(self.ranking_ids),
            "n_pairs": sum(len(e.pairs) for e in self.examples),
            "skipped_no_pairs": self.skipped_no_pairs,
            "skipped_ranking_ids": self.skipped_ids,
            "split": {
                "by": "prompt",
                "train_ranking_ids": [self.ranking_ids[i] for i in train],
                "heldout_ranking_ids": [self.ranking_ids[i] for i in heldout],
                "heldout_prompt_ids": sorted({self.prompt_ids[i] for i in heldout}),
            },
        }


def _unit_hash(seed: int, key: str) -> float:
    """A stable pseudo-random number in [0, 1) for (seed, key): the same on every machine and Python."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def snapshot_hash(records: list) -> str:
    return hashlib.sha256(json.dumps(records, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def trainable_rankings(project_id: int):
    """The rankings training learns from: unflagged ones (flagged ones are left out, as in the TRL export)."""
    return Ranking.objects.filter(task__project_id=project_id, flags=[])


def build_snapshot(project_id: int, ranking_ids: list[int] | None = None) -> Snapshot:
    """The project's trainable rankings (or exactly `ranking_ids`), in id order; rankings without any pair are
    skipped."""
    if ranking_ids is not None:
        rankings = Ranking.objects.filter(task__project_id=project_id, id__in=ranking_ids)
    else:
        rankings = trainable_rankings(project_id)
    rankings = rankings.select_related("task__prompt").order_by("id")
    rankings = list(rankings)
    used_ids = {cid for r in rankings for group in r.order for cid in group}
    texts = dict(Completion.objects.filter(id__in=used_ids).values_list("id", "text"))
    examples, ids, prompt_ids, comp_ids, records, skipped = [], [], [], [], [], []
    for r in rankings:
        order = [[int(c) for c in group] for group in r.order]
        flat = [c for group in order for c in group]
        missing = [c for c in flat if c not in texts]
        if missing:
            raise ValueError(f"ranking {r.pk} refers to unknown completions {missing}")
        index = {c: i for i, c in enumerate(flat)}
        pairs = [(index[w], index[lo]) for w, lo in ranking_to_pairs(order)]
        if not pairs:
            skipped.append(r.pk)
            continue
        prompt = r.task.prompt
        examples.append(RankingExample(prompt=prompt.text, completions=[texts[c] for c in flat], pairs=pairs,
                                       group=str(prompt.pk)))
        ids.append(r.pk)
        prompt_ids.append(prompt.pk)
        comp_ids.append(flat)
        records.append([r.pk, prompt.pk, order, hashlib.sha256(prompt.text.encode()).hexdigest(),
                        [hashlib.sha256(texts[c].encode()).hexdigest() for c in flat]])
    return Snapshot(examples, ids, prompt_ids, comp_ids, snapshot_hash(records), skipped)
