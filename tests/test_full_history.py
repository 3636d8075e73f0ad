"""A contract older than RPC's retention, end to end on the local network: its whole history from the
data lake the network writes (`flowfi devnet --lake`) then the live worker, or its state from storage
(`flowfi bootstrap`) then the live worker; `flowfi verify` then finds the index equal to the chain."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from devnet import Devnet, running_devnet
from indexer import bootstrap
from indexer.bootstrap import NoSuchStreams, NotCaughtUp, RpcBehind, verify
from indexer.identity import OtherChain
from indexer.rpc import LedgerEntries, RpcClient
from indexer.store import WRITER_LOCK_KEY, WriterBusy
from indexer.worker import Worker
from tests.indexing import bootstrap_once, index_until_caught_up, worker_settings
from tests.lake_writer import grow


async def test_the_lake_then_rpc_index_the_whole_history_and_verify_finds_no_difference(
    tmp_path: Path, database_url: str, db: asyncpg.Connection
) -> None:
    with running_devnet(seed=21, retention=40, traffic_per_ledger=6, lake=tmp_path / "lake") as devnet:
        chain = devnet.chain
        history = grow(chain, 150)
        assert chain.oldest.sequence > 100, "RPC no longer has the beginning"
        settings = worker_settings(devnet, database_url, start_ledger=None)
        done = await Worker(settings, database_url).backfill(str(tmp_path / "lake"), start=1, end=None)
        assert done.last == chain.latest.sequence
        history += grow(chain, 10)
        await index_until_caught_up(Worker(settings, database_url), devnet)
        ours = [e["id"] for r in history for e in r.events if e["contractId"] == chain.contract_id]
        assert [r["id"] for r in await db.fetch("SELECT id FROM contract_events ORDER BY id")] == ours
        async with RpcClient(devnet.url) as rpc:
            ledger, differences = await verify(rpc, db, (chain.contract_id,))
        assert ledger == chain.latest.sequence and differences == []
        assert await db.fetchval("SELECT count(*) FROM streams") == chain.contract.stream_counter


async def test_bootstrap_then_rpc_give_the_chains_state_with_the_events_since(
    database_url: str, db: asyncpg.Connection
) -> None:
    with running_devnet(seed=22, retention=40, traffic_per_ledger=6) as devnet:
        chain = devnet.chain
        grow(chain, 120)
        async with RpcClient(devnet.url) as rpc:
            done = await bootstrap_once(rpc, database_url, chain.contract_id)
            assert done.ledger == chain.latest.sequence
            assert done.streams == len(chain.contract.streams) and done.without_entry == [
                stream_id for stream_id in range(1, chain.contract.stream_counter + 1)
                if stream_id not in chain.contract.streams]
            window = grow(chain, 15)
            await index_until_caught_up(Worker(worker_settings(devnet, database_url, start_ledger=None),
                                               database_url), devnet)
            ledger, differences = await verify(rpc, db, (chain.contract_id,))
            indexed = int(await db.fetchval("SELECT min(stream_id) FROM streams"))
            assert (await verify(rpc, db, (chain.contract_id,), [indexed]))[1] == []
            with pytest.raises(NoSuchStreams, match=f"^no stream {10**9} in the index or in the storage of "):
                await verify(rpc, db, (chain.contract_id,), [indexed, 10**9])
        assert ledger == chain.latest.sequence and differences == []
        since = [e["id"] for r in window for e in r.events if e["contractId"] == chain.contract_id]
        assert [r["id"] for r in await db.fetch("SELECT id FROM contract_events ORDER BY id")] == since
        assert await db.fetchval("SELECT count(*) FROM streams WHERE bootstrap_ledger = $1", done.ledger) > 20


async def test_bootstrap_does_not_run_beside_a_writing_worker(database_url: str, db: asyncpg.Connection) -> None:
    """A worker starting on the same fresh database would write its own cursor and fold its events beside
    the streams bootstrap reads."""
    with running_devnet(seed=22, traffic_per_ledger=6) as devnet:
        grow(devnet.chain, 5)
        writer = await asyncpg.connect(database_url, server_settings={"application_name": "flowfi-worker"})
        try:
            assert await writer.fetchval("SELECT pg_try_advisory_lock($1)", WRITER_LOCK_KEY)
            async with RpcClient(devnet.url) as rpc:
                with pytest.raises(WriterBusy, match=r"\(flowfi-worker, role .* holds the writer lock\): stop it "
                                                     "first, then bootstrap into a fresh database$"):
                    await bootstrap_once(rpc, database_url, devnet.chain.contract_id)
        finally:
            await writer.close()
    assert await db.fetchval("SELECT count(*) FROM streams") == 0
    assert await db.fetchval("SELECT count(*) FROM indexer_cursor") == 0


class LedgersSeen(RpcClient):
    """The RPC client, noting the ledger each getLedgerEntries answer was read at."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.entries_ledgers: list[int] = []

    async def get_ledger_entries(self, keys: list[str]) -> LedgerEntries:
        answer = await super().get_ledger_entries(keys)
        self.entries_ledgers.append(answer.latest_ledger)
        return answer


