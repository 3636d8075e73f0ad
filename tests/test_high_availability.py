from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from devnet import running_devnet
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
