"""The ledger-polling worker: getEvents page by page, decode, store, repeat; poll once caught up.

Where it starts: the stored cursor, else the configured start ledger, else recent history. What it
retries (with exponential backoff and jitter, logged, forever): an unreachable or failing RPC server
and a lost database connection. What stops it, with a message saying what to do: a network
passphrase that does not match, and a cursor that fell out of the RPC server's retention window.
A stop request (SIGINT/SIGTERM) takes effect between pages; a page is committed whole or not at all.

Fetching and writing overlap: while one page is written, the next is fetched and decoded (at most
`PREFETCH_PAGES` wait). Pages are written in order, each after the one before has committed; when
the writer loses its connection, the pages fetched ahead are dropped and it resumes from the cursor
it committed last.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import asyncpg
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from indexer import metrics, store
from indexer.database import connect
from indexer.decode import Decoded, decode
from indexer.progress import Progress
from indexer.rpc import EventPage, OutOfRetention, RetryableRpcError, RpcClient
from indexer.settings import IndexerSettings

log = logging.getLogger(__name__)

# Where a worker with no cursor and no start ledger begins: about a day of ledgers back.
RECENT_LEDGERS = 17_280
STANDBY_POLL_SECONDS = 1.0
# Pages fetched and decoded ahead of the one being written (one more may wait to be queued).
PREFETCH_PAGES = 1
# The worker allocates some 30 objects per event (parsed values, dataclasses, rows), none of them in
# reference cycles, and keeps a page or two of them alive. At Python's default first threshold (700)
# the cyclic collector runs every ~25 events and keeps traversing those pages: about a fifth of the
# worker's CPU time for nothing to collect. Set for the process when the worker runs.
GC_THRESHOLDS = (50_000, 20, 10)
# Decoding yields to the event loop after this many events, so that the page being written meanwhile
# moves on as soon as the database answers.
DECODE_CHUNK = 500

T = TypeVar("T")

# A lost or broken connection (InternalClientError: the server went away mid-statement and left the
# protocol in a state the connection cannot leave). The page is retried on a new connection.
DATABASE_ERRORS = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.InternalClientError,
                   asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError, TimeoutError)


class _LockLost(Exception):
    """The connection holding the writer lock is gone (and the lock with it)."""


class IndexerStopped(Exception):
    """The worker cannot go on; the message says why and what to do."""


@dataclass
class Position:
    cursor: str | None
    start_ledger: int | None


@dataclass(frozen=True, slots=True)
class FetchedPage:
    page: EventPage
    decoded: list[Decoded]
    decode_seconds: float


class Worker:
    def __init__(self, settings: IndexerSettings, database_url: str, *, max_backoff: float = 30.0) -> None:
        self.settings = settings
        self.database_url = database_url
        self.contract_ids = settings.contract_ids
        self.rpc = RpcClient(settings.rpc_url, timeout=settings.rpc_timeout)
        self.max_backoff = max_backoff
        self.stopping = asyncio.Event()
        self._conn: asyncpg.Connection | None = None
        self.events_indexed = 0
        self.progress = Progress()

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        """Index until stopped. Only the holder of the contracts' advisory lock writes; another worker
        on the same database stands by and takes over within seconds when the holder dies."""
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            if await self._until_stopped(self._check_network()) is None:
                return
            while not self.stopping.is_set():
                conn = await self._until_stopped(self._retry(self._take_writer_lock, "take the writer lock"))
                if conn is None:
                    break
                position = await self._retry(self._starting_position, "read the cursor")
                await self._index(conn, position)
        finally:
            await self.rpc.aclose()
            if self._conn is not None:
                await self._conn.close()

    async def _index(self, conn: asyncpg.Connection, position: Position) -> None:
        """Page through the chain while `conn`, which holds the lock, lives: write the pages that
        `_fetch_pages` queues, in order."""
        queue: asyncio.Queue[FetchedPage] = asyncio.Queue(maxsize=PREFETCH_PAGES)
        fetcher = asyncio.create_task(self._fetch_pages(position, queue))
        try:
            while not self.stopping.is_set():
                fetched = await self._until_stopped(_next_page(queue, fetcher))
                if fetched is None:
                    return
                try:
                    await self._retry(partial(self._write, conn, fetched), "write a page")
                except _LockLost:
                    log.warning("the database connection holding the writer lock was lost; taking it again")
                    return
        finally:
            fetcher.cancel()  # the pages fetched ahead are dropped
            await asyncio.gather(fetcher, return_exceptions=True)

    async def _fetch_pages(self, position: Position, queue: asyncio.Queue[FetchedPage]) -> None:
        """Fetch and decode the pages after `position` into `queue`, polling once caught up."""
        while True:
            page = await self._retry(partial(self._fetch, position), "getEvents")
            decoded: list[Decoded] = []
            decode_seconds = 0.0
            for i in range(0, len(page.events), DECODE_CHUNK):
                started = time.perf_counter()
                decoded += [decode(raw) for raw in page.events[i : i + DECODE_CHUNK]]
                decode_seconds += time.perf_counter() - started
                await asyncio.sleep(0)
            await queue.put(FetchedPage(page, decoded, decode_seconds))
            position = Position(cursor=page.cursor, start_ledger=None)
            if len(page.events) < self.settings.page_size:
                await asyncio.sleep(self.settings.poll_interval)

    async def _take_writer_lock(self) -> asyncpg.Connection:
        """A new connection holding the advisory lock of these contracts (waiting for it if another
        worker has it). The lock lives as long as the connection."""
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None
        conn = await connect(self.database_url, "flowfi-worker")
        key = store.writer_lock_key(self.contract_ids)
        standing_by = False
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                if not standing_by:
                    log.info("another worker is indexing these contracts; standing by to take over")
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

    async def forget_cursor(self) -> None:
        """Drop the stored cursor, so that the next run starts at the configured start ledger."""
        conn = await connect(self.database_url, "flowfi-worker")
        try:
            await store.forget_cursor(conn, self.contract_ids)
        finally:
            await conn.close()

    async def _check_network(self) -> bool:
        """Whether the RPC serves the configured network (True), or raise IndexerStopped."""
        network = await self._retry(self.rpc.get_network, "getNetwork")
        if network.passphrase != self.settings.network_passphrase:
            raise IndexerStopped(
                f"{self.settings.rpc_url} serves the network {network.passphrase!r}, but this indexer is "
                f"configured for {self.settings.network_passphrase!r}. Set FLOWFI_NETWORK_PASSPHRASE "
                "(or --network-passphrase) to the RPC's network, or point FLOWFI_RPC_URL at the right RPC."
            )
        return True

    async def _starting_position(self) -> Position:
        assert self._conn is not None
        cursor = await store.load_cursor(self._conn, self.contract_ids)
        if cursor is not None:
            log.info("resuming after ledger %d (cursor %s)", cursor.last_ledger, cursor.rpc_cursor)
            return Position(cursor=cursor.rpc_cursor, start_ledger=None)
        if self.settings.start_ledger is not None:
            log.info("starting at the configured ledger %d", self.settings.start_ledger)
            return Position(cursor=None, start_ledger=self.settings.start_ledger)
        health = await self._retry(self.rpc.get_health, "getHealth")
        start = max(health.oldest_ledger, health.latest_ledger - RECENT_LEDGERS)
        log.info("no cursor and no start ledger: starting at ledger %d, about a day back", start)
        return Position(cursor=None, start_ledger=start)

    async def _fetch(self, position: Position) -> EventPage:
        try:
            return await self.rpc.get_events(
                self.contract_ids, cursor=position.cursor, start_ledger=position.start_ledger,
                limit=self.settings.page_size,
            )
        except OutOfRetention as exc:
            raise IndexerStopped(_retention_advice(position, exc, self.settings.rpc_url)) from exc

    async def _write(self, conn: asyncpg.Connection, fetched: FetchedPage) -> None:
        if self._conn is None or conn is not self._conn or self._conn.is_closed():
            raise _LockLost
        page, decoded = fetched.page, fetched.decoded
        started = time.perf_counter()
        written = await store.write_page(conn, self.contract_ids, page, decoded)
        elapsed = fetched.decode_seconds + time.perf_counter() - started
        self.events_indexed += written.new_events
        lag = page.latest_ledger - store.ledger_of_cursor(page)
        metrics.PAGE_SECONDS.observe(elapsed)
        metrics.EVENTS_INDEXED.inc(written.new_events)
        metrics.DEAD_LETTERS.inc(written.dead_letters)
        metrics.LAST_LEDGER.set(store.ledger_of_cursor(page))
        metrics.LEDGER_LAG.set(lag)
        self.progress.page(store.ledger_of_cursor(page), lag, written.new_events, written.dead_letters)
        for d in decoded:
            if d.error is not None:
                log.warning("event %s went to the dead letters: %s", d.raw.id, d.error)

    async def _retry(self, attempt: Callable[[], Awaitable[T]], what: str) -> T:
        async for try_ in AsyncRetrying(
            retry=retry_if_exception_type((RetryableRpcError, *DATABASE_ERRORS)),
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
        if isinstance(error, DATABASE_ERRORS):
            metrics.DATABASE_ERRORS.inc()
            metrics.IS_WRITER.set(0)
            if self._conn is not None:
                self._conn.terminate()
                self._conn = None
            hint = "; is the database server running, and DATABASE_URL right?"
        else:
            metrics.RPC_ERRORS.labels(method=what).inc()
            hint = (f"; is FLOWFI_RPC_URL (--rpc-url) a Stellar RPC server? it is {self.settings.rpc_url}"
                    if what == "getNetwork" else "")
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


async def _next_page(queue: asyncio.Queue[FetchedPage], fetcher: asyncio.Task[None]) -> FetchedPage:
    """The next queued page; once the queue is empty and the fetcher has failed, its error."""
    if queue.empty() and fetcher.done():
        fetcher.result()  # raises the fetcher's error: it only ends by failing (or being cancelled)
    get = asyncio.ensure_future(queue.get())
    try:
        await asyncio.wait({get, fetcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not get.done():
            get.cancel()
    if get.done() and not get.cancelled():
        return get.result()
    fetcher.result()
    raise AssertionError("the fetcher ended without an error")


def _retention_advice(position: Position, exc: OutOfRetention, rpc_url: str) -> str:
    where = f"cursor {position.cursor}" if position.cursor else f"ledger {position.start_ledger}"
    first_missing = (int(position.cursor.split("-")[0]) >> 32) + 1 if position.cursor else position.start_ledger or 0
    oldest = exc.oldest_ledger or 0
    return (
        f"The indexer must continue from {where}, but {rpc_url} only keeps ledgers "
        f"{exc.oldest_ledger}-{exc.latest_ledger}: the events of ledgers {first_missing}-{oldest - 1} "
        "cannot be fetched from it. Either point FLOWFI_RPC_URL at an RPC server whose history reaches "
        f"ledger {first_missing} (a full-history provider), or accept the gap and continue from the oldest "
        f"ledger it keeps with `flowfi index --restart-from-ledger {oldest}` (the events of the missing "
        "ledgers will then be absent from the database)."
    )
