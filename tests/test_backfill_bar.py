"""The progress bar of `flowfi backfill`: shown on a terminal only, with ledgers done, ledgers/s and the
time left, the log printed above it meanwhile."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime

from rich.console import Console

from flowfi.backfill_bar import backfill_bar
from flowfi.settings import Settings
from indexer import ids, store
from indexer.rpc import EventPage
from indexer.worker import FetchedPage, Worker

PREPARED = store.PreparedPage([], store.PageRows(), [], store.ProtocolChanges([], []), None)


def _worker() -> Worker:
    return Worker(Settings(database_url="postgresql://nowhere/none"), "postgresql://nowhere/none")


def _page(last: int, progress: store.BackfillProgress) -> FetchedPage:
    return FetchedPage(EventPage((), ids.end_of_ledger(last), 1_100, 1_000, 0), PREPARED, 0.0, progress)


def test_the_bar_shows_ledgers_done_of_the_range_rate_and_time_left() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=140, color_system=None)
    worker = _worker()
    progress = store.BackfillProgress("lake", 1_001, 1_100)
    before = logging.getLogger().handlers
    with backfill_bar(worker, console) as shown:
        assert shown and worker.page_written is not None
        logging.getLogger("indexer.worker").warning("a warning at %s", datetime.now(UTC).year)
        worker.page_written(_page(1_025, progress), store.PageWritten(1_234, 0, None))
        worker.page_written(_page(1_050, progress), store.PageWritten(766, 0, None))
    text = out.getvalue()
    assert "ledger 1,050" in text and "50/100 ledgers" in text and "2,000 events" in text
    assert "ledgers/s" in text and "ETA" in text
    assert "a warning at" in text
    assert worker.page_written is None and logging.getLogger().handlers == before


def test_off_a_terminal_there_is_no_bar() -> None:
    out = io.StringIO()
    worker = _worker()
    with backfill_bar(worker, Console(file=out, force_terminal=False)) as shown:
        assert not shown and worker.page_written is None
    assert out.getvalue() == ""
