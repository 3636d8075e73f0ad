"""REST queries over a large table: `GET /streams/{id}` and deep keyset pages of `GET /events`.

The API server (its own process) serves a database of synthetic history (a million events by
default). Measured over HTTP, one request at a time: p50/p99 of `GET /streams/{id}` for random
streams, and of `GET /events` pages at the start and 90% deep, to show that a page's cost does not
grow with its depth. The baseline, in the same run: the same page by OFFSET, the usual alternative to
keyset pagination, straight in SQL. The plan of the deep page's query (EXPLAIN) is reported by node
type: index scans, no sort of the table.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import asyncpg
import httpx

from api.payloads import EVENT_COLUMNS
from bench import Postgres, child, percentile, synthetic
from indexer.database import asyncpg_dsn

TARGET_P99_MS = 100.0
PAGE = 50


def _plan_nodes(plan: dict[str, Any]) -> list[str]:
    """The nodes of a plan that read its rows; the subplans that look up each row's token (a stream by
    its key, the small tokens table) aside."""
    node = plan["Node Type"] + (f" on {plan['Relation Name']}" if "Relation Name" in plan else "")
    nodes = [node + (f" using {plan['Index Name']}" if "Index Name" in plan else "")]
    for sub in plan.get("Plans", ()):
        if sub.get("Parent Relationship") != "SubPlan":
            nodes += _plan_nodes(sub)
    return nodes


async def _timed(client: httpx.AsyncClient, paths: list[str]) -> list[float]:
    latencies = []
    for path in paths:
        started = time.perf_counter()
        response = await client.get(path)
        latencies.append(time.perf_counter() - started)
        response.raise_for_status()
    return latencies


async def _sql_timed(conn: asyncpg.Connection, sql: str, args: tuple, repeat: int) -> list[float]:
    latencies = []
    for _ in range(repeat):
        started = time.perf_counter()
        await conn.fetch(sql, *args)
        latencies.append(time.perf_counter() - started)
    return latencies


def _ms(values: list[float], q: float) -> float:
    return round(percentile(values, q) * 1000, 2)


def stream_path(stream_id: int) -> str:
    return f"/streams/{stream_id}?contractId={synthetic.CONTRACT_ID}"


async def measure(postgres: Postgres, history: int = 1_000_000, requests: int = 1_000) -> dict[str, Any]:
    url, fill_seconds = await synthetic.database(postgres, history)
    rng = random.Random(3)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        total = await conn.fetchval("SELECT count(*) FROM events")
        streams = await conn.fetchval("SELECT count(*) FROM streams WHERE contract_id = $1", synthetic.CONTRACT_ID)
        depth = int(total * 0.9)
        deep_cursor = await conn.fetchval("SELECT id FROM events ORDER BY id OFFSET $1 LIMIT 1", depth - 1)
        keyset_sql = f"SELECT {EVENT_COLUMNS} FROM events AS e WHERE e.id > $1 ORDER BY e.id LIMIT {PAGE + 1}"
        plan = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {keyset_sql}", deep_cursor))[0]["Plan"]
        stream_plan = json.loads(await conn.fetchval(
            "EXPLAIN (FORMAT JSON) SELECT * FROM streams WHERE stream_id = $1 ORDER BY contract_id", 12345
        ))[0]["Plan"]
        offset_sql = f"SELECT {EVENT_COLUMNS} FROM events AS e ORDER BY id OFFSET $1 LIMIT {PAGE + 1}"
        sql_keyset_deep = await _sql_timed(conn, keyset_sql, (deep_cursor,), 50)
        sql_offset_deep = await _sql_timed(conn, offset_sql, (depth,), 5)
        with child("bench.servers", "flowfi", url) as (_, server):
            async with httpx.AsyncClient(base_url=server["url"], timeout=30) as client:
                await _timed(client, [stream_path(rng.randrange(1, streams + 1)) for _ in range(50)])  # warm up
                stream_latency = await _timed(
                    client, [stream_path(rng.randrange(1, streams + 1)) for _ in range(requests)]
                )
                first_page = await _timed(client, [f"/events?limit={PAGE}"] * (requests // 4))
                deep_page = await _timed(client, [f"/events?limit={PAGE}&cursor={deep_cursor}"] * (requests // 4))
    finally:
        await conn.close()
    deep_vs_first = percentile(deep_page, 50) / percentile(first_page, 50)
    offset_vs_keyset = percentile(sql_offset_deep, 50) / percentile(sql_keyset_deep, 50)
    nodes = _plan_nodes(plan)
    p99 = max(_ms(stream_latency, 99), _ms(deep_page, 99))
    return {
        "history_events": total,
        "history_filled_in_s": round(fill_seconds, 1),
        "stream_p50_ms": _ms(stream_latency, 50),
        "stream_p99_ms": _ms(stream_latency, 99),
        "events_first_page_p50_ms": _ms(first_page, 50),
        "events_first_page_p99_ms": _ms(first_page, 99),
        "events_deep_page_p50_ms": _ms(deep_page, 50),
        "events_deep_page_p99_ms": _ms(deep_page, 99),
        "deep_page_depth": depth,
        "deep_vs_first_page": round(deep_vs_first, 2),
        "sql_keyset_deep_p50_ms": _ms(sql_keyset_deep, 50),
        "sql_offset_deep_p50_ms": _ms(sql_offset_deep, 50),
        "offset_vs_keyset": round(offset_vs_keyset, 1),
        "deep_page_plan": nodes,
        "stream_plan": _plan_nodes(stream_plan),
        "target_p99_ms": TARGET_P99_MS,
        "met": p99 < TARGET_P99_MS and deep_vs_first < 2.0 and not any(n.startswith(("Seq Scan", "Sort"))
                                                                       for n in nodes),
    }
