"""The progress bar of `flowfi backfill` on a terminal: ledgers done of the range, ledgers/s, events, time
left. Elsewhere (a pipe, a log collector) the worker's log lines say the same, one per batch."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text

from flowfi.logs import RedactSecrets
from indexer import store
from indexer.worker import FetchedPage, Worker


class LedgerRate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- ledgers/s" if speed is None else f"{speed:,.0f} ledgers/s", style="progress.data.speed")


@contextlib.contextmanager
def backfill_bar(worker: Worker, console: Console | None = None) -> Iterator[bool]:
    """Show a bar of `worker`'s backfill while the block runs, on a terminal only; whether it shows. Log
    records print above the bar meanwhile."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield False
        return
    progress = Progress(
        TextColumn("[bold]backfill"), BarColumn(), TextColumn("ledger {task.fields[ledger]}"),
        TextColumn("{task.fields[done]} ledgers"), LedgerRate(),
        TextColumn("{task.fields[events]:,} events"), TextColumn("ETA"), TimeRemainingColumn(),
        console=console, redirect_stdout=False, redirect_stderr=False,
    )
    task = progress.add_task("backfill", total=None, ledger="-", done="0", events=0)
    events = 0

    def written(fetched: FetchedPage, page_written: store.PageWritten) -> None:
        nonlocal events
        if fetched.progress is None:
            return
        first, end = fetched.progress.first_ledger, fetched.progress.end_ledger
        last = store.ledger_of_cursor(fetched.page)
        events += page_written.new_events
        total = None if end is None else end - first + 1
        done = f"{last - first + 1:,}/{total:,}" if total is not None else f"{last - first + 1:,}"
        progress.update(task, completed=last - first + 1, total=total, ledger=f"{last:,}", done=done, events=events)

    handler = RichHandler(console=console, show_path=False)
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    saved = root.handlers
    root.handlers = [handler]
    worker.page_written = written
    try:
        with progress:
            yield True
    finally:
        worker.page_written = None
        root.handlers = saved
