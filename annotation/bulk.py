"""Writing many rows fast: ids reserved up front, rows streamed with PostgreSQL's COPY.

Imports write millions of rows (a task is a prompt, K completions, the task and K links). ``bulk_create`` sends
INSERTs with every value as a parameter and reads ids back, about 30,000 rows a second here; COPY streams rows in
PostgreSQL's own format, several times faster. COPY cannot return ids, so they are reserved first from the table's
sequence (``reserve_ids``) and written explicitly, which lets a batch link its prompts, completions and tasks before
sending any of them.

On SQLite (the zero-setup demo) the same calls fall back to ``executemany`` INSERTs, with ids counted on from the
table's largest: SQLite lets one writer in at a time, and a concurrent import that took the same ids makes this
one fail whole (its transaction rolls back) rather than mix rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from django.db import connection, models


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def reserve_ids(model: type[models.Model], n: int) -> list[int]:
    """``n`` fresh primary keys of ``model``'s table, in increasing order, that no other writer will use."""
    if n <= 0:
        return []
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if _postgres():
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                           [table, n])
            return sorted(row[0] for row in cursor.fetchall())
        cursor.execute(f'SELECT COALESCE(MAX(id), 0) FROM "{table}"')
        start = cursor.fetchone()[0] + 1
        return list(range(start, start + n))


def insert_rows(model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence]) -> int:
    """Insert ``rows`` (tuples of Python values in the order of ``fields``, model field names) into ``model``'s
    table; returns how many. JSON fields take Python objects. No signals, no ``save()``: the caller validated."""
    meta = model._meta
    columns = [meta.get_field(f).column for f in fields]
    json_at = [i for i, f in enumerate(fields) if isinstance(meta.get_field(f), models.JSONField)]
    table = meta.db_table
    count = 0
    with connection.cursor() as cursor:
        if _postgres():
            names = ", ".join(f'"{c}"' for c in columns)
            with cursor.cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                for row in rows:
                    if json_at:
                        row = list(row)
                        for i in json_at:
                            row[i] = None if row[i] is None else json.dumps(row[i], ensure_ascii=False)
                    copy.write_row(row)
                    count += 1
            return count
        prepared = [meta.get_field(f) for f in fields]
        values = [[fld.get_db_prep_save(v, connection) for fld, v in zip(prepared, row, strict=True)] for row in rows]
        placeholders = ", ".join(["%s"] * len(columns))
        names = ", ".join(f'"{c}"' for c in columns)
        cursor.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({placeholders})', values)
        return len(values)


# A load refreshes the statistics of a table it grew by at least this many rows and by a tenth (autovacuum's own
# default rule: 50 rows + 10 %, autovacuum_analyze_scale_factor); a smaller one leaves it to autovacuum.
ANALYZE_AFTER_ROWS = 1_000
ANALYZE_GROWTH = 0.1


def analyze(rows_written: dict[type[models.Model], int]) -> None:
    """Refresh PostgreSQL's statistics of the tables a bulk load just grew (model → rows it wrote), after its commit.

    PostgreSQL's own advice after a bulk load ("Populating a Database": run ANALYZE afterwards). Until autovacuum
    gets to it (a minute or more; never where it is off, as on this project's CI machine) the planner takes a table
    that grew from nothing to 200,000 rows in one COPY for an empty one: the next-task request's join through the
    task–completion links became a sequential scan reading 208,000 rows per request on a 50,000-task project
    (bench/rater_loop_saturation.py). Only the columns that are not text are analysed: the plans of the rater loop
    and the lists need the table's size and its ids, flags and keys, and the text columns (with the full-text
    indexes' to_tsvector over every sampled row) took 1.3 of the 1.5 s an ANALYZE of all four import tables took;
    autovacuum's next full ANALYZE covers them. A table is analysed only when the load grew it by a tenth or more.
    """
    if not _postgres():
        return
    with connection.cursor() as cursor:
        targets = []
        for model, rows in rows_written.items():
            if rows < ANALYZE_AFTER_ROWS:
                continue
            table = model._meta.db_table
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
            estimate = cursor.fetchone()[0]  # -1: never analysed (PostgreSQL 14 and later)
            if estimate < 0 or rows >= ANALYZE_GROWTH * estimate:
                columns = ", ".join(f'"{f.column}"' for f in model._meta.concrete_fields
                                    if f.get_internal_type() not in ("TextField", "JSONField"))
                targets.append(f'"{table}" ({columns})')
        if targets:
            cursor.execute(f"ANALYZE {', '.join(targets)}")
