"""The benchmarks' synthetic history follows the schema: when a migration adds a column the fill does
not give, this fails here rather than in the middle of `make bench`."""

from __future__ import annotations

import asyncpg

from bench import synthetic
from indexer.database import asyncpg_dsn


async def test_the_synthetic_history_fills_every_table_consistently(database_url: str) -> None:
    await synthetic.fill(database_url, 1_000)
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        assert await conn.fetchval("SELECT count(*) FROM events") == 1_000
        assert await conn.fetchval("SELECT count(*) FROM contract_events") == 1_000
        assert await conn.fetchval("SELECT count(*) FROM streams") == 1_000 // synthetic.EVENTS_PER_STREAM
        assert await conn.fetchval("SELECT events_indexed FROM indexer_cursor") == 1_000
        # every stream's last event is the newest of its events
        assert await conn.fetchval(
            "SELECT count(*) FROM streams s WHERE last_event_id <> "
            "(SELECT max(id) FROM events e WHERE e.stream_id = s.stream_id AND e.contract_id = s.contract_id)") == 0
    finally:
        await conn.close()
