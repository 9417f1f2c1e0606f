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
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from annotation.models import Completion, Ranking
from annotation.pairs import ranking_to_pairs
from rewardmodel.examples import RankingExample
from rewardmodel.models import RetrainPolicy


@dataclass
class Snapshot:
    examples: list[RankingExample]
    ranking_ids: list[int]  # per example: its ranking (source "rankings") or its task (source "consensus")
    prompt_ids: list[int]  # per example
    completion_ids: list[list[int]]  # per example, aligned with examples[i].completions
    sha256: str
    skipped_ids: list[int] = field(default_factory=list)  # rankings with no pair (all tied): nothing to learn
    zero_weight_ids: list[int] = field(default_factory=list)  # rankings of excluded raters (weight 0)
    source: str = "rankings"
    contributing_ids: list[int] = field(default_factory=list)  # source "consensus": the rankings behind the tasks
    eval_stream: list[bool] = field(default_factory=list)  # per example: its task is in the evaluation stream

    split_by: str = "prompt"  # what the last split() used: "prompt" or "evaluation stream"

    @property
    def skipped_no_pairs(self) -> int:
        return len(self.skipped_ids)

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
        if streamed and sum(len(self.examples[i].pairs) for i in streamed) >= stream_pairs:
            self.split_by = "evaluation stream"
            return [i for i, e in enumerate(self.eval_stream) if not e], streamed
        self.split_by = "prompt"
        keys = [e.prompt for e in self.examples]
        distinct = sorted(set(keys))
        position = {k: _unit_hash(seed, k) for k in distinct}
        held = {k for k in distinct if position[k] < fraction} if len(distinct) > 1 else set()
        if fraction > 0 and len(distinct) > 1 and not held:
            held = {min(distinct, key=position.__getitem__)}
        if len(held) == len(distinct):  # keep something to train on
            held.discard(max(distinct, key=position.__getitem__))
        streamed_set = set(streamed)
        train = [i for i, k in enumerate(keys) if k not in held and i not in streamed_set]
        heldout = [i for i, k in enumerate(keys) if k in held or i in streamed_set]
        return train, heldout

    def describe(self, train: list[int], heldout: list[int]) -> dict:
        if self.source == "consensus":
            return {
                "source": "consensus",
                "task_ids": self.ranking_ids,
                "ranking_ids": self.contributing_ids,
                "sha256": self.sha256,
                "n_rankings": len(self.contributing_ids),
                "n_tasks": len(self.ranking_ids),
                "n_pairs": sum(len(e.pairs) for e in self.examples),
                "skipped_ranking_ids": self.skipped_ids,
                "split": {"by": self.split_by, "train_task_ids": [self.ranking_ids[i] for i in train],
                          "heldout_task_ids": [self.ranking_ids[i] for i in heldout],
                          "heldout_prompt_ids": sorted({self.prompt_ids[i] for i in heldout})},
            }
        return {
            "source": "rankings",
            "ranking_ids": self.ranking_ids,
            "zero_weight_ranking_ids": self.zero_weight_ids,
            "weights": {"min": min((e.weight for e in self.examples), default=None),
                        "mean": sum(e.weight for e in self.examples) / len(self.examples) if self.examples else None},
            "sha256": self.sha256,
            "n_rankings": len(self.ranking_ids),
            "n_pairs": sum(len(e.pairs) for e in self.examples),
            "skipped_no_pairs": self.skipped_no_pairs,
            "skipped_ranking_ids": self.skipped_ids,
            "split": {
                "by": self.split_by,
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
    rankings = rankings.select_related("task__prompt").order_by("id")
    if source == "consensus":
        return _consensus_snapshot(project_id, list(rankings))
    if source != "rankings":
        raise ValueError(f"unknown training source {source!r}; choose rankings or consensus")
    rankings = list(rankings)
    used_ids = {cid for r in rankings for group in r.order for cid in group}
    texts = dict(Completion.objects.filter(id__in=used_ids).values_list("id", "text"))
    examples, ids, prompt_ids, comp_ids, records, skipped, zero, evals = [], [], [], [], [], [], [], []
    for r in rankings:
        if r.weight <= 0:
            zero.append(r.pk)
            continue
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
                                       group=str(prompt.pk), weight=float(r.weight)))
        ids.append(r.pk)
        prompt_ids.append(prompt.pk)
        comp_ids.append(flat)
        record = [r.pk, prompt.pk, order, hashlib.sha256(prompt.text.encode()).hexdigest(),
                  [hashlib.sha256(texts[c].encode()).hexdigest() for c in flat]]
        if r.weight != 1.0:  # unweighted snapshots keep the hash they always had
            record.append(round(float(r.weight), 6))
        evals.append(r.task.eval_key is not None)
        if evals[-1]:  # likewise, snapshots without an evaluation stream
            record.append("eval")
        records.append(record)
    return Snapshot(examples, ids, prompt_ids, comp_ids, snapshot_hash(records), skipped, zero, eval_stream=evals)


def _consensus_snapshot(project_id: int, rankings: list[Ranking]) -> Snapshot:
    """One example per task with a consensus: its order, and the pairs sure at the project's threshold."""
    from annotation.models import Project
    from quality.models import TaskConsensus

    threshold = Project.objects.values_list("consensus_threshold", flat=True).get(pk=project_id)
    task_ids = sorted({r.task_id for r in rankings})
    behind: dict[int, list[int]] = {}
    for r in rankings:
        behind.setdefault(r.task_id, []).append(r.pk)
    consensus = {c.task_id: c for c in TaskConsensus.objects.filter(task_id__in=task_ids).select_related(
        "task__prompt")}
    used_ids = {int(c) for row in consensus.values() for c in row.order}
    texts = dict(Completion.objects.filter(id__in=used_ids).values_list("id", "text"))
    examples, ids, prompt_ids, comp_ids, records, skipped, contributing, evals = [], [], [], [], [], [], [], []
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
        examples.append(RankingExample(prompt=prompt.text, completions=[texts[c] for c in flat], pairs=pairs,
                                       group=str(prompt.pk)))
        ids.append(task_id)
        prompt_ids.append(prompt.pk)
        comp_ids.append(flat)
        contributing.extend(behind[task_id])
        records.append([task_id, prompt.pk, flat, pairs, hashlib.sha256(prompt.text.encode()).hexdigest(),
                        [hashlib.sha256(texts[c].encode()).hexdigest() for c in flat]])
        evals.append(row.task.eval_key is not None)
        if evals[-1]:
            records[-1].append("eval")
    return Snapshot(examples, ids, prompt_ids, comp_ids, snapshot_hash(["consensus", *records]), skipped,
                    source="consensus", contributing_ids=sorted(contributing), eval_stream=evals)
