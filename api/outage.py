"""Requests that meet a database that is down, restarting, refusing connections or too slow to answer:
what they are told (a 503 saying to try again) and what the log says (a line with a count, not a
traceback for each)."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)

MESSAGE = "the database is unavailable; try again shortly (GET /ready says when it is back)"
HEADERS = {"Retry-After": "5"}
LOG_INTERVAL = 10.0  # seconds between the lines that count the requests answered 503


class _Outage:
    """Counts the requests answered 503 and logs the count: at the first, then at most once an interval,
    the last interval's count when it ends (so the log says how many an outage's end cost too)."""

    def __init__(self) -> None:
        self.failed = 0
        self.last: Exception | None = None
        self.logged_at: float | None = None
        self._flush: tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle] | None = None

    def note(self, exc: Exception) -> None:
        """One more request failed for want of the database, with `exc`."""
        self.failed, self.last = self.failed + 1, exc
        loop = asyncio.get_running_loop()
        wait = 0.0 if self.logged_at is None else self.logged_at + LOG_INTERVAL - loop.time()
        if wait <= 0:
            self._log()
        elif self._flush is None or self._flush[0] is not loop:
            self._flush = loop, loop.call_later(wait, self._log)

    def _log(self) -> None:
        if self._flush is not None:
            self._flush[1].cancel()
            self._flush = None
        if self.failed:
            log.warning("%d request%s answered 503: the database is unavailable (%s: %s)", self.failed,
                        "" if self.failed == 1 else "s", type(self.last).__name__, self.last)
            self.failed, self.logged_at = 0, asyncio.get_running_loop().time()


note = _Outage().note
