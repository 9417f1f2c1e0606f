"""Querysets compiled to SQL once per process and run again with new values: the rater loop's hot queries.

Django compiles a queryset to SQL on every evaluation. For the rater loop's queries (a handful of ``Exists`` and
``COUNT`` subqueries each) compiling cost more CPU than PostgreSQL spent running them (issue 25's profile:
``rater_state`` alone was ~40 % of a ``next`` request's Python time). A ``PreparedQuery`` builds its queryset once
with *sentinel* values standing for the per-call ones (ids, timestamps), compiles it, remembers which SQL
parameters are which sentinel, and from then on only swaps the real values in.

What it does not do: the queryset's *shape* must not depend on the values (a ``key`` argument names every choice
that changes the shape, and each key is compiled once); a value that Django would rewrite on its way into SQL (a
model instance, a list) is not supported. Both are checked: a sentinel that does not appear exactly as given among
the compiled parameters raises at compile time, so a query that cannot be prepared fails loudly rather than runs
with the wrong value.
"""

from __future__ import annotations

import datetime
import re
import threading
from collections.abc import Callable
from typing import Any

from django.db import connections
from django.db.models import QuerySet

_EPOCH = datetime.datetime(1901, 2, 3, 4, 5, 6, tzinfo=datetime.UTC)


def _sentinel(kind: type, i: int):
    """A value no real call passes: huge negative ids, instants in 1901."""
    if kind is int:
        return -8_100_000_000_000 - i
    if kind is datetime.datetime:
        return _EPOCH + datetime.timedelta(microseconds=i + 1)
    raise TypeError(f"a prepared query's values are ints or datetimes, not {kind.__name__}")


def _inline_constants(sql: str, params: list, slots: list[str | None], using: str) -> str:
    """The SQL with every parameter that is not a per-call value written in as a literal.

    Django passes even constants (a status 'open', a flag) as parameters. Once PostgreSQL switches a prepared
    statement to its generic plan, a constant it cannot see cannot match a partial index's predicate (``WHERE
    status = 'open' AND origin_id IS NOT NULL``): the rater's "any re-asks / gold / evaluation tasks?" checks then
    scanned the whole queue index, 17 ms instead of 0.4 ms on a 50,000-task project, and the prepared loop was
    slower than the unprepared one (bench/rater_loop_saturation.py). The literals are rendered by psycopg's own
    quoting, from values the code chose (never a request's).
    """
    from psycopg import sql as psycopg_sql

    connection = connections[using]
    connection.ensure_connection()
    pieces = re.split(r"(%%|%s)", sql)
    out, i = [], 0
    for piece in pieces:
        if piece == "%s":
            if slots[i] is None:
                literal = psycopg_sql.Literal(params[i]).as_string(connection.connection)
                out.append(literal.replace("%", "%%"))
            else:
                out.append("%s")
            i += 1
        else:
            out.append(piece)
    if i != len(params):
        raise ValueError(f"prepared query: {i} placeholders for {len(params)} parameters")
    return "".join(out)


class PreparedQuery:
    """``build(**values) -> QuerySet`` compiled once per ``key``; ``rows(key, **values)`` runs it.

    ``kinds`` maps each value's name to ``int`` or ``datetime.datetime``; ``optional`` names those some shapes
    do not use (any other value missing from the compiled SQL is an error). The queryset is compiled as Django would
    compile it for ``using`` (select_for_update, slicing and ``values()`` included), so the SQL is exactly the ORM's.
    """

    def __init__(self, build: Callable[..., QuerySet], kinds: dict[str, type], optional: frozenset[str] = frozenset(),
                 using: str = "default"):
        self.build, self.kinds, self.optional, self.using = build, kinds, optional, using
        self._compiled: dict[Any, tuple[str, list[str]]] = {}
        self._lock = threading.Lock()

    def _compile(self, key) -> tuple[str, list[str]]:
        sentinels = {name: _sentinel(kind, i) for i, (name, kind) in enumerate(self.kinds.items())}
        queryset = self.build(key, **sentinels)
        sql, params = queryset.query.get_compiler(using=self.using).as_sql()
        by_value = {value: name for name, value in sentinels.items()}
        slots = [by_value.get(p) if isinstance(p, (int, datetime.datetime)) and not isinstance(p, bool) else None
                 for p in params]
        missing = set(sentinels) - set(slots) - self.optional
        if missing:
            raise ValueError(f"prepared query {self.build.__name__}: {sorted(missing)} did not reach the SQL as "
                             "given (Django rewrote or dropped them); run it as a plain queryset")
        return _inline_constants(sql, params, slots, self.using), [slot for slot in slots if slot]

    def sql(self, key, **values) -> tuple[str, list]:
        """The SQL and the parameters for these values."""
        if connections[self.using].vendor != "postgresql":
            # SQLite (demo mode) gets datetimes as strings in its parameters: compile each time, as the ORM would.
            return self.build(key, **values).query.get_compiler(using=self.using).as_sql()
        compiled = self._compiled.get(key)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(key) or self._compile(key)
                self._compiled[key] = compiled
        sql, slots = compiled
        return sql, [values[slot] for slot in slots]

    def dicts(self, key, **values) -> list[dict]:
        """The rows as dicts by column name (a ``values()`` queryset's names)."""
        sql, params = self.sql(key, **values)
        with connections[self.using].cursor() as cursor:
            cursor.execute(sql, params)
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
