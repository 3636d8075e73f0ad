"""Requests that meet a database that is down, restarting, refusing connections or too slow to answer:
what they are told (a 503 saying to try again) and what the log says (a line with a count, not a
traceback for each)."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

log = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                        asyncpg.OperatorInterventionError, asyncpg.InsufficientResourcesError)
MESSAGE = "the database is unavailable; try again shortly (GET /ready says when it is back)"
HEADERS = {"Retry-After": "5"}
LOG_INTERVAL = 10.0  # seconds between the lines that count the requests answered 503


class _Outage:
    def __init__(self) -> None:
        self.failed = 0
        self.logged_at: float | None = None

    def note(self, exc: Exception) -> None:
        """One more request failed for want of the database, with `exc`."""
        self.failed += 1
        now = asyncio.get_running_loop().time()
        if self.logged_at is None or now - self.logged_at >= LOG_INTERVAL:
            log.warning("%d request%s answered 503: the database is unavailable (%s: %s)", self.failed,
                        "" if self.failed == 1 else "s", type(exc).__name__, exc)
            self.failed, self.logged_at = 0, now


note = _Outage().note
