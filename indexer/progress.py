"""What the worker says about its progress: one line when it first reaches the chain's tip, then one
summary line per interval (ledgers covered, events written, lag), rather than a line per page."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from indexer import ids

log = logging.getLogger("indexer.worker")

SUMMARY_INTERVAL = 30.0
# Ledgers behind the chain that count as having fallen behind: a full page leaves the worker a ledger or
# two behind on a busy chain, which is not news.
BEHIND = 5


class Progress:
    """`live`: the worker goes on at the chain's tip and says when it reaches it (a backfill, which stops
    there, does not)."""

    def __init__(self, interval: float = SUMMARY_INTERVAL, clock: Callable[[], float] = time.monotonic,
                 live: bool = True) -> None:
        self.interval = interval
        self.live = live
        self.clock = clock
        self.since = clock()
        self.first_ledger: int | None = None
        self.last_ledger = 0
        self.next_ledger: int | None = None  # the ledger the next page's first event can lie in
        self.events = 0
        self.dead_letters = 0
        self.at_tip = False

    def stand_by(self) -> None:
        """The worker waits for the writer lock: what it wrote before is not where the index is now (another
        worker may write meanwhile), and reaching the tip is news again."""
        self.next_ledger = None
        self.at_tip = False

    def begin(self) -> None:
        """Count from now: the worker begins to write (after standing by, its summary leaves that time out)."""
        self._reset(self.clock())

    def page(self, cursor: str, lag: int, new_events: int, dead_letters: int) -> None:
        """Count a written page whose getEvents cursor is `cursor`, `lag` ledgers behind the chain; log
        when due. A full page can end inside a busy ledger: the page reached that ledger, and the next
        page's events start in it again."""
        ledger = ids.ledger_of(cursor)
        if self.first_ledger is None:
            self.first_ledger = ledger if self.next_ledger is None else self.next_ledger
        self.last_ledger = ledger
        self.next_ledger = ids.last_complete_ledger(cursor) + 1
        self.events += new_events
        self.dead_letters += dead_letters
        now = self.clock()
        if now - self.since >= self.interval:
            self._summary(now, lag)
        if lag == 0 and not self.at_tip:
            self.at_tip = True
            if self.live:
                log.info("caught up with the chain at ledger %d; a summary follows every %.0f s", ledger,
                         self.interval)
            self._reset(now)
        elif lag > BEHIND:
            self.at_tip = False

    def _summary(self, now: float, lag: int) -> None:
        elapsed = now - self.since
        dead = f" ({self.dead_letters} dead letters)" if self.dead_letters else ""
        covered = (f"ledger {self.last_ledger}" if self.first_ledger == self.last_ledger
                   else f"ledgers {self.first_ledger}-{self.last_ledger}")
        log.info("%s: %d new events%s in %.0f s, %.0f events/s; lag %d ledgers",
                 covered, self.events, dead, elapsed,
                 self.events / elapsed if elapsed else 0.0, lag)
        self._reset(now)

    def _reset(self, now: float) -> None:
        self.since = now
        self.first_ledger = None
        self.events = 0
        self.dead_letters = 0
