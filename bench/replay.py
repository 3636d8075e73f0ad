"""Replay: a client resuming far behind gets the stored events fast, then goes live with no gap.

The API server (its own process) serves a database of synthetic history. One client connects with a
Last-Event-ID 100,000 events behind the newest; while it replays, a live page is committed (the
worker's way), and another once the replay is done. The client must receive exactly the events after
its resume point, in order, the live ones included: the first event after the replay follows the
last replayed one, and nothing is missing or doubled.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from bench import Postgres, child, synthetic
from bench.feed import Feed
from indexer.database import asyncpg_dsn

TARGET_EVENTS_PER_S = 50_000
LIVE_PAGE = 50
_RUNS = itertools.count()
# An event's id; a position frame (an id with no data, sent when the stream goes live) is not an event.
_ID = re.compile(rb"(?:^|\n)id: ([0-9-]+)\nevent: ")


async def _read(host: str, port: int, resume: str, ids: list[str], replayed: asyncio.Event, behind: int,
                halfway: asyncio.Event, expected: int, times: dict[str, float]) -> None:
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 24)
    started = time.monotonic()
    writer.write(f"GET /events/subscribe?all=true HTTP/1.1\r\nHost: {host}\r\nLast-Event-ID: {resume}\r\n\r\n"
                 .encode())
    await reader.readuntil(b"\r\n\r\n")
    buffer = b""
    try:
        while len(ids) < expected:
            data = await reader.read(1 << 20)
            if not data:
                break
            buffer += data
            cut = buffer.rfind(b"\n\n")
            if cut < 0:
                continue
            ids.extend(m.decode() for m in _ID.findall(buffer, 0, cut + 2))
            buffer = buffer[cut + 2 :]
            if len(ids) >= behind // 2:
                halfway.set()
            if len(ids) >= behind and not replayed.is_set():
                times["replayed"] = time.monotonic() - started
                replayed.set()
    finally:
        writer.close()


async def measure(postgres: Postgres, behind: int = 100_000, history: int = 1_000_000) -> dict[str, Any]:
    url, fill_seconds = await synthetic.database(postgres, max(history, behind + 1))
    conn = await asyncpg.connect(asyncpg_dsn(url))
    # the history is shared by the runs of this process (and the queries benchmark): each run's live pages
    # come after those of the runs before it, or they would be stored already and never go live
    feed = Feed(2 * LIVE_PAGE, seed=17, first_ledger=10_000_000 + 1_000 * next(_RUNS))
    try:
        total = await conn.fetchval("SELECT count(*) FROM events")
        resume = await conn.fetchval("SELECT id FROM events ORDER BY id OFFSET $1 LIMIT 1", total - behind - 1)
        await feed.connect(url)
        with child("bench.servers", "flowfi", url) as (_, server):
            address = urlsplit(server["url"])
            ids: list[str] = []
            replayed, halfway = asyncio.Event(), asyncio.Event()
            times: dict[str, float] = {}
            reading = asyncio.create_task(_read(address.hostname or "", address.port or 0, resume, ids, replayed,
                                                behind, halfway, behind + 2 * LIVE_PAGE, times))
            async with asyncio.timeout(300):
                await halfway.wait()
                _, during = await feed.commit(LIVE_PAGE)  # committed while the client replays
                await replayed.wait()
                _, after = await feed.commit(LIVE_PAGE)
                await reading
        expected = [r["id"] for r in await conn.fetch("SELECT id FROM events WHERE id > $1 ORDER BY id", resume)]
    finally:
        await feed.close()
        await conn.close()
    seconds = times.get("replayed", float("nan"))
    rate = behind / seconds
    gapless = ids == expected
    return {
        "history_events": total,
        "history_filled_in_s": round(fill_seconds, 1),
        "behind": behind,
        "seconds": round(seconds, 2),
        "events_per_s": round(rate),
        "received": len(ids),
        "expected": len(expected),
        "live_during_replay": during[0] in ids,
        "first_after_replay": ids[behind] if len(ids) > behind else None,
        "follows_last_replayed": len(ids) > behind and expected.index(ids[behind]) == behind,
        "in_order_no_gap_no_duplicate": gapless,
        "live_after_replay_received": all(i in set(ids) for i in after),
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "met": gapless and rate >= TARGET_EVENTS_PER_S,
    }