async def test_bootstrap_reads_storage_at_one_ledger_while_ledgers_close_between_its_requests(
    database_url: str, db: asyncpg.Connection
) -> None:
    with running_devnet(seed=23, traffic_per_ledger=6) as devnet:
        chain = devnet.chain
        grow(chain, 250)
        assert chain.contract.stream_counter > 400, "the streams must take several getLedgerEntries requests"
        stop = threading.Event()

        def close_ledgers() -> None:  # a ledger every 100 ms (a real network: 5 s), each with traffic
            while not stop.wait(0.1):
                chain.close_ledger()

        closer = threading.Thread(target=close_ledgers)
        closer.start()
        try:
            async with LedgersSeen(devnet.url) as rpc:
                done = await bootstrap_once(rpc, database_url, chain.contract_id)
        finally:
            stop.set()
            closer.join()
        assert len(set(rpc.entries_ledgers)) > 1, "no ledger closed while storage was read"
        # the index from the bootstrap's ledger on, then storage and the index compared at one ledger
        await index_until_caught_up(Worker(worker_settings(devnet, database_url, start_ledger=None), database_url),
                                    devnet)
        async with RpcClient(devnet.url) as rpc:
            ledger, differences = await verify(rpc, db, (chain.contract_id,))
        assert ledger == chain.latest.sequence and differences == []
        assert await db.fetchval("SELECT count(*) FROM streams WHERE bootstrap_ledger = $1", done.ledger) > 200


@contextlib.asynccontextmanager
async def _busy_chain_being_indexed(database_url: str) -> AsyncIterator[Devnet]:
    """Ledgers closing every 0.2 s with traffic (streams closed, fees changed), indexed as they close."""
    with running_devnet(seed=25, traffic_per_ledger=12, ledger_interval=0.2) as devnet:
        grow(devnet.chain, 60)
        settings = worker_settings(devnet, database_url, start_ledger=None, poll_interval=0.05)
        await index_until_caught_up(Worker(settings, database_url), devnet)
        worker = Worker(settings, database_url)
        running = asyncio.create_task(worker.run())
        try:
            yield devnet
        finally:
            worker.stop()
            await asyncio.wait_for(running, 10)


async def test_verify_finds_no_difference_while_the_worker_indexes_a_busy_chain(
    database_url: str, db: asyncpg.Connection
) -> None:
    """Ledgers close every 0.2 s with traffic (streams closed, fees changed) while verify reads storage and
    the worker indexes on past the ledger storage was read at: what moved since is compared again."""
    async with _busy_chain_being_indexed(database_url) as devnet, RpcClient(devnet.url) as rpc:
        found = [await verify(rpc, db, (devnet.chain.contract_id,), catch_up_seconds=30) for _ in range(4)]
    assert [differences for _, differences in found] == [[]] * 4
    assert len({ledger for ledger, _ in found}) > 1, "the chain did not move on between runs"


async def test_verify_refuses_an_rpc_serving_another_chain(database_url: str, db: asyncpg.Connection) -> None:
    """A network reset, or another on the same passphrase: the same contract id, an index ahead of its
    newest ledger. Its storage says nothing of this index: verify says so rather than list differences."""
    with running_devnet(seed=26, traffic_per_ledger=4) as devnet:
        grow(devnet.chain, 40)
        await index_until_caught_up(Worker(worker_settings(devnet, database_url, start_ledger=None), database_url),
                                    devnet)
    with running_devnet(seed=27, traffic_per_ledger=4) as other:
        grow(other.chain, 10)
        assert other.chain.contract_id == devnet.chain.contract_id
        async with RpcClient(other.url) as rpc:
            with pytest.raises(RpcBehind, match=f"^{other.url}'s newest ledger, {other.chain.latest.sequence}, is "
                               f"behind the index \\(ledger {devnet.chain.latest.sequence}\\)"):
                await verify(rpc, db, (other.chain.contract_id,))
            await db.execute("UPDATE indexer_cursor SET anchor_ledger = 5, anchor_hash = $1", "ab" * 32)
            with pytest.raises(OtherChain, match="'s ledger 5 is not the one indexed"):
                await verify(rpc, db, (other.chain.contract_id,))


