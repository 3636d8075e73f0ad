from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import pytest

from devnet import running_devnet
from indexer import store
from tests.indexing import MODEL_BUILD, assert_streams_match_model


def start_worker(devnet_url: str, contract_id: str, database_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": database_url, "FLOWFI_RPC_URL": devnet_url,
           "FLOWFI_CONTRACT_IDS": contract_id, "FLOWFI_START_LEDGER": "1", "FLOWFI_PAGE_SIZE": "20",
           "FLOWFI_POLL_INTERVAL": "0.05", "FLOWFI_CONTRACT_BUILD": MODEL_BUILD}
    with log.open("wb") as stderr:
        return subprocess.Popen([sys.executable, "-m", "flowfi", "index"], env=env,
                                stdout=subprocess.DEVNULL, stderr=stderr)


async def wait_until(predicate: object, timeout: float) -> float:
    started = time.monotonic()
    async with asyncio.timeout(timeout):
        while not await predicate():  # type: ignore[operator]
            await asyncio.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.slow
async def test_two_workers_one_writes_and_the_other_takes_over(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    with running_devnet(ledger_interval=0.05, traffic_per_ledger=4, seed=7, build=MODEL_BUILD) as devnet:
        contract = devnet.chain.contract_id
        first = start_worker(devnet.url, contract, database_url, tmp_path / "first.log")

        async def indexing() -> bool:
            return bool(await db.fetchval("SELECT count(*) FROM events"))

        await wait_until(indexing, 30)
        second = start_worker(devnet.url, contract, database_url, tmp_path / "second.log")

        async def second_standing_by() -> bool:
            return "(flowfi-worker, role" in (tmp_path / "second.log").read_text()

        await wait_until(second_standing_by, 30)
        assert await db.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted") == 1
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = await db.fetchval("SELECT max(last_ledger) FROM indexer_cursor")

        async def advanced() -> bool:
            return bool(await db.fetchval("SELECT max(last_ledger) FROM indexer_cursor") > killed_at + 5)

        takeover_seconds = await wait_until(advanced, 30)
        assert takeover_seconds < 10
        assert "took over" in (tmp_path / "second.log").read_text()

        devnet.chain.traffic_per_ledger = 0  # no more events: let the survivor catch up, then compare
        await asyncio.sleep(0.3)
        total = devnet.chain.event_count

        async def caught_up() -> bool:
            return bool(await db.fetchval("SELECT count(*) FROM contract_events") >= total)

        await wait_until(caught_up, 30)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=15) == 0
        assert await db.fetchval("SELECT count(*) FROM contract_events") == devnet.chain.event_count
        await assert_streams_match_model(db, devnet.chain.contract)


class LetGoBeforeAsked:
    """A connection on which the writer lock's holder lets it go just after a try to take it failed, and
    before the holder is asked for: the race a refusal must not lose to."""

    def __init__(self, conn: asyncpg.Connection, holder: asyncpg.Connection) -> None:
        self.conn, self.holder = conn, holder

    async def fetchval(self, query: str, *args: object) -> object:
        return await self.conn.fetchval(query, *args)

    async def fetchrow(self, query: str, *args: object) -> object:
        await self.holder.execute("SELECT pg_advisory_unlock_all()")
        return await self.conn.fetchrow(query, *args)


async def test_a_writer_lock_let_go_while_its_holder_is_asked_for_is_taken(database_url: str) -> None:
    holder, conn = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", store.WRITER_LOCK_KEY)
        async with conn.transaction():
            await store.take_writer_lock(LetGoBeforeAsked(conn, holder), "try again")  # type: ignore[arg-type]
            assert await store.writer_lock_holder(holder) is not None
        assert await store.writer_lock_holder(holder) is None
    finally:
        await holder.close()
        await conn.close()


async def test_the_lock_holders_address_is_not_guessed_where_the_asking_role_may_not_see_it(
        database_url: str, db: asyncpg.Connection) -> None:
    role = f"flowfi_peer_{uuid.uuid4().hex[:8]}"
    await db.execute(f"CREATE ROLE {role} LOGIN")
    holder = await asyncpg.connect(database_url)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", store.WRITER_LOCK_KEY)
        asking = await asyncpg.connect(database_url, user=role)
        try:
            named = await store.writer_lock_holder(asking)
        finally:
            await asking.close()
    finally:
        await holder.close()
        await db.execute(f"DROP ROLE {role}")
    assert named is not None and named.endswith("from an address this role may not see)"), named
