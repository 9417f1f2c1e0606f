"""Evaluation sets: held-out preference pairs a project attaches, scored by every version it trains afterwards.

A file of pairs (JSONL, JSONL.gz or Parquet), read like imported preference data (``annotation.preference_import``:
``prompt``/``chosen``/``rejected``, HH-RLHF transcripts, chat messages) plus an optional ``subset`` per pair, as in
RewardBench (``chat``, ``safety``, ``reasoning``…). After each training, ``evaluate`` scores both answers of every pair
in fp32 and reports accuracy per subset and overall, each with a 95 % Wilson interval, into the version's metrics
(``eval_sets``), which the admin's version page shows beside the held-out split. Eval pairs never train a model.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
from django.db import transaction

from annotation.importer import ImportFailed, TextLimits, _check_storable, _LineError
from annotation.models import Project
from annotation.preference_import import parse_row, read_rows
from quality.agreement import wilson
from rewardmodel.metrics import pairwise_accuracy
from rewardmodel.models import EvalPair, EvalSet

MAX_ERRORS = 50
MAX_SUBSET_CHARS = 100


def add_eval_set(project: Project, name: str, path: Path, replace: bool = False) -> EvalSet:
    """Read every pair of `path` into a new evaluation set (or, with `replace`, a fresh copy of one); all or nothing."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ImportFailed([(0, "the evaluation set's name must be 1 to 100 characters")])
    if EvalSet.objects.filter(project=project, name=name).exists() and not replace:
        raise ImportFailed([(0, f"project {project.name!r} already has an evaluation set {name!r} (replace it?)")])
    limits = TextLimits.of(project)
    rows, _ = read_rows(Path(path))
    pairs, errors = [], []
    for number, obj in rows:
        try:
            if isinstance(obj, _LineError):
                raise obj
            subset = ""
            if isinstance(obj, dict) and obj.get("subset") is not None:
                obj = dict(obj)
                subset = obj.pop("subset")
                if not isinstance(subset, str) or len(subset) > MAX_SUBSET_CHARS:
                    raise _LineError(f"'subset' must be a string of at most {MAX_SUBSET_CHARS} characters")
                _check_storable(subset, "'subset'")
            row = parse_row(obj, number, limits)
            if row.order != [[0], [1]]:  # a 2-way ranking is a pair too
                raise _LineError("an evaluation set holds pairs (prompt, chosen, rejected), not rankings")
            pairs.append(EvalPair(prompt=row.prompt, chosen=row.completions[0][0], rejected=row.completions[1][0],
                                  subset=subset))
        except _LineError as exc:
            errors.append((number, str(exc)))
            if len(errors) >= MAX_ERRORS:
                break
    if not pairs and not errors:
        errors.append((0, "the file has no pairs"))
    if errors:
        raise ImportFailed(errors)
    with transaction.atomic():
        EvalSet.objects.filter(project=project, name=name).delete()
        eval_set = EvalSet.objects.create(project=project, name=name, source=Path(path).name)
        for pair in pairs:
            pair.eval_set = eval_set
        EvalPair.objects.bulk_create(pairs, batch_size=1000)
    return eval_set


def _figures(diffs: np.ndarray) -> dict:
    """Accuracy of r_chosen − r_rejected (the project's one rule: a tie counts half) with its Wilson interval."""
    n = int(diffs.size)
    accuracy = pairwise_accuracy(diffs) if n else None
    low, high = wilson(accuracy * n if n else 0.0, n)
    return {"pairs": n, "accuracy": accuracy, "ci95": [low, high]}


def evaluate(model, tokenizer, project_id: int, max_length: int, keep: str = "end") -> dict:
    """{set name: {"overall": figures, "subsets": {subset: figures}, "truncated": n}} for every set of the project."""
    from rewardmodel.trainer import predict

    out = {}
    for eval_set in EvalSet.objects.filter(project_id=project_id):
        rows = list(eval_set.pairs.order_by("id").values_list("prompt", "chosen", "rejected", "subset"))
        if not rows:
            continue
        prompts = [p for p, *_ in rows]
        rewards, truncated = predict(model, tokenizer, prompts + prompts, [c for _, c, _, _ in rows] +
                                     [r for _, _, r, _ in rows], max_length, keep=keep)
        diff = (rewards[: len(rows)] - rewards[len(rows):]).numpy()
        by_subset = defaultdict(list)
        for i, (*_, subset) in enumerate(rows):
            by_subset[subset or "(none)"].append(i)
        out[eval_set.name] = {"overall": _figures(diff), "truncated": truncated,
                              "subsets": {s: _figures(diff[idx]) for s, idx in sorted(by_subset.items())}}
    return out
