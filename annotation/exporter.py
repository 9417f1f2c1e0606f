"""Exporting rankings as streams of dicts, so a project of any size never sits in memory at once.

- ``iter_trl_pairs``: TRL preference rows ``{"prompt", "chosen", "rejected", …}``, one per ordered pair of a
  ranking (a K-way ranking without ties gives K·(K−1)/2 rows, as in InstructGPT).
- ``iter_rankings``: one row per ranking with everything the rater saw and said.
- ``jsonl_lines`` / ``write_jsonl``: serialise such a stream as JSON Lines.

Raters appear only as ``rater_id`` (their numeric user id), never by username. Every row says whether it comes
from a re-ask (``"reask": true`` and the ``origin_task_id`` whose comparison it asks again), so a trainer can
weigh or drop repeated questions; a re-ask is never answered by a rater who saw its prompt before. Every row
carries the ranking's training ``weight`` (its rater's reliability from the quality refresh; 0 for an excluded
rater; 1 before any refresh) and its provenance: ``source`` (``rater`` or ``imported``), ``dataset`` and the
dataset's ``original_rater`` id for imported rankings (``annotation.preference_import``).
The per-task consensus export lives with the consensus, in ``quality.exporter``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import IO

from django.db.models import Prefetch, QuerySet

from annotation.models import Completion, Project, Ranking
from annotation.pairs import TIE_POLICIES, TiePolicy, ranked_pairs

CHUNK_SIZE = 500


def _rankings(project: Project, exclude_flagged: bool) -> QuerySet[Ranking]:
    qs = Ranking.objects.filter(task__project=project)
    if exclude_flagged:
        qs = qs.filter(flags=[])
    return (
        qs.select_related("task__prompt")
        .prefetch_related(
            Prefetch("task__completions", queryset=Completion.objects.only("id", "model_name", "text", "prompt_id"))
        )
        .order_by("id")
    )


def _stream(qs: QuerySet[Ranking]) -> Iterator[Ranking]:
    # With chunk_size, Django prefetches per chunk of rows while streaming from a server-side cursor.
    return qs.iterator(chunk_size=CHUNK_SIZE)


def iter_trl_pairs(project: Project, ties: TiePolicy = "drop", exclude_flagged: bool = True) -> Iterator[dict]:
    """TRL preference rows for every submitted ranking of `project`.

    ``exclude_flagged`` drops rankings that carry any flag (unsafe, broken, duplicate, unsure).
    ``ties="drop"`` omits tied pairs; ``ties="mark"`` emits them once with ``"tie": true`` (and every
    row then carries a ``tie`` field).
    """
    if ties not in TIE_POLICIES:
        raise ValueError(f"ties must be one of {TIE_POLICIES}, not {ties!r}")
    for ranking in _stream(_rankings(project, exclude_flagged)):
        if exclude_flagged and ranking.flags:
            continue
        by_id = {c.id: c for c in ranking.task.completions.all()}
        prompt = ranking.task.prompt.text
        for better, worse, tie in ranked_pairs(ranking.order, ties):
            chosen, rejected = by_id.get(better), by_id.get(worse)
            if chosen is None or rejected is None:
                continue  # a completion deleted after the ranking: no pair to report
            row = {
                "prompt": prompt,
                "chosen": chosen.text,
                "rejected": rejected.text,
                "ranking_id": ranking.id,
                "task_id": ranking.task_id,
                "rater_id": ranking.rater_id,
                "chosen_model": chosen.model_name,
                "rejected_model": rejected.model_name,
                "reask": ranking.task.origin_id is not None,
                "origin_task_id": ranking.task.origin_id,
                "weight": ranking.weight,
                **provenance(ranking),
            }
            if ties == "mark":
                row["tie"] = tie
            yield row


def iter_rankings(project: Project, exclude_flagged: bool = False) -> Iterator[dict]:
    """One row per submitted ranking of `project`: the task, what was shown, and the rater's answer."""
    for ranking in _stream(_rankings(project, exclude_flagged)):
        task = ranking.task
        yield {
            "ranking_id": ranking.id,
            "task_id": task.id,
            "prompt_id": task.prompt_id,
            "prompt_external_id": task.prompt.external_id,
            "prompt": task.prompt.text,
            "completions": [{"id": c.id, "model": c.model_name, "text": c.text} for c in task.completions.all()],
            "order": ranking.order,
            "criteria_orders": ranking.criteria_orders,
            "rationale": ranking.rationale,
            "flags": ranking.flags,
            "time_spent_ms": ranking.time_spent_ms,
            "display_order": ranking.display_order,
            "rater_id": ranking.rater_id,
            "is_gold": task.is_gold,
            "reask": task.origin_id is not None,
            "origin_task_id": task.origin_id,
            "submitted_at": ranking.submitted_at.isoformat(),
            "weight": ranking.weight,
            **provenance(ranking),
        }


def provenance(ranking: Ranking) -> dict:
    """Where a ranking came from: a rater in Verdict, or an imported dataset (with its own rater id)."""
    return {"source": ranking.source, "dataset": ranking.dataset, "original_rater": ranking.original_rater}


def jsonl_lines(rows: Iterable[dict]) -> Iterator[str]:
    """Each row as one line of JSON (non-ASCII kept as UTF-8), newline-terminated."""
    for row in rows:
        yield json.dumps(row, ensure_ascii=False) + "\n"


def write_jsonl(rows: Iterable[dict], fh: IO[str]) -> int:
    """Write rows to an open text file; returns how many were written."""
    n = 0
    for line in jsonl_lines(rows):
        fh.write(line)
        n += 1
    return n
