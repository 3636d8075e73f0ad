"""The one LISTEN connection of an API process, and the reader behind it.

NOTIFY is only a doorbell ("rows up to this id are committed"): on each ring the listener reads the
rows after the last one it published, serializes each once and publishes them to the hub in chain
order. The connection is dedicated (a pooled one would be reset with UNLISTEN). A dead server is
noticed by the termination callback or by a keep-alive query; the listener then reconnects with
backoff, LISTENs again and catches up from the last id it published, so subscribers see no gap.
"""

from __future__ import annotations

import asyncio
import logging
import random

import asyncpg

from api import queries
from api.hub import Hub, LiveEvent
from api.payloads import event_parties
from api.sse import encode_row
from indexer.tables import EVENTS_CHANNEL
from indexer.unavailable import DATABASE_UNAVAILABLE

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 5.0
CONNECT_TIMEOUT = 10.0  # asyncpg's default (60 s) would hold live delivery that long on a connect that hangs
# A database out of reach, or any error the server sends: the listener's statements are its own, so an
# error is its connection's, and a new one is the remedy.
CONNECTION_ERRORS = (*DATABASE_UNAVAILABLE, asyncpg.PostgresError)
FAILURE_PAUSE = 1.0  # seconds before reconnecting after an unexpected failure, which may come again


class Listener:
    def __init__(self, database_url: str, hub: Hub, *, max_backoff: float = 10.0) -> None:
        self.database_url = database_url
        self.hub = hub
        self.max_backoff = max_backoff
        # Publish in batches a client's queue can hold, letting clients drain in between: a burst
        # must not overflow a client that reads at full speed.
        self.batch = max(1, min(1000, hub.client_buffer // 2))
        self.connected = False
        self.became_ready = asyncio.Event()  # the hub's high-water mark is set: subscribers may resume
        self.reconnects = 0
        self._rung = asyncio.Event()
        self._lost = asyncio.Event()

    @property
    def ready(self) -> bool:
        return self.became_ready.is_set()

    async def run(self) -> None:
        """Listen, read and publish until cancelled, reconnecting whenever the connection is lost."""
        attempt = 0
        while True:
            try:
                conn = await asyncpg.connect(self.database_url, timeout=CONNECT_TIMEOUT,
                                             server_settings={"application_name": "flowfi-listener"})
            except CONNECTION_ERRORS as exc:
                attempt += 1
                delay = min(self.max_backoff, 0.1 * 2**attempt) * (0.5 + random.random() / 2)
                log.warning("live listener cannot connect (%s); retry %d in %.1f s", exc, attempt, delay)
                await asyncio.sleep(delay)
                continue
            pause = 0.0
            try:
                await self._listen(conn)
            except CONNECTION_ERRORS as exc:
                log.warning("live listener lost its connection (%s); reconnecting", exc)
            except Exception:  # whatever else, live delivery must not end with this task
                log.exception("live listener failed; reconnecting in %.0f s", FAILURE_PAUSE)
                pause = FAILURE_PAUSE
            finally:
                self.connected = False
                conn.terminate()
            attempt = 0
            self.reconnects += 1
            await asyncio.sleep(pause)

    async def _listen(self, conn: asyncpg.Connection) -> None:
        self._lost.clear()
        conn.add_termination_listener(lambda _conn: self._lost.set())
        await conn.add_listener(EVENTS_CHANNEL, lambda *_: self._rung.set())
        if not self.ready:
            self.hub.high_water = await queries.latest_event_id(conn)
            self.became_ready.set()
        self.connected = True
        log.info("live listener connected; publishing events after %s", self.hub.high_water or "the start")
        while True:
            self._rung.clear()
            await self._catch_up(conn)
            await self._wait_for_ring(conn)

    async def _wait_for_ring(self, conn: asyncpg.Connection) -> None:
        rung = asyncio.ensure_future(self._rung.wait())
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait({rung, lost}, timeout=KEEPALIVE_SECONDS,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            rung.cancel()
            lost.cancel()
        if lost in done:
            raise ConnectionError("the database closed the listening connection")
        if not done:
            await conn.fetchval("SELECT 1", timeout=KEEPALIVE_SECONDS)

    async def _catch_up(self, conn: asyncpg.Connection) -> None:
        while True:
            rows = await queries.events_after(conn, self.hub.high_water, self.batch)
            if not rows:
                return
            self.hub.publish(
                LiveEvent(
                    id=row["id"],
                    kind=row["kind"],
                    stream_id=None if row["stream_id"] is None else int(row["stream_id"]),
                    parties=event_parties(row),
                    frame=encode_row(row),
                    row=row,
                )
                for row in rows
            )
            if len(rows) < self.batch:
                return
            await asyncio.sleep(0)
