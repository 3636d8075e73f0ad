"""The ledger-polling worker: getEvents page by page, decode, store, repeat; poll once caught up.

Where it starts: the stored cursor, else the configured start ledger, else recent history. What it
retries (with exponential backoff and jitter, logged, forever): an unreachable or failing RPC server, an
unreachable data lake, and a lost database connection. A server that is behind the ledger asked for (a
lagging node behind a load balancer, or a start ledger in the future) is waited for, said once. What
stops it, with a message saying what to do: a network passphrase that does not match, an RPC whose chain
is not the one indexed (a network reset, or another network on the same passphrase: the rules are in
indexer/identity.py, applied at start and whenever the server is behind the index), and a cursor that
fell out of the RPC server's retention window when no data lake is configured. A stop request
(SIGINT/SIGTERM) takes effect between pages; a page is committed whole or not at all.

With the pages it writes the worker records the chain's anchor, a ledger the index went through as RPC
names it (getLedgers: hash and close time), once a run and then every `ANCHOR_INTERVAL` seconds: getLedgers
returns a ledger's whole metadata, megabytes on mainnet, which once a page would cost more than the
events themselves. The anchor is optional: a getLedgers that keeps failing leaves a page without one.

Ledgers older than the RPC server keeps come from a data lake (indexer/backfill.py), when
FLOWFI_LAKE_URL names one: the worker reads them from the lake up to the lake's newest ledger, in
batches of whole ledgers written like pages, then continues from RPC where the lake ends. `backfill`
(`flowfi backfill`) does the same for a given range of ledgers, then stops: `run` continues after it.

Where a creation event does not carry its stream's whole schedule (a cliff kept in storage only, a
step vesting stream's steps, a conditional stream's milestones), the fetch stage reads it from the
contract's storage (getLedgerEntries) before the page is written.

A page is written with whole transactions only: when a full page may end inside a transaction, that
transaction's events wait for the next page (the contract publishes a creation fee just before its
stream_created; written apart, the fee would go out live before its stream's parties are known). Events
of other contracts or of failed transactions are skipped, whatever the server's filter did.

Fetching and writing overlap: while one page is written, the next is fetched, decoded and prepared
(its rows and the state it leaves rendered, on a second connection: see store.prepare_page; at most
`PREFETCH_PAGES` wait), and while the worker is behind the chain, the server reads the page after it
meanwhile. The steps that take the CPU for a whole page (converting it, decoding it, reading the stored
schedules, folding and rendering it) run in a thread, so that the event loop sends the statements of
the page being committed as soon as the database answers. Pages are written in order, each after the
one before has committed; when the writer loses its connection, the pages fetched ahead are dropped and
it resumes from the cursor it committed last. While behind the chain it fetches page after page; it
polls every `poll_interval` seconds only once it has reached the newest ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import itertools
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import asyncpg
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, stop_never, wait_exponential_jitter

from indexer import ids, metrics, storage, store
from indexer.backfill import lake_batches
from indexer.builds import BUILDS, History
from indexer.database import asyncpg_dsn, connect, widen_send_buffer
from indexer.decode import Decoded, decode
from indexer.events import ContractUpgraded, StreamEvent
from indexer.identity import MAX_LAG_LEDGERS, MAX_LAG_SECONDS, ChainWatch, OtherChain
from indexer.lake import LakeEndsBefore, LakeError, LakeUnavailable, check_network, newest_ledger
from indexer.progress import Progress
from indexer.rpc import (
    EventPage,
    FatalRpcError,
    LedgerInfo,
    Network,
    NotYetAvailable,
    OutOfRetention,
    RawEvent,
    RetryableRpcError,
    RpcClient,
    RpcError,
    Unreachable,
)
from indexer.settings import IndexerSettings
from indexer.state import StoredSchedule, StreamKey, needs_storage
from indexer.storage import TokenMetadata
from indexer.unavailable import DATABASE_UNAVAILABLE

log = logging.getLogger(__name__)

# Where a worker with no cursor and no start ledger begins: about a day of ledgers back.
RECENT_LEDGERS = 17_280
STANDBY_POLL_SECONDS = 1.0
# A transaction PostgreSQL rolled back over another session's, and asks to try again: a deadlock or a
# serialization failure. The rest of SQLSTATE class 40 is not retried: its 40003 leaves unknown whether the
# commit happened.
ROLLED_BACK = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
# What a backfill refused beside a running worker says to do once that worker is stopped.
BACKFILL_AFTER_WORKER = ("run the backfill, and the worker after it (with FLOWFI_LAKE_URL set, the worker fills the "
                         "ledgers RPC no longer keeps from the lake by itself)")
# Pages fetched and decoded ahead of the one being written (one more may wait to be queued).
PREFETCH_PAGES = 1
# The worker allocates some 30 objects per event (parsed values, dataclasses, rows), none of them in
# reference cycles, and keeps a few pages of them alive. Python's cyclic collector, run by allocation
# counts, keeps traversing those pages for nothing to collect: at its default first threshold (700)
# about a fifth of the worker's CPU, at 50,000 still 4-7 us per event (bench ingest, timed by
# gc.callbacks). In the worker's process it runs on a clock instead, every GC_INTERVAL seconds, and by
# count only past a million objects more than it freed. Set for the process when the worker runs.
GC_THRESHOLDS = (1_000_000, 20, 10)
GC_INTERVAL = 10.0
GC_FULL_EVERY = 30  # a full collection every 5 minutes
# The worker decodes and renders a page in a thread while the event loop sends the statements of the one
# before: each time the database answers, the loop waits for the thread to give up the GIL, at Python's
# default after up to 5 ms. At 1 ms the pipeline keeps the process busy 0.88 of the time instead of 0.84
# (bench ingest: 11,300 vs 10,700 events/s, five runs each). Set for the process when the worker runs.
SWITCH_INTERVAL = 0.001
# Dead letters logged one by one per page; the rest are counted in one line (a backfill of another
# contract's events makes thousands a page).
DEAD_LETTERS_LOGGED = 5
# Events of an indexed contract, none of them FlowFi's, after which the worker asks whether it is one.
NOT_FLOWFI_AFTER = 20
# Seconds between two anchors of the chain recorded with pages (see the module's docstring).
ANCHOR_INTERVAL = 60.0
# Tries at reading an anchor's ledger before the page goes without one: the anchor is optional, and a
# server whose getLedgers keeps failing must not hold up the events it serves.
ANCHOR_ATTEMPTS = 3

T = TypeVar("T")



class _LockLost(Exception):
    """The connection holding the writer lock is gone (and the lock with it)."""


class IndexerStopped(Exception):
    """The worker cannot go on; the message says why and what to do."""


@dataclass
class Position:
    cursor: str | None
    start_ledger: int | None


@dataclass(frozen=True, slots=True)
class Backfilled:
    """What a backfill wrote: ledgers first..last (none when last < first)."""

    first: int
    last: int
    events: int
    dead_letters: int
    finished: bool  # False when stopped before its last ledger


@dataclass(frozen=True, slots=True)
class FetchedPage:
    page: EventPage
    prepared: store.PreparedPage
    prepare_seconds: float  # decoding and preparing it (not the RPC or database's time), wall
    progress: store.BackfillProgress | None = None
    tokens: dict[str, TokenMetadata | None] = dataclasses.field(default_factory=dict)  # tokens first seen
    anchor: LedgerInfo | None = None  # a newer anchor of the chain, to record with the page


# How the pages after a position are fetched into the queue: getEvents (run), or a data lake (backfill).
PageSource = Callable[[Position, "asyncio.Queue[FetchedPage]", dict[str, History]], Coroutine[Any, Any, None]]


class Worker:
    def __init__(self, settings: IndexerSettings, database_url: str, *, max_backoff: float = 30.0,
                 max_lag_ledgers: int = MAX_LAG_LEDGERS, max_lag_seconds: float = MAX_LAG_SECONDS) -> None:
        self.settings = settings
        self.database_url = database_url
        self.contract_ids = settings.contract_ids
        self.rpc = RpcClient(settings.rpc_url, timeout=settings.rpc_timeout)
        self.max_backoff = max_backoff
        self.chain = ChainWatch(settings.rpc_url, max_lag_ledgers=max_lag_ledgers, max_lag_seconds=max_lag_seconds)
        self._next_anchor = 0.0  # when the next page records an anchor (time.monotonic); inf: never
        self.stopping = asyncio.Event()
        self._conn: asyncpg.Connection | None = None
        self._known_tokens: set[str] = set()  # those with a tokens row
        # While pages are written: what the pages prepared leave, and the connection they are prepared on.
        self._ahead = store.PreparedState()
        self._reader: asyncpg.Pool | None = None
        self.events_indexed = 0
        self.dead_letters = 0
        # Of each indexed contract until one of its events is FlowFi's, or it is said to be none: the names
        # of the others it sent.
        self._unconfirmed: dict[str, list[str]] = {contract_id: [] for contract_id in self.contract_ids}
        self.last_ledger: int | None = None  # the last ledger written by this worker
        # Called after each page commits (the backfill's progress bar).
        self.page_written: Callable[[FetchedPage, store.PageWritten], None] | None = None
        self.progress = Progress()

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        """Index until stopped. Only the holder of the contracts' advisory lock writes; another worker
        on the same database stands by and takes over within seconds when the holder dies."""
        _tuning.start()
        self.progress = Progress()
        try:
            if await self._until_stopped(self._check_network()) is None:
                return
            while not self.stopping.is_set():
                self.progress.stand_by()
                conn = await self._until_stopped(self._retry(self._take_writer_lock, "take the writer lock"))
                if conn is None:
                    break
                self.progress.begin()
                position = await self._retry(self._starting_position, "read the cursor")
                if await self._until_stopped(self._check_chain()) is None:
                    break
                await self._index(conn, position, self._fetch_pages)
        finally:
            await self._close()
            if self.stopping.is_set():  # asked to: a clean stop, said as such (where it ends, if it wrote)
                reached = self.progress.next_ledger
                log.info("stopped" if reached is None else f"stopped after ledger {reached - 1}")

    async def backfill(self, lake: str, *, start: int | None, end: int | None) -> Backfilled:
        """Index ledgers `start`..`end` of the data lake `lake` (its newest when `end` is None) and stop.
        The index is continued where it ends: after the cursor when there is one (a backfill moves the
        worker's cursor with every batch, so an interrupted one continues where it stopped), else from
        `start`. Each batch also records the backfill's progress row. IndexerStopped, with a one-line
        reason, for a lake of another network, an unreachable RPC server (creation events may need the
        contract's storage), another process writing these contracts, or a range that would leave a gap."""
        _tuning.start()
        self.progress = Progress(live=False)
        try:
            try:
                await asyncio.to_thread(check_network, lake, self.settings.network_passphrase)
                newest = await asyncio.to_thread(newest_ledger, lake)
            except LakeError as exc:
                raise IndexerStopped(str(exc)) from exc
            if end is None:
                end = newest
            elif newest is not None and end > newest:
                raise IndexerStopped(f"{lake} ends at ledger {newest}: give --to {newest} or less")
            elif start is not None and start > end:
                raise IndexerStopped(f"--from {start} is after --to {end}: give the first ledger, then the last")
            await self._check_network(retry=False)
            began: int | None = None
            while not self.stopping.is_set():
                conn = await self._until_stopped(
                    self._retry(partial(self._take_writer_lock, refuse=BACKFILL_AFTER_WORKER), "take the writer lock"))
                if conn is None:
                    break
                first, continuing = await self._retry(partial(self._backfill_start, conn, start), "read the cursor")
                began = first if began is None else began
                if end is not None and first > end:
                    if first == start:  # asked from past the lake's end (a --to past it is refused above)
                        raise IndexerStopped(f"{lake} ends at ledger {end}: ledger {start} is not there yet")
                    return self._nothing_more(began, first)
                log.info("backfilling ledgers %d-%s", first, end if end is not None else "the lake's newest")
                progress = store.BackfillProgress(lake, first, end)
                latest = await self._retry(self.rpc.get_latest_ledger, "getLatestLedger", attempts=3)
                source = partial(self._backfill_pages, lake, end, latest, progress)
                try:
                    if await self._index(conn, Position(cursor=None, start_ledger=first), source):
                        return self._backfilled(began, finished=True)
                except LakeEndsBefore as exc:  # a file, known to end only once read
                    if not continuing:
                        raise IndexerStopped(str(exc)) from exc
                    return self._nothing_more(began, first)
                except LakeError as exc:
                    raise IndexerStopped(str(exc)) from exc
            return self._backfilled(began or start or 1, finished=False)
        finally:
            await self._close()

    def _nothing_more(self, began: int, first: int) -> Backfilled:
        """The end of a backfill with nothing to read from `first` on; an earlier pass (before the writer
        lock was lost) may have read from `began`."""
        if began == first:
            log.info("nothing to backfill: the index already reaches ledger %d", first - 1)
        return self._backfilled(began, finished=True)

    def _backfilled(self, began: int, finished: bool) -> Backfilled:
        last = self.last_ledger if self.last_ledger is not None else began - 1
        return Backfilled(began, last, self.events_indexed, self.dead_letters, finished)

    async def _backfill_start(self, conn: asyncpg.Connection, start: int | None) -> tuple[int, bool]:
        """Where a backfill begins, and whether it continues an index: after the index's last whole ledger,
        or at `start` in an empty index."""
        cursor = await store.load_cursor(conn, self.contract_ids)
        if cursor is None:
            if start is None:
                raise IndexerStopped("There is no index to continue: give --from, the first ledger to backfill.")
            return start, False
        first = ids.last_complete_ledger(cursor.rpc_cursor) + 1
        if start is not None and start > first:
            raise IndexerStopped(
                f"The index ends at ledger {first - 1}: a backfill from ledger {start} would leave ledgers "
                f"{first}-{start - 1} out. Give --from {first}, or leave --from out, to continue the index."
            )
        began = await store.index_began(conn, self.contract_ids)
        if start is not None and began is not None and start < began:
            log.warning(
                "the index holds nothing before ledger %d: ledgers %d-%d cannot be put behind it (stream state is "
                "folded in chain order); to index them, backfill into a fresh database, then run the worker",
                began, start, began - 1,
            )
        elif start is not None and start < first:
            log.info("--from %d is ignored: the index reaches ledger %d already, and a backfill continues after "
                     "it, from ledger %d", start, first - 1, first)
        return first, True

    async def _backfill_pages(
        self, lake: str, end: int | None, latest: LedgerInfo, progress: store.BackfillProgress, position: Position,
        queue: asyncio.Queue[FetchedPage], builds: dict[str, History],
    ) -> None:
        assert position.start_ledger is not None
        await self._lake_pages(lake, position.start_ledger, end, latest, queue, builds, progress)

    async def _close(self) -> None:
        _tuning.stop()
        await self.rpc.aclose()
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _index(self, conn: asyncpg.Connection, position: Position, source: PageSource) -> bool:
        """Write the pages that `source` queues after `position`, in order, while `conn`, which holds the
        lock, lives. True once `source` has ended and its pages are written (a backfill's last ledger)."""
        queue: asyncio.Queue[FetchedPage] = asyncio.Queue(maxsize=PREFETCH_PAGES)
        upgrades = await self._retry(partial(store.load_upgrades, conn), "read the contracts' upgrades")
        builds = {contract_id: History(BUILDS[self.settings.contract_build], upgrades.get(contract_id, ()))
                  for contract_id in self.contract_ids}
        self._known_tokens = await self._retry(partial(store.load_token_addresses, conn), "read the tokens")
        self._ahead = store.PreparedState()
        self._reader = reader = await self._retry(self._open_reader, "connect to the database")
        fetcher = asyncio.create_task(source(position, queue, builds))
        try:
            while not self.stopping.is_set():
                fetched = await self._until_stopped(_next_page(queue, fetcher))
                if fetched is None:
                    return fetcher.done() and not fetcher.cancelled() and queue.empty()
                try:
                    await self._retry(partial(self._write, conn, fetched), "write a page")
                except _LockLost:
                    log.warning("the database connection holding the writer lock was lost; taking it again")
                    return False
            return False
        finally:
            fetcher.cancel()  # the pages fetched ahead are dropped
            await asyncio.gather(fetcher, return_exceptions=True)
            await reader.close()

    async def _open_reader(self) -> asyncpg.Pool:
        """The connection pages are prepared on (one, replaced when lost), beside the one writing them."""
        return await asyncpg.create_pool(
            asyncpg_dsn(self.database_url), min_size=1, max_size=1,
            server_settings={"application_name": "flowfi-worker-reader"},
        )

    async def _fetch_pages(
        self, position: Position, queue: asyncio.Queue[FetchedPage], builds: dict[str, History]
    ) -> None:
        """Fetch and decode the pages after `position` into `queue`, in whole transactions; poll once
        at the newest ledger."""
        held: list[RawEvent] = []  # the events of a transaction the last full page may not have held whole
        ahead: asyncio.Future[EventPage] | None = None  # the next page, asked for while this one is prepared
        try:
            while True:
                fetching, ahead = ahead or asyncio.ensure_future(self._fetch(position)), None
                try:
                    page = await fetching
                except OutOfRetention as exc:
                    if self.settings.lake_url is None:
                        raise IndexerStopped(_retention_advice(position, exc, self.settings.rpc_url)) from exc
                    # a transaction held back is read again whole with its ledger; what was stored is skipped
                    start = ids.ledger_of(held[0].id) if held else _first_missing(position)
                    held = []
                    position = await self._fill_from_lake(start, exc, queue, builds)
                    continue
                position = Position(cursor=page.cursor, start_ledger=None)
                window_scanned = len(page.events) < self.settings.page_size  # else the page was cut at its limit
                if not window_scanned:  # behind the chain: the server reads the next page meanwhile
                    ahead = asyncio.ensure_future(self._fetch(position))
                held = await self._queue_page(page, held, window_scanned, queue, builds)
                if window_scanned and ids.last_complete_ledger(page.cursor) >= page.latest_ledger:
                    await asyncio.sleep(self.settings.poll_interval)
        finally:
            if ahead is not None:
                ahead.cancel()
                await asyncio.gather(ahead, return_exceptions=True)

    async def _queue_page(
        self, page: EventPage, held: list[RawEvent], window_scanned: bool, queue: asyncio.Queue[FetchedPage],
        builds: dict[str, History],
    ) -> list[RawEvent]:
        """Prepare and queue a fetched page's whole transactions, after those `held` from the page before;
        the events of the transaction it may end inside, held for the next page."""
        events = [*held, *self._ours(page.events)]
        held = [] if window_scanned else _last_transaction(events)
        if held:
            events = events[: len(events) - len(held)]
            if not events:
                return held  # one transaction so far: read on before writing anything
            # the cursor stored with this page is its last whole transaction's last event
            page = dataclasses.replace(page, cursor=events[-1].id)
        fetched = await self._prepare(page, events, builds)
        await queue.put(dataclasses.replace(fetched, anchor=await self._new_anchor(page)))
        return held

    async def _prepare(
        self, page: EventPage, events: Sequence[RawEvent], builds: dict[str, History],
        progress: store.BackfillProgress | None = None,
    ) -> FetchedPage:
        """A page's events decoded and prepared for writing (see store.prepare_page), with what storage says
        of the schedules its creations leave out and the metadata of the tokens it names first."""
        started = time.perf_counter()
        with metrics.STAGE_SECONDS.labels("decode").time():
            # in a thread: meanwhile the event loop sends the statements of the page being committed
            decoded = await asyncio.to_thread(lambda: [decode(raw) for raw in events])
        seconds = time.perf_counter() - started
        with metrics.STAGE_SECONDS.labels("storage").time():
            stored = await self._stored_schedules(decoded, builds)
            tokens = await self._new_tokens(decoded)
        started = time.perf_counter()
        with metrics.STAGE_SECONDS.labels("prepare").time():
            prepared = await self._retry(partial(self._prepare_page, decoded, stored), "read the index")
        seconds += time.perf_counter() - started
        return FetchedPage(page, prepared, seconds, progress, tokens)

    async def _prepare_page(
        self, decoded: Sequence[Decoded], stored: dict[StreamKey, StoredSchedule]
    ) -> store.PreparedPage:
        assert self._reader is not None
        async with self._reader.acquire() as reader:
            return await store.prepare_page(reader, decoded, stored, self._ahead)

    async def _fill_from_lake(
        self, start: int, exc: OutOfRetention, queue: asyncio.Queue[FetchedPage], builds: dict[str, History]
    ) -> Position:
        """Queue the ledgers from `start` to the lake's newest as pages; where RPC takes over."""
        lake = self.settings.lake_url
        assert lake is not None
        log.info("ledgers %d-%d are older than %s keeps: reading them from the data lake %s", start,
                 exc.oldest_ledger - 1, self.settings.rpc_url, lake)
        cannot = (f"The indexer must continue from ledger {start}, but {self.settings.rpc_url} only keeps ledgers "
                  f"{exc.oldest_ledger}-{exc.latest_ledger}, and the data lake cannot give them")
        accept = (f"give a lake that holds them, or accept the gap with `flowfi index --restart-from-ledger "
                  f"{exc.oldest_ledger}`")
        try:
            latest = await self._retry(self.rpc.get_latest_ledger, "getLatestLedger")
            last = await self._lake_pages(lake, start, None, latest, queue, builds)
        except LakeError as error:
            raise IndexerStopped(f"{cannot}: {error}. Else {accept}.") from error
        if last < start:
            raise IndexerStopped(f"{cannot}: it has no ledger {start}; {accept}.")
        log.info("read ledgers %d-%d from the data lake; continuing from %s", start, last, self.settings.rpc_url)
        return Position(cursor=ids.end_of_ledger(last), start_ledger=None)

    async def _lake_pages(
        self, lake: str, start: int, end: int | None, latest: LedgerInfo, queue: asyncio.Queue[FetchedPage],
        builds: dict[str, History], progress: store.BackfillProgress | None = None,
    ) -> int:
        """Queue the ledgers start..end of `lake` (to its newest when `end` is None) as pages of whole ledgers;
        the last ledger queued. `latest` is the chain's newest ledger as the RPC last named it, what the pages
        say the index is behind; asked again when a batch passes it, so that the cursor's newest ledger and
        its close time stay a pair. An unreachable lake is retried with backoff from the ledger it stopped at."""
        next_ledger, attempt = start, 0
        while True:
            try:
                async with contextlib.aclosing(lake_batches(
                    lake, self.contract_ids, start=next_ledger, end=end, network=self.settings.network_passphrase,
                    max_events=self.settings.page_size,
                )) as batches:
                    async for batch in batches:
                        if batch.last > latest.sequence:
                            latest = await self._newer_latest(latest)
                        newest = latest if latest.sequence >= batch.last else LedgerInfo(batch.last, "", 0)
                        page = EventPage(batch.events, ids.end_of_ledger(batch.last), newest.sequence, batch.first,
                                         newest.close_time)
                        await queue.put(await self._prepare(page, self._ours(batch.events), builds, progress))
                        next_ledger, attempt = batch.last + 1, 0
                return next_ledger - 1
            except LakeUnavailable as exc:
                attempt += 1
                wait = min(0.2 * 2**attempt, self.max_backoff) * random.uniform(0.5, 1.0)
                log.warning("reading the data lake failed (%s); retry %d in %.1f s", exc, attempt, wait)
                await asyncio.sleep(wait)

    async def _newer_latest(self, latest: LedgerInfo) -> LedgerInfo:
        """The RPC's newest ledger now, or `latest` where the RPC does not answer: a lake read goes on without it."""
        try:
            return max(latest, await self.rpc.get_latest_ledger(), key=lambda ledger: ledger.sequence)
        except RetryableRpcError as exc:
            log.debug("getLatestLedger failed during a lake read (%s); the newest ledger known stays %d", exc,
                      latest.sequence)
            return latest

    async def _stored_schedules(
        self, decoded: Sequence[Decoded], builds: dict[str, History]
    ) -> dict[StreamKey, StoredSchedule]:
        """What storage says of the schedules this page's creation events leave out, under the rules of the
        build in force at each event."""
        wanted: dict[str, list[int]] = {}
        for d in decoded:
            chain_event = d.event
            if chain_event is None:
                continue
            event, history = chain_event.event, builds[chain_event.contract_id]
            if isinstance(event, ContractUpgraded):
                history.upgraded(chain_event.id)
            elif isinstance(event, StreamEvent) and needs_storage(event, history.at(chain_event.id).hides_cliffs):
                wanted.setdefault(chain_event.contract_id, []).append(event.stream_id)
        stored: dict[StreamKey, StoredSchedule] = {}
        for contract_id, stream_ids in wanted.items():
            found = await self._retry(partial(storage.schedules, self.rpc, contract_id, stream_ids),
                                      "getLedgerEntries")
            stored.update(((contract_id, stream_id), schedule) for stream_id, schedule in found.items())
        return stored

    async def _new_tokens(self, decoded: Sequence[Decoded]) -> dict[str, TokenMetadata | None]:
        """The metadata of the tokens that these events name and the index has not seen."""
        new = {token for d in decoded if d.event is not None
               and (token := getattr(d.event.event, "token_address", None)) is not None} - self._known_tokens
        if not new:
            return {}
        self._known_tokens |= new
        return await self._retry(partial(storage.token_metadata, self.rpc, new), "getLedgerEntries")

    def _ours(self, events: Sequence[RawEvent]) -> list[RawEvent]:
        """The events of the indexed contracts from successful transactions (a server's filter is not
        trusted, and a failed transaction's events changed nothing on chain)."""
        kept = []
        for raw in events:
            if raw.contract_id not in self.contract_ids:
                metrics.EVENTS_SKIPPED.labels(reason="other contract").inc()
            elif raw.in_successful_contract_call is False:
                metrics.EVENTS_SKIPPED.labels(reason="failed transaction").inc()
            else:
                kept.append(raw)
        if len(kept) < len(events):
            log.debug("skipped %d events of other contracts or failed transactions", len(events) - len(kept))
        return kept

    async def _take_writer_lock(self, refuse: str | None = None) -> asyncpg.Connection:
        """A new connection holding the writer lock, waiting for it while another worker has it, or with
        `refuse`, WriterBusy saying to stop that worker, then `refuse`. The lock lives as long as the
        connection."""
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None
        conn = await connect(self.database_url, "flowfi-worker")
        widen_send_buffer(conn)
        standing_by = False
        try:
            while True:
                try:
                    await store.take_writer_lock(conn, refuse or "", for_the_session=True)
                    break
                except store.WriterBusy as busy:
                    if refuse is not None:
                        raise
                    if not standing_by:
                        log.info("another worker writes this database (%s holds the writer lock; a database has "
                                 "one writer, whatever contracts each indexes); standing by to take over",
                                 busy.holder)
                        standing_by = True
                await asyncio.sleep(STANDBY_POLL_SECONDS)
        except BaseException:
            conn.terminate()
            raise
        if standing_by:
            log.info("took over as the writing worker")
        metrics.IS_WRITER.set(1)
        self._conn = conn
        return conn

    async def restart_from(self, ledger: int) -> None:
        """Move the stored cursor so that this run, and the next ones until it gets there, continue from
        `ledger`. IndexerStopped for a ledger the chain has not closed yet, the next one aside: an index
        ahead of the chain looks like one of another chain (a network reset) once the RPC is far or long
        behind it."""
        # a client of its own: run(), which closes self.rpc, may not follow
        rpc = RpcClient(self.settings.rpc_url, timeout=self.settings.rpc_timeout)
        try:
            network = await self._until_stopped(self._retry(rpc.get_network, "getNetwork"))
            if network is None:
                return
            self._expect_network(network)
            latest = await self._until_stopped(self._retry(rpc.get_latest_ledger, "getLatestLedger"))
        finally:
            await rpc.aclose()
        if latest is None:
            return
        if not 1 <= ledger <= latest.sequence + 1:
            raise IndexerStopped(
                f"--restart-from-ledger {ledger}: the chain's newest ledger is {latest.sequence} (at "
                f"{self.settings.rpc_url}); give a ledger from 1 to {latest.sequence + 1}")
        conn = await connect(self.database_url, "flowfi-worker")
        try:
            async with conn.transaction():  # under the writer lock: a worker would write its cursor over this one
                await store.take_writer_lock(conn, f"run `flowfi index --restart-from-ledger {ledger}` again")
                await store.restart_cursor(conn, self.contract_ids, ledger)
        finally:
            await conn.close()

    async def _check_network(self, retry: bool = True) -> bool:
        """Whether the RPC serves the configured network (True), or raise IndexerStopped. Without `retry`,
        an unreachable server stops at once: a backfill needs it only for the contract's storage, and says
        so."""
        if retry:
            network = await self._retry(self.rpc.get_network, "getNetwork")
        else:
            try:
                network = await self.rpc.get_network()
            except RpcError as exc:
                raise IndexerStopped(
                    f"{exc}. The backfill reads through Stellar RPC what the contract's storage says of the "
                    "schedules creation events leave out: set FLOWFI_RPC_URL (or --rpc-url) to an RPC server of "
                    "this network."
                ) from exc
        self._expect_network(network)
        return True

    def _expect_network(self, network: Network) -> None:
        """IndexerStopped unless the RPC's `network` is the configured one."""
        if network.passphrase != self.settings.network_passphrase:
            raise IndexerStopped(
                f"{self.settings.rpc_url} serves the network {network.passphrase!r}, but this indexer is "
                f"configured for {self.settings.network_passphrase!r}. Set FLOWFI_NETWORK_PASSPHRASE "
                "(or --network-passphrase) to the RPC's network, or point FLOWFI_RPC_URL at the right RPC."
            )

    async def _starting_position(self) -> Position:
        assert self._conn is not None
        cursor = await store.load_cursor(self._conn, self.contract_ids)
        if cursor is not None:
            log.info("resuming after ledger %d (cursor %s)", cursor.last_ledger, cursor.rpc_cursor)
            self.chain.indexed(cursor.last_ledger, cursor.anchor)
            return Position(cursor=cursor.rpc_cursor, start_ledger=None)
        if self.settings.start_ledger is not None:
            log.info("starting at the configured ledger %d", self.settings.start_ledger)
            return Position(cursor=None, start_ledger=self.settings.start_ledger)
        health = await self._retry(self.rpc.get_health, "getHealth")
        start = max(health.oldest_ledger, health.latest_ledger - RECENT_LEDGERS)
        if start == health.oldest_ledger:
            log.info("no cursor and no start ledger: starting at ledger %d, the oldest %s keeps", start,
                     self.settings.rpc_url)
        else:
            log.info("no cursor and no start ledger: starting at ledger %d, about a day back", start)
        return Position(cursor=None, start_ledger=start)

    async def _fetch(self, position: Position) -> EventPage:
        """The page after `position`, waiting for a server behind it (said once): a lagging node, unless
        it is another chain than the one indexed (then IndexerStopped)."""
        waiting = False
        while True:
            try:
                with metrics.STAGE_SECONDS.labels("fetch").time():
                    page = await self._retry(partial(
                        self.rpc.get_events, self.contract_ids, cursor=position.cursor,
                        start_ledger=position.start_ledger, limit=self.settings.page_size), "getEvents")
            except NotYetAvailable as exc:
                if not waiting:
                    log.warning("%s has ledgers up to %d, not yet %d: waiting for it (a node behind its peers, or a "
                                "start ledger ahead of the chain)", self.settings.rpc_url, exc.latest_ledger,
                                exc.wanted)
                    waiting = True
                await self._judge_chain(await self._retry(self.rpc.get_latest_ledger, "getLatestLedger"))
                await asyncio.sleep(self.settings.poll_interval)
                continue
            if waiting:
                log.info("%s has ledger %d now; going on", self.settings.rpc_url, page.latest_ledger)
            self.chain.caught_up()
            return page

    async def _check_chain(self) -> bool:
        """Whether the RPC serves the chain indexed, as far as its newest ledger tells (True), or raise
        IndexerStopped."""
        await self._judge_chain(await self._retry(self.rpc.get_latest_ledger, "getLatestLedger"))
        return True

    async def _judge_chain(self, latest: LedgerInfo) -> None:
        """IndexerStopped unless the RPC, whose newest ledger is `latest`, serves the chain indexed."""
        try:
            await self.chain.judge(latest, lambda sequence: self._retry(partial(self.rpc.get_ledger, sequence),
                                                                        "getLedgers"))
        except OtherChain as exc:
            raise IndexerStopped(str(exc)) from exc

    async def _new_anchor(self, page: EventPage) -> LedgerInfo | None:
        """The anchor to record with `page`: its last whole ledger as the RPC names it, on the first page
        of a run and then every ANCHOR_INTERVAL seconds; None otherwise, or when the RPC cannot say."""
        ledger = ids.last_complete_ledger(page.cursor)
        if time.monotonic() < self._next_anchor or ledger < 1:
            return None
        try:
            anchor = await self._retry(partial(self.rpc.get_ledger, ledger), "getLedgers", attempts=ANCHOR_ATTEMPTS)
        except (OutOfRetention, NotYetAvailable):
            return None  # a node that no longer, or not yet, has it: the next page tries again
        except FatalRpcError as exc:
            log.warning("%s does not give ledger hashes (%s): the index keeps no anchor of its chain, so a reset "
                        "of the network will not be told from a lagging node", self.settings.rpc_url, exc)
            self._next_anchor = float("inf")
            return None
        except RetryableRpcError as exc:
            log.warning("getLedgers failed %d times (%s): the page is written without a new anchor of the chain; "
                        "trying again in %.0f s", ANCHOR_ATTEMPTS, exc, ANCHOR_INTERVAL)
            self._next_anchor = time.monotonic() + ANCHOR_INTERVAL
            return None
        self._next_anchor = time.monotonic() + ANCHOR_INTERVAL
        return anchor

    async def _write(self, conn: asyncpg.Connection, fetched: FetchedPage) -> None:
        if self._conn is None or conn is not self._conn or self._conn.is_closed():
            raise _LockLost
        page = fetched.page
        started = time.perf_counter()
        with metrics.STAGE_SECONDS.labels("commit").time():
            written = await store.commit_page(conn, self.contract_ids, page, fetched.prepared, fetched.progress,
                                              fetched.tokens, fetched.anchor)
        self._ahead.committed()
        self.chain.indexed(store.ledger_of_cursor(page), fetched.anchor)
        elapsed = fetched.prepare_seconds + time.perf_counter() - started
        self.events_indexed += written.new_events
        self.dead_letters += written.dead_letters
        self.last_ledger = store.ledger_of_cursor(page)
        lag = page.latest_ledger - store.ledger_of_cursor(page)
        metrics.PAGE_SECONDS.observe(elapsed)
        metrics.EVENTS_INDEXED.inc(written.new_events)
        metrics.DEAD_LETTERS.inc(written.dead_letters)
        metrics.LAST_LEDGER.set(store.ledger_of_cursor(page))
        metrics.LEDGER_LAG.set(lag)
        self.progress.page(page.cursor, lag, written.new_events, written.dead_letters)
        dead = fetched.prepared.dead
        for d in dead[:DEAD_LETTERS_LOGGED]:
            log.warning("event %s went to the dead letters: %s", d.raw.id, d.error)
        if len(dead) > DEAD_LETTERS_LOGGED:
            log.warning("%d more events of this page went to the dead letters (reasons in dead_letters)",
                        len(dead) - DEAD_LETTERS_LOGGED)
        if self._unconfirmed:
            self._check_contracts(fetched.prepared.fresh)
        if self.page_written is not None:
            self.page_written(fetched, written)

    def _check_contracts(self, fresh: Sequence[Decoded]) -> None:
        """Say once of an indexed contract whose first events are none of FlowFi's that it may be another (a
        token's id given for the stream contract's fills the dead letters with its transfers)."""
        for decoded in fresh:
            others = self._unconfirmed.get(decoded.raw.contract_id)
            if others is None:
                continue
            if decoded.event is not None:
                del self._unconfirmed[decoded.raw.contract_id]
                continue
            others.append(str(decoded.topic_json[0]) if decoded.topic_json else "?")
            if len(others) >= NOT_FLOWFI_AFTER:
                log.warning("contract %s has sent %d events and none is a FlowFi event (%s): is it a FlowFi "
                            "contract? FLOWFI_CONTRACT_IDS names the contracts to index", decoded.raw.contract_id,
                            len(others), ", ".join(sorted(set(others))[:5]))
                del self._unconfirmed[decoded.raw.contract_id]

    async def _retry(self, attempt: Callable[[], Awaitable[T]], what: str, attempts: int | None = None) -> T:
        """`attempt`'s result, tried again with backoff while it fails in a way that may pass (each retry
        logged): for ever, or `attempts` times in all, after which the last error is raised."""
        async for try_ in AsyncRetrying(
            retry=retry_if_exception(_retryable),
            stop=stop_never if attempts is None else stop_after_attempt(attempts),
            wait=wait_exponential_jitter(multiplier=0.2, max=self.max_backoff),
            before_sleep=lambda state: self._log_retry(what, state),
            reraise=True,
        ):
            with try_:
                return await attempt()
        raise AssertionError("unreachable")

    def _log_retry(self, what: str, retry_state: object) -> None:
        outcome = getattr(retry_state, "outcome", None)
        error = outcome.exception() if outcome is not None else None
        wait = getattr(getattr(retry_state, "next_action", None), "sleep", 0.0)
        if isinstance(error, DATABASE_UNAVAILABLE):
            metrics.DATABASE_ERRORS.inc()
            metrics.IS_WRITER.set(0)
            if self._conn is not None:
                self._conn.terminate()
                self._conn = None
            hint = "; is the database server running, and DATABASE_URL right?"
        elif isinstance(error, ROLLED_BACK):
            metrics.ROLLED_BACK.inc()
            hint = "; PostgreSQL rolled the transaction back over another session's (nothing of it was written)"
        else:
            metrics.RPC_ERRORS.labels(method=what).inc()
            # an unreachable server's error names the setting already
            hint = (f"; is FLOWFI_RPC_URL (--rpc-url) a Stellar RPC server? it is {self.settings.rpc_url}"
                    if what == "getNetwork" and not isinstance(error, Unreachable) else "")
        log.warning("%s failed (%s); retry %d in %.1f s%s", what, error,
                    getattr(retry_state, "attempt_number", 0), wait, hint)

    async def _until_stopped(self, work: Awaitable[T]) -> T | None:
        """`work`'s result, or None if a stop is requested first (the work is then cancelled)."""
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self.stopping.wait())
        done, _ = await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            stop.cancel()
            return task.result()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return None


class _ProcessTuning:
    """The process tuned for the workers running in it (see GC_THRESHOLDS and SWITCH_INTERVAL): from when
    the first starts to when the last stops, when Python's settings are put back."""

    def __init__(self) -> None:
        self.workers = 0
        self.saved: tuple[tuple[int, ...], float] = ((), 0.0)
        self.collector: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.workers += 1
        if self.workers == 1:
            self.saved = gc.get_threshold(), sys.getswitchinterval()
            gc.set_threshold(*GC_THRESHOLDS)
            sys.setswitchinterval(SWITCH_INTERVAL)
            self.collector = asyncio.create_task(self._collect())

    def stop(self) -> None:
        self.workers -= 1
        if self.workers == 0 and self.collector is not None:
            thresholds, interval = self.saved
            gc.set_threshold(*thresholds)
            sys.setswitchinterval(interval)
            self.collector.cancel()
            self.collector = None

    @staticmethod
    async def _collect() -> None:
        """The young generations every GC_INTERVAL, and every GC_FULL_EVERY of those all of them: an object
        that outlived a collection and later became garbage in a cycle waits in the oldest generation,
        which a count of new objects would seldom reach."""
        for tick in itertools.count(1):
            await asyncio.sleep(GC_INTERVAL)
            gc.collect(2 if tick % GC_FULL_EVERY == 0 else 1)


_tuning = _ProcessTuning()


def _retryable(error: BaseException) -> bool:
    """What `_retry` tries again: failures that may pass (among them a transaction PostgreSQL rolled back
    over another session's, which it asks to retry), but not a server behind the ledger asked for, which
    the caller waits for in its own way."""
    return (isinstance(error, (RetryableRpcError, *ROLLED_BACK, *DATABASE_UNAVAILABLE))
            and not isinstance(error, NotYetAvailable))


async def _next_page(queue: asyncio.Queue[FetchedPage], fetcher: asyncio.Task[None]) -> FetchedPage | None:
    """The next queued page; once the queue is empty and the fetcher has ended, its error, or None when it
    ended by running out of pages (a backfill's end)."""
    if queue.empty() and fetcher.done():
        fetcher.result()
        return None
    get = asyncio.ensure_future(queue.get())
    try:
        await asyncio.wait({get, fetcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not get.done():
            get.cancel()
    if get.done() and not get.cancelled():
        return get.result()
    return await _next_page(queue, fetcher)


def _last_transaction(events: Sequence[RawEvent]) -> list[RawEvent]:
    """The events of the last transaction in `events` (they share its TOID, the id's first part)."""
    if not events:
        return []
    toid = events[-1].id.partition("-")[0] + "-"
    start = len(events)
    while start > 0 and events[start - 1].id.startswith(toid):
        start -= 1
    return list(events[start:])


def _first_missing(position: Position) -> int:
    """The first ledger not yet wholly indexed at `position`."""
    if position.cursor is not None:
        return ids.last_complete_ledger(position.cursor) + 1
    assert position.start_ledger is not None
    return position.start_ledger


def _retention_advice(position: Position, exc: OutOfRetention, rpc_url: str) -> str:
    where = f"cursor {position.cursor}" if position.cursor is not None else f"ledger {position.start_ledger}"
    first_missing, oldest = _first_missing(position), exc.oldest_ledger
    missing = f"ledger {first_missing}" if first_missing == oldest - 1 else f"ledgers {first_missing}-{oldest - 1}"
    return (
        f"The indexer must continue from {where}, but {rpc_url} only keeps ledgers {oldest}-{exc.latest_ledger}: "
        f"the events of {missing} cannot be fetched from it. Either set FLOWFI_LAKE_URL to a data lake of this "
        "network (the worker then reads them from it), point FLOWFI_RPC_URL at an RPC server whose history "
        f"reaches ledger {first_missing} (a full-history provider), or accept the gap and continue from the "
        f"oldest ledger it keeps with `flowfi index --restart-from-ledger {oldest}` (the events of the missing "
        "ledgers will then be absent from the database)."
    )
