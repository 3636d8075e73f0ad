"""The worker tells the chain it indexed from a network that was reset or another one on the same
passphrase, and stops with one line saying what to do; a node that merely lags is waited for."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import pytest

from devnet import Devnet, Traffic, running_devnet
from devnet.rpc import RpcMethods
from indexer.worker import IndexerStopped, Worker
from tests.indexing import index_until_caught_up, worker_settings
from tests.test_worker import indexed_all, run_until

RESET = "the network was reset, or this is another network on the same passphrase"
FIX = "Index it into a new database (another DATABASE_URL), or, for the local network, start over with `flowfi reset`"


@pytest.fixture
def anchor_every_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each page records the chain's anchor (once a minute otherwise), so that it is the cursor's ledger."""
    monkeypatch.setattr("indexer.worker.ANCHOR_INTERVAL", 0.0)


async def at_the_tip(db: asyncpg.Connection, devnet: Devnet) -> None:
    while (await db.fetchval("SELECT max(last_ledger) FROM indexer_cursor") or 0) < devnet.chain.latest.sequence:
        await asyncio.sleep(0.02)


async def anchor_of(db: asyncpg.Connection) -> tuple[int, str]:
    row = await db.fetchrow("SELECT anchor_ledger, anchor_hash FROM indexer_cursor")
    assert row is not None
    return row["anchor_ledger"], row["anchor_hash"]


async def test_the_index_keeps_the_hash_of_a_ledger_it_went_through(database_url: str, db: asyncpg.Connection) -> None:
    with running_devnet(seed=20) as devnet:
        devnet.chain.generate_history(300, traffic=Traffic(seed=20), tx_per_ledger=10)
        await index_until_caught_up(Worker(worker_settings(devnet, database_url), database_url), devnet)
        ledger, hash_ = await anchor_of(db)
        assert hash_ == devnet.chain.ledger(ledger).hash
        closed_at = await db.fetchval("SELECT anchor_closed_at FROM indexer_cursor")
        assert closed_at.timestamp() == devnet.chain.ledger(ledger).close_time


async def test_a_network_restarted_at_ledger_one_under_the_worker_stops_it(
    database_url: str, db: asyncpg.Connection
) -> None:
    with running_devnet(seed=21) as first:
        first.chain.generate_history(300, traffic=Traffic(seed=21), tx_per_ledger=10)
        port = int(first.url.rsplit(":", 1)[1])
        worker = Worker(worker_settings(first, database_url), database_url, max_backoff=0.1)
        task = asyncio.create_task(worker.run())
        await at_the_tip(db, first)
        indexed = first.chain.latest.sequence
    # a new chain, at the same address
    with running_devnet(port=port, ledger_interval=0.05), pytest.raises(IndexerStopped) as stopped:
        await asyncio.wait_for(task, 30)
    anchor, _ = await anchor_of(db)
    assert str(stopped.value).startswith(f"http://127.0.0.1:{port}'s newest ledger, ")
    assert f"comes before ledger {anchor} of the index yet closed after it" in str(stopped.value)
    assert RESET in str(stopped.value) and FIX in str(stopped.value)
    assert await db.fetchval("SELECT last_ledger FROM indexer_cursor") == indexed, "nothing of the new chain"


@pytest.mark.parametrize("ahead", [0, 5], ids=["at the cursor's ledger", "past it"])
async def test_another_chain_on_the_same_passphrase_is_told_by_the_indexed_ledger_s_hash(
    ahead: int, database_url: str, db: asyncpg.Connection, anchor_every_page: None
) -> None:
    with running_devnet(seed=22) as first:
        first.chain.generate_history(200, traffic=Traffic(seed=22), tx_per_ledger=10)
        await index_until_caught_up(Worker(worker_settings(first, database_url), database_url), first)
        indexed = first.chain.latest.sequence
    anchor, anchor_hash = await anchor_of(db)
    assert anchor == indexed
    with running_devnet(seed=23) as other:
        other.chain.generate_history(100, traffic=Traffic(seed=23), tx_per_ledger=10)
        assert other.chain.latest.sequence < indexed
        while other.chain.latest.sequence < indexed + ahead:
            other.chain.close_ledger()
        other_hash = other.chain.ledger(anchor).hash
        with pytest.raises(IndexerStopped) as stopped:
            await Worker(worker_settings(other, database_url), database_url).run()
    assert str(stopped.value) == (
        f"{other.url}'s ledger {anchor} is not the one indexed (hash {other_hash[:12]}… vs {anchor_hash[:12]}…): "
        f"{RESET}. {FIX} or `flowfi dev --fresh`.")


