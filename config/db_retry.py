"""Riding out a database blip in long jobs: a write that finds its connection dropped (a restart, a failover,
pg_terminate_backend) reconnects and tries again instead of failing the job and spending one of its deliveries.

Only work outside a transaction is retried: inside one, the transaction is lost with the connection and its caller
must start it again (wrap the whole ``transaction.atomic()`` block in :func:`retrying`, not a statement in it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connection

log = logging.getLogger(__name__)
T = TypeVar("T")
DELAYS_S = (0.5, 1, 2, 4, 8, 15)  # about 30 s in all: a restart or failover, not an outage


def retrying(work: Callable[[], T], what: str, delays: tuple[float, ...] = DELAYS_S) -> T:
    """`work()`, again after a reconnect each time its connection turns out to be lost (up to len(delays) times)."""
    for attempt, delay in enumerate((*delays, None)):
        try:
            return work()
        except (OperationalError, InterfaceError) as exc:
            if delay is None or connection.in_atomic_block:
                raise
            log.warning("database connection lost during %s (%s); reconnecting in %ss (retry %d of %d)", what,
                        str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, delay,
                        attempt + 1, len(delays))
            connection.close()  # the next query opens a new one
            time.sleep(delay)
    raise AssertionError("unreachable")


def reconnect_if_dropped(what: str) -> None:
    """Make sure the connection works before a phase that needs it (after a long stretch without a query)."""
    def ping() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    retrying(ping, what)
