"""Backfill: events per second from a data-lake file into PostgreSQL, end to end, against the lake scan alone.

The input is the largest test file: 30 protocol-28 ledgers, 72,300 events of one contract (3.7 MB of
zstd, 40 MB of XDR). The figure is `Worker.backfill` as `flowfi backfill` runs it, with that contract
configured, into a fresh database: read, decompress, walk the transactions that hold the contract, decode,
store (raw events, and dead letters: they are not FlowFi's events, so no typed rows or stream state are
written), cursor and progress rows, NOTIFY, with the default page size (a batch of whole ledgers per
page). The baseline, measured in the same run, is the reader alone with the same contract filter: what
the backfill would reach if storing cost nothing. Both are the best of a few runs.

    python -m bench backfill
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

import asyncpg

from bench import Postgres
from bench.lake import FILE
from devnet import running_devnet
from flowfi.settings import Settings
from indexer.database import asyncpg_dsn
from indexer.lake import read_ledgers
from indexer.worker import Worker

CONTRACT = "CAFQMN2QWPMLVSZC3KPEOCMFSP4ATAVSQEAVKXW27M3DEQ7SCKNUFHVT"  # the file's only contract
EVENTS = 72_300


def _scan() -> tuple[int, int, int]:
    """The file's first ledger, how many it holds, and their events."""
    first = ledgers = events = 0
    for ledger in read_ledgers(str(FILE), contracts=(CONTRACT,)):
        first = first or ledger.sequence
        ledgers += 1
        events += len(ledger.events)
    return first, ledgers, events


async def _backfill(postgres: Postgres, rpc_url: str, passphrase: str, first: int) -> float:
    url = await postgres.fresh_database()
    try:
        settings = Settings(rpc_url=rpc_url, network_passphrase=passphrase, contract_ids=(CONTRACT,),
                            database_url=url)
        gc.collect()
        started = time.perf_counter()
        done = await Worker(settings, url).backfill(str(FILE), start=first, end=None)
        elapsed = time.perf_counter() - started
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            stored = await conn.fetchval("SELECT count(*) FROM contract_events")
            dead = await conn.fetchval("SELECT count(*) FROM dead_letters")
        finally:
            await conn.close()
        if not done.finished or stored != EVENTS or dead != EVENTS:
            raise RuntimeError(f"the backfill stored {stored} events and {dead} dead letters, expected {EVENTS}")
        return elapsed
    finally:
        await postgres.drop(url)


async def measure(postgres: Postgres, repeat: int = 3) -> dict[str, Any]:
    logging.getLogger("indexer").setLevel(logging.ERROR)  # one dead-letter summary a page otherwise
    scans = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        first, ledgers, events = _scan()
        scans.append(time.perf_counter() - started)
    assert events == EVENTS
    with running_devnet() as devnet:  # the RPC server a backfill asks for the network and contract storage
        runs = [await _backfill(postgres, devnet.url, devnet.chain.passphrase, first) for _ in range(repeat)]
    best, scan = min(runs), min(scans)
    rate, scan_rate = EVENTS / best, events / scan
    return {
        "file": FILE.name,
        "ledgers": ledgers,
        "events": EVENTS,
        "seconds": round(best, 2),
        "events_per_s": round(rate),
        "ledgers_per_s": round(ledgers / best, 1),
        "scan_events_per_s": round(scan_rate),
        "scan_ledgers_per_s": round(ledgers / scan, 1),
        "share_of_scan": round(rate / scan_rate, 2),
    }
