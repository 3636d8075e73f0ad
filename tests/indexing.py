"""Helpers shared by the tests that run the worker against the local network."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from devnet import Devnet, FlowFiContract
from flowfi.settings import Settings
from indexer.worker import Worker

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
    }
    values.update(overrides)
    return Settings(**values)


async def index_until_caught_up(worker: Worker, devnet: Devnet, timeout: float = 60.0) -> None:
    """Run `worker` until it has indexed the devnet's latest ledger, then stop it."""
    target = devnet.chain.latest.sequence
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


async def assert_streams_match_model(conn: asyncpg.Connection, contract: FlowFiContract) -> None:
    rows = {int(r["stream_id"]): r for r in await conn.fetch("SELECT * FROM streams")}
    assert set(rows) == set(contract.streams), "every stream of the contract is indexed, and no other"
    for stream_id, stream in contract.streams.items():
        row = rows[stream_id]
        indexed = {name: (int(row[name]) if isinstance(row[name], (int, float)) or hasattr(row[name], "as_tuple")
                          else row[name])
                   for name in ("sender", "recipient", "token", "rate_per_second", "deposited", "withdrawn",
                                "refunded", "fees_paid", "status", "start_time", "last_update_time",
                                "paused_at", "end_time")}
        expected = {
            "sender": stream.sender, "recipient": stream.recipient, "token": stream.token,
            "rate_per_second": stream.rate_per_second, "deposited": stream.deposited,
            "withdrawn": stream.withdrawn, "refunded": stream.refunded, "fees_paid": stream.fees_paid,
            "status": stream.status.value, "start_time": stream.start_time,
            "last_update_time": stream.last_update_time, "paused_at": stream.paused_at,
            "end_time": stream.end_time,
        }
        assert indexed == expected, f"stream {stream_id}: " + repr(
            {k: (indexed[k], expected[k]) for k in expected if indexed[k] != expected[k]})