async def test_verify_says_when_what_it_compares_kept_changing_while_it_read(
    database_url: str, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no reread allowed, a busy chain changes streams after every read: verify says which, so that a
    difference it shows for them is not taken for a fault of the index."""
    monkeypatch.setattr(bootstrap, "REREADS", 0)
    runs = []
    async with _busy_chain_being_indexed(database_url) as devnet, RpcClient(devnet.url) as rpc:
        for _ in range(3):
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="indexer.bootstrap"):
                _, differences = await verify(rpc, db, (devnet.chain.contract_id,), catch_up_seconds=30)
            runs.append((differences, [r.getMessage() for r in caplog.records]))
    assert any(warned for _, warned in runs), "the chain changed no stream between reads"
    for differences, warned in runs:
        assert not differences or warned, differences
        assert all(" changed again at each of 0 reads: a difference shown for " in w and w.endswith(
            "may be a change the chain made meanwhile; run verify again") for w in warned), warned


async def test_verify_says_it_waits_for_the_worker_and_then_that_it_must_run(
    database_url: str, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    with running_devnet(seed=24, traffic_per_ledger=2) as devnet:
        grow(devnet.chain, 5)
        contract_ids = (devnet.chain.contract_id,)
        async with RpcClient(devnet.url) as rpc:
            started = time.monotonic()
            with pytest.raises(NotCaughtUp) as no_worker:  # nobody holds the writer lock: no wait
                await verify(rpc, db, contract_ids, catch_up_seconds=60)
            assert time.monotonic() - started < 10
            worker = await asyncpg.connect(database_url)  # a worker that does not get there
            try:
                await worker.execute("SELECT pg_advisory_lock($1)", WRITER_LOCK_KEY)
                with caplog.at_level(logging.INFO, logger="indexer.bootstrap"), pytest.raises(NotCaughtUp) as behind:
                    await verify(rpc, db, contract_ids, catch_up_seconds=0.5)
            finally:
                await worker.close()
        ledger = devnet.chain.latest.sequence
    assert str(no_worker.value) == (f"the index is at ledger none, not yet at {ledger} where the chain was read, "
                                    "and no worker is writing this database: run the worker (flowfi index) and "
                                    "verify again")
    assert [r.getMessage() for r in caplog.records] == [
        f"the chain was read at ledger {ledger} and the index is at none: waiting up to 0.5 s for the worker to "
        "get there"
    ]
    assert str(behind.value) == (f"the index is at ledger none, not yet at {ledger} where the chain was read: run the "
                                 "worker (flowfi index) and verify again")


async def test_verify_does_not_wait_for_a_worker_that_indexes_other_contracts(
    database_url: str, db: asyncpg.Connection
) -> None:
    """One worker writes a database: while it indexes other contracts, these contracts' cursor stays."""
    with running_devnet(seed=24, traffic_per_ledger=2) as devnet:
        grow(devnet.chain, 5)
        worker = await asyncpg.connect(database_url)

        async def index_other_contracts() -> None:
            while True:
                await worker.execute(
                    "INSERT INTO indexer_cursor (contract_ids, rpc_cursor, last_ledger, latest_ledger) "
                    "VALUES ('CANOTHER', '', 1, 1) "
                    "ON CONFLICT (contract_ids) DO UPDATE SET updated_at = clock_timestamp()")
                await asyncio.sleep(0.3)

        await worker.execute("SELECT pg_advisory_lock($1)", WRITER_LOCK_KEY)
        other = asyncio.create_task(index_other_contracts())
        try:
            async with RpcClient(devnet.url) as rpc:
                started = time.monotonic()
                with pytest.raises(NotCaughtUp) as elsewhere:
                    await verify(rpc, db, (devnet.chain.contract_id,), catch_up_seconds=60)
            waited = time.monotonic() - started
        finally:
            other.cancel()
            await asyncio.gather(other, return_exceptions=True)
            await worker.close()
    assert waited < 10
    assert str(elsewhere.value).startswith("the index is at ledger none, not yet at ")
    assert str(elsewhere.value).endswith(
        "and the worker writing this database indexes other contracts (their cursor moved 3 times, this one did "
        "not): run the worker of these contracts (flowfi index) in its place, a database has one writer, and "
        "verify again")