async def test_a_node_a_few_ledgers_behind_is_waited_for(
    database_url: str, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture, anchor_every_page: None
) -> None:
    with running_devnet(seed=24) as devnet:
        chain = devnet.chain
        chain.generate_history(200, traffic=Traffic(seed=24), tx_per_ledger=10)
        worker = Worker(worker_settings(devnet, database_url), database_url, max_backoff=0.1)

        async def lagging_then_more() -> None:
            await at_the_tip(db, devnet)
            assert (await anchor_of(db))[0] == chain.latest.sequence
            devnet.faults.behind_ledgers = 4
            devnet.faults.inject("behind", 40)
            while len(devnet.faults):
                await asyncio.sleep(0.02)
            chain.generate_history(50, traffic=Traffic(seed=25), tx_per_ledger=10)

        later = asyncio.create_task(lagging_then_more())
        with caplog.at_level(logging.INFO, logger="indexer.worker"):
            await run_until(worker, database_url, lambda conn: indexed_all(conn, devnet, later))
        waits = [r.getMessage() for r in caplog.records if "not yet" in r.getMessage()]
        assert len(waits) == 1, waits  # said once
        assert any("going on" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("lag", ["too many ledgers", "too long"])
async def test_a_node_far_or_long_behind_is_not_taken_for_a_lagging_one(
    lag: str, database_url: str, db: asyncpg.Connection, anchor_every_page: None
) -> None:
    with running_devnet(seed=26) as devnet:
        devnet.chain.generate_history(100, traffic=Traffic(seed=26), tx_per_ledger=10)
        limits: dict[str, Any] = ({"max_lag_ledgers": 3} if lag == "too many ledgers" else {"max_lag_seconds": 0.5})
        worker = Worker(worker_settings(devnet, database_url), database_url, max_backoff=0.1, **limits)
        task = asyncio.create_task(worker.run())
        await at_the_tip(db, devnet)
        latest = devnet.chain.latest.sequence
        devnet.faults.behind_ledgers = 5 if lag == "too many ledgers" else 1
        devnet.faults.inject("behind", 100_000)
        with pytest.raises(IndexerStopped) as stopped:
            await asyncio.wait_for(task, 20)
        devnet.faults.clear()
    message = str(stopped.value)
    if lag == "too many ledgers":
        assert f"newest ledger, {latest - 5}, is 5 ledgers behind the index (ledger {latest}), more than a lagging " \
               f"node (3): {RESET}" in message
    else:
        assert f"newest ledger, {latest - 1}, has stayed behind the index (ledger {latest}) for " in message
        assert ("the network was reset, this is another network on the same passphrase, or the node no longer "
                "follows the network (then point FLOWFI_RPC_URL at one that does)") in message
    assert FIX in message


async def test_an_index_without_an_anchor_records_one_and_goes_on(database_url: str, db: asyncpg.Connection) -> None:
    with running_devnet(seed=27) as devnet:
        chain = devnet.chain
        chain.generate_history(100, traffic=Traffic(seed=27), tx_per_ledger=10)
        await index_until_caught_up(Worker(worker_settings(devnet, database_url), database_url), devnet)
        # as an index written before anchors were kept
        await db.execute("UPDATE indexer_cursor SET anchor_ledger = NULL, anchor_hash = NULL, anchor_closed_at = NULL")
        chain.generate_history(100, traffic=Traffic(seed=28), tx_per_ledger=10)
        await index_until_caught_up(Worker(worker_settings(devnet, database_url), database_url), devnet)
        ledger, hash_ = await anchor_of(db)
        assert hash_ == chain.ledger(ledger).hash
        assert await db.fetchval("SELECT count(*) FROM contract_events") == chain.event_count


async def test_an_anchor_older_than_the_rpc_keeps_is_not_compared(database_url: str, db: asyncpg.Connection) -> None:
    with running_devnet(retention=20) as devnet:
        devnet.chain.execute("initialize", {"admin": Traffic(seed=1).accounts[0],
                                            "treasury": Traffic(seed=1).accounts[1], "fee_rate_bps": 0})
        await index_until_caught_up(Worker(worker_settings(devnet, database_url), database_url), devnet)
        anchor, _ = await anchor_of(db)
        for _ in range(50):
            devnet.chain.close_ledger()
        assert anchor < devnet.chain.oldest.sequence
        with pytest.raises(IndexerStopped) as stopped:
            await Worker(worker_settings(devnet, database_url), database_url).run()
        assert f"only keeps ledgers {devnet.chain.oldest.sequence}-" in str(stopped.value), "as before anchors"


async def test_a_get_ledgers_that_keeps_failing_holds_up_no_event_and_the_anchor_follows_once_it_answers(
    database_url: str, db: asyncpg.Connection, anchor_every_page: None, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers_well = False
    real_get_ledgers = RpcMethods.get_ledgers

    def get_ledgers(self: RpcMethods, params: Any, fault: str | None = None) -> bytes:
        if answers_well:
            return real_get_ledgers(self, params, fault)
        return b'{"ledgers": [{"sequence": %d, "hash": null, "ledgerCloseTime": "1"}]}' % params["startLedger"]

    monkeypatch.setattr(RpcMethods, "get_ledgers", get_ledgers)
    with running_devnet(seed=29) as devnet:
        chain = devnet.chain
        chain.generate_history(100, traffic=Traffic(seed=29), tx_per_ledger=10)
        with caplog.at_level(logging.WARNING, logger="indexer.worker"):
            await index_until_caught_up(Worker(worker_settings(devnet, database_url), database_url, max_backoff=0.05),
                                        devnet, timeout=30)
        assert await db.fetchval("SELECT count(*) FROM contract_events") == chain.event_count
        assert await anchor_of(db) == (None, None)
        gave_up = [r.getMessage() for r in caplog.records if "without a new anchor" in r.getMessage()]
        assert gave_up and gave_up[0].startswith("getLedgers failed 3 times (getLedgers returned a malformed result")

        answers_well = True
        chain.generate_history(20, traffic=Traffic(seed=30), tx_per_ledger=10)
        await index_until_caught_up(Worker(worker_settings(devnet, database_url), database_url), devnet)
        ledger, hash_ = await anchor_of(db)
        assert ledger == chain.latest.sequence and hash_ == chain.ledger(ledger).hash
