"""Fan-out: one burst of committed events to N SSE clients; messages per second and memory per connection.

The server runs in its own process; the clients in several others, each holding many raw-socket
connections (`bench.sse_clients`), so that the client side costs little. A burst of M events is
committed in one page (`bench.feed.Feed`, the worker's own write path); the rate is every frame
received by every client over the time from the commit to the last receipt. Memory per connection
is the server's RSS with the N clients connected minus its RSS before, over N.

The baseline, in the same run with the same clients and events: a minimal sse-starlette server
(`bench.servers`, an asyncio.Queue per client).
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bench import ROOT, Postgres, child, percentile, raise_open_files, rss_bytes
from bench.feed import Feed

TARGET_RATIO = 4.0
TARGET_CONNECTION_BYTES = 10 * 1024
TARGET_CONNECTIONS = 10_000
CLIENT_PROCESSES = 4


@dataclass
class Session:
    connections: int
    rss_before: int = 0
    rss_connected: int = 0
    frames: int = 0
    complete: int = 0
    burst_seconds: float | None = None
    page_latencies: list[list[float]] = field(default_factory=list)  # per page, per connection

    @property
    def bytes_per_connection(self) -> float:
        return (self.rss_connected - self.rss_before) / self.connections

    @property
    def messages_per_s(self) -> float | None:
        return None if not self.burst_seconds else self.frames / self.burst_seconds


async def run_session(
    postgres: Postgres, feed: Feed, kind: str, connections: int, *, burst: int = 0, page: int = 0,
    pages: int = 0, page_gap: float = 0.5, limit_seconds: float = 300.0, processes: int = 1,
) -> Session:
    """Connect `connections` clients to a fresh `kind` server (in `processes` processes: flowfi only),
    commit a burst, then pages one by one."""
    raise_open_files()
    url = await postgres.fresh_database()
    session = Session(connections)
    await feed.connect(url)
    try:
        with child("bench.servers", kind, url, str(max(1000, 2 * burst)), str(processes)) as (_, server):
            address = urlsplit(server["url"])
            await asyncio.sleep(0.5)
            api_pids = server.get("pids", [server["pid"]])
            session.rss_before = sum(map(rss_bytes, api_pids))
            share = [connections // CLIENT_PROCESSES + (i < connections % CLIENT_PROCESSES)
                     for i in range(CLIENT_PROCESSES)]
            clients = [
                await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bench.sse_clients", address.hostname or "127.0.0.1", str(address.port),
                    "/events/subscribe?all=true", str(n), str(burst), str(page), str(pages), str(limit_seconds),
                    cwd=ROOT, stdout=asyncio.subprocess.PIPE, limit=1 << 30,
                )
                for n in share if n
            ]
            try:
                for process in clients:
                    assert process.stdout is not None
                    line = await asyncio.wait_for(process.stdout.readline(), limit_seconds)
                    if not line:
                        raise RuntimeError("an SSE client process failed to connect")
                await asyncio.sleep(1.0)
                session.rss_connected = sum(map(rss_bytes, api_pids))
                commits: list[float] = []
                if burst:
                    committed, _ = await feed.commit(burst)
                    commits.append(committed)
                    await asyncio.sleep(page_gap)
                for _ in range(pages):
                    committed, _ = await feed.commit(page)
                    commits.append(committed)
                    await asyncio.sleep(page_gap)
                results = []
                for process in clients:
                    assert process.stdout is not None
                    results.append(json.loads(await asyncio.wait_for(process.stdout.readline(), limit_seconds + 60)))
                    await process.wait()
            finally:
                for process in clients:
                    if process.returncode is None:
                        process.kill()
                        await process.wait()
    finally:
        await feed.close()
        await postgres.drop(url)
    session.frames = sum(r["frames"] for r in results)
    session.complete = sum(r["complete"] for r in results)
    per_connection = [times for r in results for times in r["times"]]
    if burst:
        finished = [times[0] for times in per_connection if times]
        session.burst_seconds = max(finished) - commits[0] if finished else None
    offset = 1 if burst else 0
    for k in range(pages):
        committed = commits[offset + k]
        session.page_latencies.append(
            [times[offset + k] - committed for times in per_connection if len(times) > offset + k]
        )
    return session


async def measure(postgres: Postgres, clients: int = 5_000, burst: int = 200,
                  big: int = TARGET_CONNECTIONS) -> dict[str, Any]:
    feed = Feed(burst, seed=11)
    ours = await run_session(postgres, feed, "flowfi", clients, burst=burst)
    baseline = await run_session(postgres, feed, "baseline", clients, burst=burst)
    crowd = await run_session(postgres, feed, "flowfi", big, burst=burst)
    rate, base_rate = ours.messages_per_s or 0.0, baseline.messages_per_s or 0.0
    expected = clients * burst
    return {
        "clients": clients,
        "burst_events": burst,
        "messages_per_s": round(rate),
        "baseline_messages_per_s": round(base_rate),
        "ratio": round(rate / base_rate, 2) if base_rate else None,
        "delivered": ours.frames,
        "baseline_delivered": baseline.frames,
        "expected": expected,
        "bytes_per_connection": round(ours.bytes_per_connection),
        "baseline_bytes_per_connection": round(baseline.bytes_per_connection),
        "big_clients": big,
        "big_connected": crowd.complete,
        "big_bytes_per_connection": round(crowd.bytes_per_connection),
        "big_messages_per_s": round(crowd.messages_per_s or 0),
        "big_delivered": crowd.frames,
        "big_expected": big * burst,
        "met_ratio": base_rate > 0 and rate >= TARGET_RATIO * base_rate and ours.frames == expected,
        "met_memory": crowd.complete == big and crowd.bytes_per_connection <= TARGET_CONNECTION_BYTES,
    }


def latency_summary(session: Session) -> dict[str, Any]:
    every_client = [max(latencies) for latencies in session.page_latencies if latencies]
    all_receipts = [x for latencies in session.page_latencies for x in latencies]
    return {
        "p50_ms": round(percentile(all_receipts, 50) * 1000, 1),
        "p99_ms": round(percentile(all_receipts, 99) * 1000, 1),
        "last_client_p50_ms": round(percentile(every_client, 50) * 1000, 1),
        "receipts": len(all_receipts),
    }

