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
