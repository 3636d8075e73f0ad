"""The index equals the chain, ledger after ledger: random calls through every entry point of the
local network's contract model, indexed by the real worker as they happen, and after every ledger the
index compared with the contract's storage (`flowfi verify` through getLedgerEntries) and with what the
model says is claimable at several times (the model's formulas are its own, not the indexer's)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import asyncpg
import pytest

from devnet import Devnet, Traffic, claimable, running_devnet
from indexer.bootstrap import verify
from indexer.rpc import RpcClient
from indexer.worker import Worker
from tests.indexing import worker_settings

pytestmark = pytest.mark.slow

# Ledger times a stream's claimable is compared at, from each ledger's close: now, soon, far later.
LATER = (0, 37, 3_600, 10**8)


async def _caught_up(db: asyncpg.Connection, ledger: int) -> None:
    async with asyncio.timeout(30):
        while True:
            done = await db.fetchval("SELECT max(last_ledger) FROM indexer_cursor")
            if done is not None and done >= ledger:
                return
            await asyncio.sleep(0.01)


async def _compare(devnet: Devnet, db: asyncpg.Connection, rpc: RpcClient, tally: Counter[str]) -> None:
    chain = devnet.chain
    ledger, differences = await verify(rpc, db, (chain.contract_id,), catch_up_seconds=30)
    assert differences == [], f"ledger {ledger}: {differences[:5]}"
    tally["verified ledgers"] += 1
    with chain.lock:
        now = chain.latest.close_time
        model = {stream_id: {at: claimable(stream, now + at) for at in LATER} if stream.is_active else None
                 for stream_id, stream in chain.contract.streams.items()}
    rows = {int(r["stream_id"]): r for r in await db.fetch("SELECT * FROM streams WHERE contract_id = $1",
                                                           chain.contract_id)}
    from api.rest import claimable_at

    for stream_id, expected in model.items():
        for at in LATER:
            indexed = claimable_at(rows[stream_id], now + at)
            assert indexed == (expected[at] if expected is not None else 0), (stream_id, now + at)
            tally["claimable comparisons"] += 1
    tally["stream comparisons"] += len(model)


@pytest.mark.parametrize(("build", "upgrade_at"), [("c9f5d2e", None), ("8723543", None), ("8723543", 25)],
                         ids=["c9f5d2e", "8723543", "8723543-upgraded-in-place"])
async def test_the_index_equals_the_contracts_storage_after_every_ledger(
    database_url: str, db: asyncpg.Connection, build: str, upgrade_at: int | None, record_property: Any
) -> None:
    ledgers, calls_per_ledger = 60, 8
    with running_devnet(seed=41, build=build) as devnet:
        chain = devnet.chain
        traffic = Traffic(seed=41, accounts=12)
        chain.traffic, chain.traffic_per_ledger = traffic, float(calls_per_ledger)
        worker = Worker(worker_settings(devnet, database_url, poll_interval=0.01, page_size=50), database_url)
        running = asyncio.create_task(worker.run())
        tally: Counter[str] = Counter()
        try:
            async with RpcClient(devnet.url) as rpc:
                for number in range(1, ledgers + 1):
                    if number == upgrade_at:
                        chain.upgrade("c9f5d2e")
                    ledger = chain.close_ledger()
                    await _caught_up(db, ledger.sequence)
                    await _compare(devnet, db, rpc, tally)
        finally:
            worker.stop()
            await asyncio.wait_for(running, 10)
        calls = ledgers * calls_per_ledger - chain.failed_transactions
        functions = Counter(kind for (kind,) in await db.fetch("SELECT kind FROM events"))
        assert chain.failed_transactions == 0
        assert len(chain.contract.streams) > 50 or build == "8723543"
        if upgrade_at is not None:
            assert "protocol.contract_upgraded" in functions
        if build == "c9f5d2e" or upgrade_at is not None:
            # every schedule and the later builds' operations went through the comparison
            assert {"stream.step_vesting_created", "stream.hybrid_cliff_created", "stream.allowance_created",
                    "stream.recipient_transferred", "stream.rate_modified", "stream.closed",
                    "stream.milestone_unlocked"} <= set(functions), functions
        record_property("differential", {"calls": calls, "streams": len(chain.contract.streams), **tally})
        print(f"\n{build}: {calls} calls, {len(chain.contract.streams)} streams, {dict(tally)}")
