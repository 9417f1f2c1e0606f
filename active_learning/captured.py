"""The policy's own outputs back to raters: captured groups (serving.capture) become K-way ranking tasks.

A GRPO step scores several completions of one prompt; kept together they are a *group*, which is exactly a K-way
ranking task. Each active-learning round (pipeline) considers the newest unrouted groups, measures how stable the
reward model's ordering of each is (the same ensemble and stability scores as the imported pool's pairs: the mean
instability of the group's pairs), and turns the least stable into tasks; when the round's strategy is ``random``
(policy ``auto`` found no strategy that helps) the groups are drawn at random instead, so capture spends rater time
the plain way. Caps keep capture from flooding the queue: ``CapturePolicy.groups_per_round`` per round and at most
``OPEN_TASKS_PER_ROUND`` × that many open policy tasks at a time.

Tasks carry ``source="policy"``; their completions name the run and step as ``model_name`` (``run@step``, exported
as ``chosen_model`` / ``rejected_model``) and in their metadata, so rankings of them export like any other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from django.db.models import Max

from active_learning.selection import RANDOM
from active_learning.stability import pair_stability
from annotation.models import Completion, Prompt, RankingTask
from serving.models import CapturedSample, CapturePolicy

SOURCE = "policy"
MAX_GROUPS_CONSIDERED = 300  # newest unrouted groups a round looks at (bounded work: each item is embedded)
OPEN_TASKS_PER_ROUND = 3  # open policy tasks allowed, in rounds' worth (groups_per_round each)


@dataclass
class Group:
    key: str
    run_name: str
    step: int | None
    prompt: str
    samples: list[CapturedSample]  # distinct completions, as kept


def open_groups(project, limit: int = MAX_GROUPS_CONSIDERED) -> list[Group]:
    """The newest captured groups with no task yet and at least two completions within the project's text limits."""
    ordered = list(CapturedSample.objects.filter(project=project, task__isnull=True).values("group_key")
                   .annotate(newest=Max("id")).order_by("-newest").values_list("group_key", flat=True)[:limit])
    by_key: dict[str, list[CapturedSample]] = {}
    for sample in (CapturedSample.objects.filter(project=project, group_key__in=ordered, task__isnull=True)
                   .select_related("run").order_by("id")):
        by_key.setdefault(sample.group_key, []).append(sample)
    groups = []
    for key in ordered:
        samples = [s for s in by_key.get(key, []) if len(s.completion) <= project.max_completion_chars]
        if len(samples) >= 2 and len(samples[0].prompt) <= project.max_prompt_chars:
            groups.append(Group(key, samples[0].run.name, samples[0].step, samples[0].prompt, samples))
    return groups


def items_of(groups: list[Group]) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """(prompts, completions, each item's group index, the within-group pairs as item indices) for scoring."""
    prompts, texts, group_of, pairs = [], [], [], []
    for g, group in enumerate(groups):
        start = len(texts)
        for sample in group.samples:
            prompts.append(group.prompt)
            texts.append(sample.completion)
            group_of.append(g)
        n = len(group.samples)
        pairs.extend((start + i, start + j) for i in range(n) for j in range(i + 1, n))
    return prompts, texts, np.array(group_of, dtype=np.int64), np.array(pairs, dtype=np.int64).reshape(-1, 2)


def group_instability(heads: np.ndarray, features: np.ndarray, scores: np.ndarray | None, group_of: np.ndarray,
                      pairs: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean instability of each group's pairs under the round's ensemble and the active version's rewards."""
    stab = pair_stability(heads, features, pairs, active_scores=scores)
    total = np.bincount(group_of[pairs[:, 0]], weights=stab.instability, minlength=n_groups)
    count = np.bincount(group_of[pairs[:, 0]], minlength=n_groups)
    return total / np.maximum(count, 1)


def choose(instability: np.ndarray, room: int, strategy: str, seed: int) -> list[int]:
    """Group indices to ask: the least stable first, or a random draw when the round's strategy is random."""
    if room <= 0 or not len(instability):
        return []
    if strategy == RANDOM:
        rng = np.random.default_rng(seed)
        return [int(i) for i in rng.permutation(len(instability))[:room]]
    return [int(i) for i in np.argsort(-instability, kind="stable")[:room]]


def room_for(project) -> tuple[int, str]:
    """How many groups this round may turn into tasks, and why not more."""
    policy = CapturePolicy.objects.filter(project=project).first()
    if policy is None or not policy.enabled or policy.groups_per_round == 0:
        return 0, "capture is off"
    open_now = RankingTask.objects.filter(project=project, source=SOURCE, status=RankingTask.OPEN).count()
    cap = OPEN_TASKS_PER_ROUND * policy.groups_per_round
    room = min(policy.groups_per_round, max(cap - open_now, 0))
    if room == 0:
        return 0, f"{open_now} policy tasks still open (at most {cap}): none added"
    return room, ""


def _spread(samples: list[CapturedSample], scores: np.ndarray, k: int) -> list[int]:
    """At most k of a group's items, spread over the reward model's order (best, worst, between)."""
    order = np.argsort(-scores, kind="stable")
    if len(order) <= k:
        return [int(i) for i in order]
    picks = np.unique(np.round(np.linspace(0, len(order) - 1, k)).astype(int))
    return [int(order[i]) for i in picks]


def make_tasks(project, groups: list[Group], picks: list[int], rewards: np.ndarray, group_of: np.ndarray,
               priority: int) -> list[int]:
    """One K-way task per picked group (at most project.k completions, spread over ``rewards``); the group's samples
    point to it. Call inside a transaction. Returns the task ids."""
    task_ids = []
    for g in picks:
        group = groups[g]
        items = np.flatnonzero(group_of == g)
        keep = _spread(group.samples, rewards[items], project.k)
        digest = hashlib.sha256(group.prompt.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        prompt, _ = Prompt.objects.get_or_create(project=project, external_id=f"policy:{digest}",
                                                 defaults={"text": group.prompt, "metadata": {"source": SOURCE}})
        label = f"{group.run_name}@{group.step}" if group.step is not None else group.run_name
        completions = [Completion.objects.create(
            prompt=prompt, model_name=label[:200], text=group.samples[i].completion,
            metadata={"policy_run": group.run_name, "step": group.step, "reward": group.samples[i].reward,
                      "version_id": group.samples[i].version_id, "captured_sample": group.samples[i].pk})
            for i in keep]
        task = RankingTask.objects.create(project=project, prompt=prompt, priority=priority, source=SOURCE)
        task.completions.set(completions)
        CapturedSample.objects.filter(project=project, group_key=group.key, task__isnull=True).update(task=task)
        task_ids.append(task.pk)
    return task_ids
