"""A data lake read as the worker's pages: batches of whole ledgers, each written like a getEvents page.

    read_ledgers (threads: fetch, decompress, walk; the contracts' ids searched in each transaction's meta
    before it is walked) ─▶ batches of whole ledgers ─▶ the worker: the same filter, decode, stored
    schedules and store (prepare_page, commit_page) as for a getEvents page

The worker reads a lake two ways: `flowfi backfill` (Worker.backfill) indexes a range of ledgers from one,
and the worker fills from FLOWFI_LAKE_URL the ledgers older than its RPC server keeps (Worker.run).

A batch ends at a ledger's end, once it holds a page of events (FLOWFI_PAGE_SIZE), `BATCH_LEDGERS` ledgers
or `BATCH_SECONDS` of reading, whichever comes first, and is written in one transaction. Its cursor is the
end of its last ledger, exactly where a getEvents page that is not full leaves its reader, so RPC continues
from it with no gap and no duplicate; and a batch cut by a kill is read again whole, its stored events
skipped by id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Sequence
from dataclasses import dataclass

from indexer.lake import LedgerEvents, read_ledgers
from indexer.rpc import RawEvent

BATCH_LEDGERS = 10_000
BATCH_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class LakeBatch:
    """Whole ledgers first..last and their events (of the contracts asked for), in id order."""

    first: int
    last: int
    events: tuple[RawEvent, ...]


def batches(
    ledgers: Iterable[LedgerEvents],
    *,
    max_events: int,
    max_ledgers: int = BATCH_LEDGERS,
    max_seconds: float = BATCH_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> Generator[LakeBatch, None, None]:
    """`ledgers` grouped into batches of whole ledgers."""
    first: int | None = None
    last = 0
    events: list[RawEvent] = []
    started = clock()
    for ledger in ledgers:
        if first is None:
            first, started = ledger.sequence, clock()
        last = ledger.sequence
        events.extend(event.raw_event() for event in ledger.events)
        if len(events) >= max_events or last - first + 1 >= max_ledgers or clock() - started >= max_seconds:
            yield LakeBatch(first, last, tuple(events))
            first, events = None, []
    if first is not None:
        yield LakeBatch(first, last, tuple(events))


async def lake_batches(
    source: str, contract_ids: Sequence[str], *, start: int, end: int | None, network: str, max_events: int,
) -> AsyncGenerator[LakeBatch, None]:
    """The batches of ledgers start..end of `source` (`end` None: to where the lake ends), with the events of
    `contract_ids`; a lake of another network than `network` is refused (LakeNetworkMismatch). The lake is
    read in a thread, a batch ahead of the caller; the `LakeError`s of the reader pass through."""
    reader = batches(read_ledgers(source, contracts=contract_ids, start=start, end=end, network=network),
                     max_events=max_events)
    loop = asyncio.get_running_loop()
    pending = loop.run_in_executor(None, next, reader, None)
    try:
        while (batch := await asyncio.shield(pending)) is not None:
            pending = loop.run_in_executor(None, next, reader, None)  # read on while the caller writes
            yield batch
    finally:
        # A read under way ends at its batch's end; then the reader (and its download threads) can close.
        await asyncio.wait({pending})
        if not pending.cancelled():
            pending.exception()  # already raised above, or of a read ahead no one waits for now
        await loop.run_in_executor(None, reader.close)
