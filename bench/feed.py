"""Committing FlowFi events to a database the way the worker does, on demand.

A `Feed` generates history on an in-process local network, decodes the FlowFi contract's events, and
commits the next `count` as one page with `store.write_page`: one transaction, one NOTIFY, exactly as the worker does.
"""

from __future__ import annotations

import time

import asyncpg

from devnet import Devnet, Traffic
from indexer import store
from indexer.database import asyncpg_dsn
from indexer.decode import Decoded, decode
from indexer.rpc import EventPage, raw_event


class Feed:
    def __init__(self, events: int, *, seed: int = 7, first_ledger: int = 1) -> None:
        devnet = Devnet(seed=seed, first_ledger=first_ledger)
        devnet.chain.generate_history(events, traffic=Traffic(seed=seed), tx_per_ledger=50)
        self.contract_id = devnet.chain.contract_id
        self.latest_ledger = devnet.chain.latest.sequence
        # the FlowFi contract's events only: the chain also holds its tokens' `transfer` events
        self.decoded: list[Decoded] = [decode(raw_event(e.json)) for e in devnet.chain._events
                                       if e.contract_id == self.contract_id]
        self.position = 0
        self.conn: asyncpg.Connection | None = None

    @property
    def remaining(self) -> int:
        return len(self.decoded) - self.position

    async def connect(self, database_url: str) -> None:
        self.conn = await asyncpg.connect(asyncpg_dsn(database_url))
        self.position = 0

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()
            self.conn = None

    async def commit(self, count: int) -> tuple[float, list[str]]:
        """Commit the next `count` events as one page; the monotonic time just after the commit, and
        the ids committed."""
        assert self.conn is not None
        chunk = self.decoded[self.position : self.position + count]
        if len(chunk) < count:
            raise RuntimeError(f"the feed has only {self.remaining} events left")
        self.position += count
        page = EventPage(tuple(d.raw for d in chunk), chunk[-1].raw.id, self.latest_ledger, 1, int(time.time()))
        await store.write_page(self.conn, (self.contract_id,), page, chunk)
        return time.monotonic(), [d.raw.id for d in chunk]
