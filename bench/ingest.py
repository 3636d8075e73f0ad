"""Ingest: events per second from getEvents pages to committed rows (decode + store + NOTIFY).

The local network runs in its own process with pre-generated history and serves getEvents over
loopback HTTP; the real `Worker` indexes it, pages of 10,000, into a fresh database, twice. The first
run waits for the local network to compute each answer on the same two cores (its getLedgerEntries
packs XDR with stellar-sdk: a third of all CPU); the second gets the same answers as recorded, which is
what an RPC server on another machine costs the indexer: the bytes on the wire. The second is the
figure. In the same run:

- the stellar-sdk ceiling: decoding the same events' topics and values with `scval.to_native`
  (what an indexer built on the SDK could at best reach, before any database work);
- the COPY ceiling: the same rows, prepared beforehand, committed into a fresh database as the store
  commits them, nothing else;
- the parts of the pipeline alone: fetching every page, and decoding with the indexer's parser;
- where the worker's time went in the figure's run, stage by stage (its flowfi_stage_seconds metric).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg
from prometheus_client import REGISTRY

from bench import Postgres, child
from flowfi.settings import Settings
from indexer import metrics, store
from indexer.database import asyncpg_dsn
from indexer.decode import decode
from indexer.rpc import EventPage, RawEvent, RpcClient
from indexer.worker import Worker

PAGE_SIZE = 10_000
TARGET_EVENTS_PER_S = 30_000


async def _fetch_all(url: str, contract_id: str, start_ledger: int) -> tuple[list[EventPage], float]:
    pages: list[EventPage] = []
    async with RpcClient(url, timeout=60) as rpc:
        started = time.perf_counter()
        page = await rpc.get_events((contract_id,), start_ledger=start_ledger, limit=PAGE_SIZE)
        while page.events:
            pages.append(page)
            page = await rpc.get_events((contract_id,), cursor=page.cursor, limit=PAGE_SIZE)
        return pages, time.perf_counter() - started


def _sdk_decode_rate(events: list[RawEvent], passes: int = 3) -> float:
    """The best of `passes` decodes of `events` with stellar-sdk: one pass swung by a third between runs
    on one machine, and a slow pass would flatter the ratio."""
    from stellar_sdk import scval, xdr

    best = float("inf")
    for _ in range(passes):
        started = time.perf_counter()
        for raw in events:
            [scval.to_native(xdr.SCVal.from_xdr(t)) for t in raw.topic]
            scval.to_native(xdr.SCVal.from_xdr(raw.value))
        best = min(best, time.perf_counter() - started)
    return len(events) / best


async def _run_worker(settings: Settings, url: str, expected: int) -> float:
    """Seconds from the worker's start to the commit of its `expected`-th event. The worker says when each
    page is committed: nothing polls the database meanwhile, on the cores it is measured on."""
    worker = Worker(settings, url)
    indexed = asyncio.get_running_loop().create_future()

    def page_written(*_: object) -> None:
        if worker.events_indexed >= expected and not indexed.done():
            indexed.set_result(time.perf_counter())

    worker.page_written = page_written
    started = time.perf_counter()
    task = asyncio.create_task(worker.run())
    await asyncio.wait((task, indexed), timeout=600, return_when=asyncio.FIRST_COMPLETED)
    stopped_early = task.done()
    worker.stop()
    await asyncio.wait_for(task, 30)  # raises the worker's error, if it stopped on one
    if not indexed.done():
        how = "stopped" if stopped_early else "was stopped after 600 s"
        raise RuntimeError(f"the worker {how} having indexed {worker.events_indexed} of {expected} events")
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        stored = await conn.fetchval("SELECT count(*) FROM events")
    finally:
        await conn.close()
    if stored != expected:
        raise RuntimeError(f"indexed {stored} events, expected {expected}")
    return indexed.result() - started


def _stage_seconds() -> dict[str, float]:
    """The worker's time in each stage so far (its metrics), in seconds."""
    return {stage: REGISTRY.get_sample_value("flowfi_stage_seconds_sum", {"stage": stage}) or 0.0
            for stage in metrics.STAGES}


async def _copy_ceiling(postgres: Postgres, contract_id: str, pages: list[EventPage]) -> float:
    """Committing the rows the worker commits (events, parties, streams, protocol config, cursor: each page
    prepared beforehand by store.prepare_page), with nothing else to do meanwhile."""
    url = await postgres.fresh_database()
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        state = store.PreparedState()
        prepared = [await store.prepare_page(conn, [decode(raw) for raw in page.events], None, state) for page in pages]
        started = time.perf_counter()
        for page, rows in zip(pages, prepared, strict=True):
            await store.commit_page(conn, (contract_id,), page, rows)
            state.committed()
        elapsed = time.perf_counter() - started
    finally:
        await conn.close()
        await postgres.drop(url)
    return sum(len(p.events) for p in pages) / elapsed


async def measure(postgres: Postgres, events: int = 150_000) -> dict[str, Any]:
    logging.getLogger("indexer").setLevel(logging.WARNING)
    with child("bench.devnet_process", str(events)) as (_, net):
        settings = Settings(
            rpc_url=net["url"], network_passphrase=net["passphrase"], contract_ids=(net["contract_id"],),
            start_ledger=net["oldest_ledger"], page_size=PAGE_SIZE, poll_interval=0.01, rpc_timeout=60,
            contract_build=net["build"],
        )
        rates = []
        for _ in ("answers computed by the local network", "answers recorded"):
            url = await postgres.fresh_database()
            before = _stage_seconds()
            try:
                rates.append(net["events"] / await _run_worker(settings, url, net["events"]))
            finally:
                await postgres.drop(url)
            stages = {stage: seconds - before[stage] for stage, seconds in _stage_seconds().items()}
        computed_rate, rate = rates
        pages, fetch_seconds = await _fetch_all(net["url"], net["contract_id"], net["oldest_ledger"])
    raw_events = [raw for page in pages for raw in page.events]
    total = len(raw_events)
    started = time.perf_counter()
    for raw in raw_events:
        decode(raw)
    decode_rate = total / (time.perf_counter() - started)
    sdk_rate = _sdk_decode_rate(raw_events[:20_000])
    copy_rate = await _copy_ceiling(postgres, net["contract_id"], pages)
    return {
        "events": net["events"],
        "page_size": PAGE_SIZE,
        "history_generated_in_s": net["generate_seconds"],
        "seconds": round(net["events"] / rate, 2),
        "events_per_s": round(rate),
        "events_per_s_rpc_computing_alongside": round(computed_rate),
        "sdk_decode_events_per_s": round(sdk_rate),
        "copy_only_events_per_s": round(copy_rate),
        "fetch_only_events_per_s": round(total / fetch_seconds),
        "decode_only_events_per_s": round(decode_rate),
        "stage_us_per_event": {stage: round(seconds / net["events"] * 1e6, 1) for stage, seconds in stages.items()},
        "ratio_to_sdk_decode": round(rate / sdk_rate, 1),
        "share_of_copy_ceiling": round(rate / copy_rate, 2),
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "met": rate >= TARGET_EVENTS_PER_S,
    }
