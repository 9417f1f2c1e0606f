"""Exporting rankings as streams of dicts, so a project of any size never sits in memory at once.

- ``iter_trl_pairs``: TRL preference rows ``{"prompt", "chosen", "rejected", …}``, one per ordered pair of a
  ranking (a K-way ranking without ties gives K·(K−1)/2 rows, as in InstructGPT).
- ``iter_rankings``: one row per ranking with everything the rater saw and said.
- ``jsonl_lines`` / ``write_jsonl``: serialise such a stream as JSON Lines; ``write_parquet`` as Parquet, a row
  group at a time (``PARQUET_SCHEMAS`` gives each kind's columns: nested lists stay lists, the criteria orders a
  JSON string because their keys are the project's own).

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


def _parquet_schemas() -> dict:
    import pyarrow as pa  # loaded on use: commands and web processes start without it

    provenance_fields = [("source", pa.string()), ("dataset", pa.string()), ("original_rater", pa.string())]
    trl = [("prompt", pa.string()), ("chosen", pa.string()), ("rejected", pa.string()), ("ranking_id", pa.int64()),
           ("task_id", pa.int64()), ("rater_id", pa.int64()), ("chosen_model", pa.string()),
           ("rejected_model", pa.string()), ("reask", pa.bool_()), ("origin_task_id", pa.int64()),
           ("weight", pa.float64()), *provenance_fields]
    ids = pa.list_(pa.int64())
    completion = pa.struct([("id", pa.int64()), ("model", pa.string()), ("text", pa.string())])
    rankings = [("ranking_id", pa.int64()), ("task_id", pa.int64()), ("prompt_id", pa.int64()),
                ("prompt_external_id", pa.string()), ("prompt", pa.string()), ("completions", pa.list_(completion)),
                ("order", pa.list_(ids)), ("criteria_orders", pa.string()), ("rationale", pa.string()),
                ("flags", pa.list_(pa.string())), ("time_spent_ms", pa.int64()), ("display_order", ids),
                ("rater_id", pa.int64()), ("is_gold", pa.bool_()), ("reask", pa.bool_()),
                ("origin_task_id", pa.int64()), ("submitted_at", pa.string()), ("weight", pa.float64()),
                *provenance_fields]
    return {"trl": pa.schema(trl), "trl_ties": pa.schema([*trl, ("tie", pa.bool_())]), "rankings": pa.schema(rankings)}


PARQUET_ROW_GROUP = 20_000


def write_parquet(rows: Iterable[dict], path, kind: str, row_group: int = PARQUET_ROW_GROUP) -> int:
    """Write rows of one kind (``trl``, ``trl_ties`` or ``rankings``) to a Parquet file, ``row_group`` rows at a
    time (memory holds one group); returns how many."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _parquet_schemas()[kind]
    n = 0
    with pq.ParquetWriter(path, schema) as writer:
        batch: list[dict] = []

        def flush() -> None:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            batch.clear()

        for row in rows:
            if "criteria_orders" in row:
                row = {**row, "criteria_orders": json.dumps(row["criteria_orders"], ensure_ascii=False)}
            batch.append(row)
            n += 1
            if len(batch) >= row_group:
                flush()
        if batch or not n:
            flush()
    return n


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
