"""Exporting rankings as streams of dicts, so a project of any size never sits in memory at once.

- ``iter_trl_pairs``: TRL preference rows ``{"prompt", "chosen", "rejected", …}``, one per ordered pair of a
  ranking (a K-way ranking without ties gives K·(K−1)/2 rows, as in InstructGPT); ``trl_rows`` gives one ranking
  row's pairs (dataset releases derive their pairs from their frozen ranking rows with it).
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
from collections import defaultdict
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import IO

import orjson
from django.db.models import QuerySet

from annotation.models import Project, Ranking, RankingTask
from annotation.pairs import TIE_POLICIES, TiePolicy, ranked_pairs

CHUNK_SIZE = 2000


RANKING_FIELDS = ("id", "task_id", "rater_id", "order", "criteria_orders", "rationale", "flags", "time_spent_ms",
                  "display_order", "submitted_at", "weight", "source", "dataset", "original_rater", "task__prompt_id",
                  "task__prompt__external_id", "task__prompt__text", "task__is_gold", "task__origin_id")


def _ranking_batches(project: Project, exclude_flagged: bool,
                     rankings: QuerySet[Ranking] | None = None) -> Iterator[tuple[list[dict], dict[int, list]]]:
    """Rankings as plain rows, ``CHUNK_SIZE`` at a time from a server-side cursor, each batch with its tasks'
    completions ``task id → [(id, model, text)]`` (one query per batch). Plain rows, not model instances: an export
    of a million pairs spends its time here. `rankings` narrows them (a release's selection), within `project`."""
    qs = (Ranking.objects if rankings is None else rankings).filter(task__project=project)
    if exclude_flagged:
        qs = qs.filter(flags=[])
    rows = qs.order_by("id").values(*RANKING_FIELDS).iterator(chunk_size=CHUNK_SIZE)
    links = RankingTask.completions.through.objects
    while batch := list(islice(rows, CHUNK_SIZE)):
        completions: dict[int, list] = defaultdict(list)
        for task_id, cid, model, text in (links.filter(rankingtask_id__in={r["task_id"] for r in batch})
                                          .order_by("completion_id")
                                          .values_list("rankingtask_id", "completion_id", "completion__model_name",
                                                       "completion__text")):
            completions[task_id].append((cid, model, text))
        yield batch, completions


def iter_trl_pairs(project: Project, ties: TiePolicy = "drop", exclude_flagged: bool = True) -> Iterator[dict]:
    """TRL preference rows for every submitted ranking of `project`.

    ``exclude_flagged`` drops rankings that carry any flag (unsafe, broken, duplicate, unsure).
    ``ties="drop"`` omits tied pairs; ``ties="mark"`` emits them once with ``"tie": true`` (and every
    row then carries a ``tie`` field).
    """
    if ties not in TIE_POLICIES:
        raise ValueError(f"ties must be one of {TIE_POLICIES}, not {ties!r}")
    for ranking in iter_rankings(project, exclude_flagged=exclude_flagged):
        yield from trl_rows(ranking, ties)


def trl_rows(ranking: dict, ties: TiePolicy = "drop") -> Iterator[dict]:
    """The TRL preference rows of one ranking row (as ``iter_rankings`` gives it, or a dataset release froze it):
    one per ordered pair of its order, by ``annotation.pairs``."""
    by_id = {c["id"]: (c["model"], c["text"]) for c in ranking["completions"]}
    shared = {"ranking_id": ranking["ranking_id"], "task_id": ranking["task_id"], "rater_id": ranking["rater_id"]}
    tail = {"reask": ranking["reask"], "origin_task_id": ranking["origin_task_id"], "weight": ranking["weight"],
            **provenance(ranking)}
    prompt = ranking["prompt"]
    for better, worse, tie in ranked_pairs(ranking["order"], ties):
        chosen, rejected = by_id.get(better), by_id.get(worse)
        if chosen is None or rejected is None:
            continue  # a completion deleted after the ranking: no pair to report
        row = {"prompt": prompt, "chosen": chosen[1], "rejected": rejected[1], **shared,
               "chosen_model": chosen[0], "rejected_model": rejected[0], **tail}
        if ties == "mark":
            row["tie"] = tie
        yield row


def iter_rankings(project: Project, exclude_flagged: bool = False,
                  rankings: QuerySet[Ranking] | None = None) -> Iterator[dict]:
    """One row per submitted ranking of `project` (or of `rankings`, within it), in id order: the task, what was
    shown, and the rater's answer."""
    for batch, completions in _ranking_batches(project, exclude_flagged, rankings):
        for r in batch:
            yield {
                "ranking_id": r["id"],
                "task_id": r["task_id"],
                "prompt_id": r["task__prompt_id"],
                "prompt_external_id": r["task__prompt__external_id"],
                "prompt": r["task__prompt__text"],
                "completions": [{"id": cid, "model": model, "text": text}
                                for cid, model, text in completions[r["task_id"]]],
                "order": r["order"],
                "criteria_orders": r["criteria_orders"],
                "rationale": r["rationale"],
                "flags": r["flags"],
                "time_spent_ms": r["time_spent_ms"],
                "display_order": r["display_order"],
                "rater_id": r["rater_id"],
                "is_gold": r["task__is_gold"],
                "reask": r["task__origin_id"] is not None,
                "origin_task_id": r["task__origin_id"],
                "submitted_at": r["submitted_at"].isoformat(),
                "weight": r["weight"],
                **provenance(r),
            }


def provenance(ranking: dict) -> dict:
    """Where a ranking came from: a rater in Verdict, or an imported dataset (with its own rater id)."""
    return {"source": ranking["source"], "dataset": ranking["dataset"], "original_rater": ranking["original_rater"]}


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


def write_parquet(rows: Iterable[dict], path, kind: str, row_group: int = PARQUET_ROW_GROUP,
                  extra_columns: tuple[str, ...] = ()) -> int:
    """Write rows of one kind (``trl``, ``trl_ties`` or ``rankings``) to a Parquet file, ``row_group`` rows at a
    time (memory holds one group); returns how many. `extra_columns` are string columns after the kind's own (a
    dataset release's ``split``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _parquet_schemas()[kind]
    for name in extra_columns:
        schema = schema.append(pa.field(name, pa.string()))
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
    """Each row as one line of compact JSON (non-ASCII kept as UTF-8), newline-terminated.

    orjson rather than ``json.dumps``: encoding was the export's limit (17k rows/s of ~900-byte rows with the
    standard library; issue 25), and orjson writes the same JSON several times faster."""
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    for row in rows:
        yield dumps(row, option=newline).decode()


def write_jsonl(rows: Iterable[dict], fh: IO[str]) -> int:
    """Write rows to an open text file; returns how many were written."""
    n = 0
    for line in jsonl_lines(rows):
        fh.write(line)
        n += 1
    return n
