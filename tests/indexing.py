"""Helpers shared by the tests that run the worker against the local network."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import asyncpg

from api.rest import claimable_at
from devnet import Devnet, FlowFiContract, Stream, StreamStatus, claimable
from flowfi.settings import Settings
from indexer.bootstrap import Bootstrapped, bootstrap
from indexer.database import connect
from indexer.rpc import RpcClient
from indexer.worker import Worker

# The build whose streams `assert_streams_match_model` compares with the index: every 8723543 stream is
# told whole by its events, while c9f5d2e keeps cliffs, steps and milestones in storage only, and deletes
# a closed stream's storage.
MODEL_BUILD = "8723543"

SNAPSHOT_QUERIES = {
    "contract_events": "SELECT id, ledger, ledger_closed_at, tx_hash, contract_id, topic_xdr, value_xdr, "
    "topic, value FROM contract_events ORDER BY id",
    "events": "SELECT * FROM events ORDER BY id",
    "event_parties": "SELECT * FROM event_parties ORDER BY event_id, address",
    "streams": "SELECT * FROM streams ORDER BY contract_id, stream_id",
    "protocol_config": "SELECT * FROM protocol_config ORDER BY contract_id",
    "dead_letters": "SELECT event_id, reason FROM dead_letters ORDER BY event_id",
}


def worker_settings(devnet: Devnet, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "rpc_url": devnet.url,
        "network_passphrase": devnet.chain.passphrase,
        "contract_ids": (devnet.chain.contract_id,),
        "database_url": database_url,
        "start_ledger": devnet.chain.oldest.sequence,
        "poll_interval": 0.02,
        "page_size": 100,
        "rpc_timeout": 2.0,
        "contract_build": devnet.chain.contract.build,
    }
    values.update(overrides)
    return Settings(**values)


async def bootstrap_once(rpc: RpcClient, database_url: str, contract_id: str) -> Bootstrapped:
    """`flowfi bootstrap` of one contract, on a connection of its own."""
    conn = await connect(database_url, "test-bootstrap")
    try:
        return await bootstrap(rpc, conn, (contract_id,))
    finally:
        await conn.close()


async def index_until_caught_up(worker: Worker, devnet: Devnet, timeout: float = 60.0,
                                until: int | None = None) -> None:
    """Run `worker` until it has indexed the devnet's latest ledger (or ledger `until`), then stop it."""
    target = devnet.chain.latest.sequence if until is None else until
    conn = await asyncpg.connect(worker.database_url)
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(timeout):
            while True:
                if task.done():
                    task.result()
                    raise AssertionError("the worker stopped before catching up")
                done = await conn.fetchval("SELECT max(last_ledger) FROM indexer_cursor")
                if done is not None and done >= target:
                    break
                await asyncio.sleep(0.02)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 10)
        await conn.close()


async def snapshot(conn: asyncpg.Connection) -> dict[str, list[tuple]]:
    return {table: [tuple(row) for row in await conn.fetch(q)] for table, q in SNAPSHOT_QUERIES.items()}


def resumed_after_cancel(stream: Stream) -> bool:
    """Build 8723543 lets the sender resume a stream cancelled while paused: it is then stored as Active
    but inactive, with its accrual anchor moved. The index keeps it as it was when cancelled."""
    return not stream.is_active and stream.status is StreamStatus.ACTIVE


async def assert_streams_match_model(conn: asyncpg.Connection, contract: FlowFiContract) -> None:
    """Every stream the contract stores is indexed with the same stored fields, token flows, and what is
    claimable now and later, computed by the contract model and by the indexer's formulas."""
    rows = {int(r["stream_id"]): r for r in await conn.fetch("SELECT * FROM streams")}
    assert set(rows) == set(contract.streams), "every stream of the contract is indexed, and no other"
    for stream_id, stream in contract.streams.items():
        row = rows[stream_id]
        indexed = {name: (int(row[name]) if isinstance(row[name], Decimal) else row[name])
                   for name in ("sender", "recipient", "token", "rate_per_second", "deposited", "withdrawn",
                                "refunded", "fees_paid", "status", "start_time", "last_update_time", "paused_at")}
        expected = {
            "sender": stream.sender, "recipient": stream.recipient, "token": stream.token_address,
            "rate_per_second": stream.rate_per_second, "deposited": stream.deposited_amount,
            "withdrawn": stream.withdrawn_amount, "refunded": stream.refunded, "fees_paid": stream.fees_paid,
            "status": "cancelled" if resumed_after_cancel(stream) else stream.status.value.lower(),
            "start_time": stream.start_time,
            "last_update_time": (indexed["last_update_time"] if resumed_after_cancel(stream)
                                 else stream.last_update_time),
            # a finished stream has nothing paused about it, whatever flags the contract left behind
            "paused_at": stream.paused_at if stream.is_active else None,
        }
        assert indexed == expected, f"stream {stream_id}: " + repr(
            {k: (indexed[k], expected[k]) for k in expected if indexed[k] != expected[k]})
        for now in (stream.last_update_time, stream.last_update_time + 37, stream.last_update_time + 10**7):
            assert claimable_at(row, now) == (claimable(stream, now) if stream.is_active else 0), (stream_id, now)
