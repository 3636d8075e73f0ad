from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import random
import signal
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from stellar_sdk import scval, xdr

from devnet import InvalidInvocation, Traffic, running_devnet
from devnet import entries as entries_module
from devnet.lake import write_lake
from devnet.xdr import encode_event
from indexer import ids
from indexer import worker as worker_module
from indexer.events import StreamCreated
from indexer.store import WriterBusy
from indexer.worker import IndexerStopped, Worker
from tests.indexing import (
    MODEL_BUILD,
    assert_streams_match_model,
    index_until_caught_up,
    snapshot,
    worker_settings,
)
from tests.lake_writer import grow

SENDER = "GAJKUTWHRMNW375TPXCKYDF4MLUBJIRD7YVKGCNN3J6S44GZE3N2LUBQ"
RECIPIENT = "GDD24I62LHMI6FRWMZ3OD36DDAM4MDQSFWS7G37HZDHHXTMBOGFV7GCO"
TOKEN = "CC5VQ6PDN44JTGIJ7XZAN2WPQHHCRQLOKWI2RRAXXRS3WR2HI25AHEX2"
OTHER_CONTRACT = "CAAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQC526"


async def test_indexes_traffic_and_matches_the_contract_state(
        database_url: str, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture) -> None:
    with running_devnet(seed=1, build=MODEL_BUILD) as devnet:
        devnet.chain.generate_history(1500, traffic=Traffic(seed=1), tx_per_ledger=20)
        worker = Worker(worker_settings(devnet, database_url, page_size=250), database_url)
        with caplog.at_level(logging.INFO, logger="indexer.worker"):
            await index_until_caught_up(worker, devnet)
        # a stop asked for is said, with where the index ends: a clean stop does not look like a crash
        assert caplog.records[-1].getMessage() == f"stopped after ledger {devnet.chain.latest.sequence}"
        await assert_streams_match_model(db, devnet.chain.contract)
        assert await db.fetchval("SELECT count(*) FROM contract_events") == devnet.chain.event_count
        assert await db.fetchval("SELECT count(*) FROM events") == devnet.chain.event_count
        config = devnet.chain.contract.config
        assert config is not None
        row = await db.fetchrow("SELECT admin, treasury, fee_rate_bps FROM protocol_config")
        assert tuple(row) == (config.admin, config.treasury, config.fee_rate_bps)
        # every stream event carries its stream's parties, for the per-address queries
        assert await db.fetchval(
            "SELECT count(*) FROM events WHERE stream_id IS NOT NULL AND (sender IS NULL OR recipient IS NULL)"
        ) == 0


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["create_stream", "top_up_stream", "withdraw", "cancel_stream", "pause_stream",
                         "resume_stream", "update_fee_config"]),
        st.integers(min_value=0, max_value=7),  # which stream / party
        st.integers(min_value=1, max_value=10**12),  # amount
        st.integers(min_value=1, max_value=400),  # seconds until the ledger
    ),
    min_size=1,
    max_size=40,
)


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS, page_size=st.integers(min_value=1, max_value=7))
async def test_random_contract_calls_index_to_the_model_state(
    server_url: str, template_database: str, operations: list[tuple[str, int, int, int]], page_size: int
) -> None:
    from tests.conftest import _admin, with_database

    name = f"flowfi_hyp_{os.getpid()}"
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await _admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    database_url = with_database(server_url, name)
    traffic = Traffic(seed=0, accounts=4)
    people = traffic.accounts
    with running_devnet() as devnet:
        chain = devnet.chain
        now = chain.latest.close_time
        chain.execute("initialize", {"admin": people[0], "treasury": people[1], "fee_rate_bps": 25})
        for function, which, amount, seconds in operations:
            now = chain.latest.close_time + seconds
            stream_ids = sorted(chain.contract.streams) or [1]
            stream_id = stream_ids[which % len(stream_ids)]
            stream = chain.contract.streams.get(stream_id)
            args: dict[str, object]
            if function == "create_stream":
                args = {"sender": people[which % 4], "recipient": people[(which + 1) % 4],
                        "token_address": traffic.token, "amount": amount, "duration": seconds}
            elif function == "update_fee_config":
                args = {"admin": people[0], "treasury": people[which % 4], "fee_rate_bps": which * 100}
            elif function == "withdraw":
                args = {"recipient": stream.recipient if stream else people[1], "stream_id": stream_id}
            elif function == "top_up_stream":
                args = {"sender": stream.sender if stream else people[0], "stream_id": stream_id, "amount": amount}
            else:
                args = {"sender": stream.sender if stream else people[0], "stream_id": stream_id}
            future = chain.submit(function, args)
            chain.close_ledger(now)
            error = future.result(timeout=0).error
            # calls the contract refuses emit nothing; malformed calls are a bug of this test
            assert not isinstance(error, InvalidInvocation), error
        worker = Worker(worker_settings(devnet, database_url, page_size=page_size), database_url)
        await index_until_caught_up(worker, devnet)
        conn = await asyncpg.connect(database_url)
        try:
            await assert_streams_match_model(conn, chain.contract)
            assert await conn.fetchval("SELECT count(*) FROM events") == chain.event_count
        finally:
            await conn.close()
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_malformed_events_go_to_dead_letters_and_later_events_are_indexed(
    database_url: str, db: asyncpg.Connection
) -> None:
    with running_devnet() as devnet:
        chain = devnet.chain
        people = Traffic(seed=2).accounts
        chain.execute("initialize", {"admin": people[0], "treasury": people[1], "fee_rate_bps": 0})
        chain.inject_raw_event([scval.to_symbol("stream_paused").to_xdr()], "garbage")
        chain.inject_raw_event([scval.to_symbol("mystery").to_xdr()], scval.to_uint32(1).to_xdr())
        chain.close_ledger()
        receipt = chain.execute("create_stream", {"sender": people[0], "recipient": people[1],
                                                  "token_address": Traffic(seed=2).token, "amount": 1000,
                                                  "duration": 10})
        assert receipt.error is None
        worker = Worker(worker_settings(devnet, database_url), database_url)
        await index_until_caught_up(worker, devnet)
        reasons = [r["reason"] for r in await db.fetch("SELECT reason FROM dead_letters ORDER BY event_id")]
        assert len(reasons) == 2
        assert "XDR does not parse" in reasons[0]
        assert "unknown event 'mystery'" in reasons[1]
        kinds = [r["kind"] for r in await db.fetch("SELECT kind FROM events ORDER BY id")]
        assert kinds == ["protocol.initialized", "stream.created"]
        assert await db.fetchval("SELECT count(*) FROM streams") == 1
        # the undecodable events are still kept raw, with their XDR
        assert await db.fetchval("SELECT count(*) FROM contract_events") == len(kinds) + 2


ODD = 'tab\t back\\slash "quote" new\nline cr\r {a,b} NULL \\N é 😀 \u2028'


async def test_a_contract_whose_events_are_none_of_flowfis_is_named_once(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """FLOWFI_CONTRACT_IDS naming a token (its transfers fill the dead letters) is said once, with what to
    check, beside the dead-letter lines; a FlowFi contract with a stray unknown event is not."""
    token = "CAAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQC526"
    with running_devnet() as devnet:
        chain = devnet.chain
        people = Traffic(seed=2).accounts
        chain.execute("initialize", {"admin": people[0], "treasury": people[1], "fee_rate_bps": 0})
        chain.inject_raw_event([scval.to_symbol("mystery").to_xdr()], scval.to_uint32(1).to_xdr())
        for n in range(worker_module.NOT_FLOWFI_AFTER + 5):
            chain.inject_raw_event([scval.to_symbol("transfer").to_xdr()], scval.to_uint32(n).to_xdr(),
                                   contract_id=token)
        chain.close_ledger()
        worker = Worker(worker_settings(devnet, database_url, contract_ids=(chain.contract_id, token)),
                        database_url)
        with caplog.at_level(logging.WARNING, logger="indexer.worker"):
            await index_until_caught_up(worker, devnet)
    named = [r.getMessage() for r in caplog.records if "none is a FlowFi event" in r.getMessage()]
    assert named == [f"contract {token} has sent {worker_module.NOT_FLOWFI_AFTER} events and none is a FlowFi "
                     "event (transfer): is it a FlowFi contract? FLOWFI_CONTRACT_IDS names the contracts to index"]


async def test_dead_letters_with_odd_characters_are_stored_exactly(
    database_url: str, db: asyncpg.Connection
) -> None:
    with running_devnet() as devnet:
        chain = devnet.chain
        not_xdr = [ODD, "", "NULL"]
        chain.inject_raw_event(not_xdr, ODD)  # neither parses
        chain.inject_raw_event([scval.to_string(ODD).to_xdr()], scval.to_string(ODD).to_xdr())  # topic 0 no Symbol
        chain.inject_raw_event([scval.to_symbol("mystery").to_xdr()],
                               scval.to_map({scval.to_symbol("note"): scval.to_string(ODD)}).to_xdr())
        nul = scval.to_string("a\x00b").to_xdr()  # jsonb cannot hold NUL: the JSON is NULL, the XDR kept
        chain.inject_raw_event([scval.to_symbol("mystery").to_xdr()], nul)
        chain.close_ledger()
        worker = Worker(worker_settings(devnet, database_url), database_url)
        await index_until_caught_up(worker, devnet)
        rows = await db.fetch("SELECT topic_xdr, value_xdr, topic, value FROM contract_events ORDER BY id")
        assert [(r["topic_xdr"], r["value_xdr"]) for r in rows] == [
            (not_xdr, ODD),
            ([scval.to_string(ODD).to_xdr()], scval.to_string(ODD).to_xdr()),
            ([scval.to_symbol("mystery").to_xdr()],
             scval.to_map({scval.to_symbol("note"): scval.to_string(ODD)}).to_xdr()),
            ([scval.to_symbol("mystery").to_xdr()], nul),
        ]
        decoded = [(json.loads(r["topic"]) if r["topic"] else None, json.loads(r["value"]) if r["value"] else None)
                   for r in rows]
        assert decoded == [(None, None), ([ODD], ODD), (["mystery"], {"note": ODD}), (["mystery"], None)]
        reasons = [r["reason"] for r in await db.fetch("SELECT reason FROM dead_letters ORDER BY event_id")]
        assert len(reasons) == 4
        assert "XDR does not parse" in reasons[0]
        assert "topic 0 is a string" in reasons[1]
        assert "unknown event 'mystery'" in reasons[2]
        assert await db.fetchval("SELECT count(*) FROM events") == 0


async def test_rpc_failures_are_retried_and_nothing_is_skipped(
    database_url: str, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    with running_devnet(seed=3, build=MODEL_BUILD) as devnet:
        devnet.chain.generate_history(300, traffic=Traffic(seed=3), tx_per_ledger=10)
        devnet.faults.timeout_seconds = 3.0
        for fault in ("timeout", "http500", "rpc-32001", "garbage", "truncated"):
            devnet.faults.inject(fault)
        worker = Worker(worker_settings(devnet, database_url, rpc_timeout=0.5), database_url, max_backoff=0.2)
        with caplog.at_level(logging.WARNING, logger="indexer.worker"):
            await index_until_caught_up(worker, devnet)
        assert len(devnet.faults) == 0
        retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
        assert len(retries) >= 5, retries
        assert await db.fetchval("SELECT count(*) FROM contract_events") == devnet.chain.event_count
        await assert_streams_match_model(db, devnet.chain.contract)


async def test_a_network_mismatch_stops_with_a_clear_error(database_url: str) -> None:
    with running_devnet() as devnet:
        worker = Worker(worker_settings(devnet, database_url, network_passphrase="Test SDF Network ; September 2015"),
                        database_url)
        with pytest.raises(IndexerStopped, match="serves the network 'Standalone Network"):
            await worker.run()


async def test_a_cursor_out_of_retention_stops_with_actionable_advice(database_url: str) -> None:
    with running_devnet(retention=20) as devnet:
        for _ in range(50):
            devnet.chain.close_ledger()
        worker = Worker(worker_settings(devnet, database_url, start_ledger=5), database_url)
        with pytest.raises(IndexerStopped) as stopped:
            await worker.run()
        message = str(stopped.value)
        oldest = devnet.chain.oldest.sequence
        assert f"only keeps ledgers {oldest}-" in message
        assert f"events of ledgers 5-{oldest - 1}" in message
        assert f"--restart-from-ledger {oldest}" in message


async def test_the_advice_to_accept_the_gap_works_on_the_oldest_ledger_the_server_keeps(
    database_url: str, db: asyncpg.Connection
) -> None:
    """`--restart-from-ledger <oldest>` leaves the cursor at the end of the ledger before the oldest, which
    Stellar RPC refuses as a cursor (its ledger is out of range): the same events are asked for from the
    oldest ledger instead."""
    with running_devnet(seed=13, retention=20, traffic_per_ledger=4) as devnet:
        history = grow(devnet.chain, 50)
        worker = Worker(worker_settings(devnet, database_url, start_ledger=5), database_url)
        with pytest.raises(IndexerStopped):
            await worker.run()
        oldest = devnet.chain.oldest.sequence
        await worker.restart_from(oldest)
        await index_until_caught_up(Worker(worker_settings(devnet, database_url, start_ledger=5), database_url),
                                    devnet)
    ours = [e["id"] for r in history for e in r.events
            if e["contractId"] == devnet.chain.contract_id and ids.ledger_of(e["id"]) >= oldest]
    assert [r["id"] for r in await db.fetch("SELECT id FROM contract_events ORDER BY id")] == ours
    assert ours


async def test_ledgers_older_than_rpc_keeps_are_read_from_the_data_lake_then_rpc_follows(
    tmp_path: Path, database_url: str, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    with running_devnet(seed=12, retention=30, traffic_per_ledger=8, build=MODEL_BUILD) as devnet:
        chain = devnet.chain
        history = grow(chain, 100)
        # the lake ends a few ledgers into RPC's window, as a lake lags the chain by minutes
        lake_end = write_lake(tmp_path / "lake", chain.passphrase, history[: chain.oldest.sequence + 6])
        assert 1 < chain.oldest.sequence <= lake_end < chain.latest.sequence
        settings = worker_settings(devnet, database_url, start_ledger=1, lake_url=str(tmp_path / "lake"))
        with caplog.at_level(logging.INFO, logger="indexer.worker"):
            await index_until_caught_up(Worker(settings, database_url), devnet)
        assert f"ledgers 1-{chain.oldest.sequence - 1} are older than {devnet.url} keeps" in caplog.text
        assert f"read ledgers 1-{lake_end} from the data lake; continuing from {devnet.url}" in caplog.text
        expected = [(e["id"], e["txHash"], e.get("topic", []), e["value"])
                    for r in history for e in r.events if e["contractId"] == chain.contract_id]
        stored = await db.fetch("SELECT id, tx_hash, topic_xdr, value_xdr FROM contract_events ORDER BY id")
        assert [tuple(row) for row in stored] == expected  # the whole history: no gap, no duplicate
        assert await db.fetchval("SELECT count(*) FROM events") == len(expected)
        await assert_streams_match_model(db, chain.contract)


@pytest.mark.parametrize("lake", ["ends too soon", "of another network", "one object"])
async def test_a_lake_that_cannot_fill_the_gap_stops_the_worker_with_the_reason(
    lake: str, tmp_path: Path, database_url: str, db: asyncpg.Connection
) -> None:
    with running_devnet(seed=13, retention=30, traffic_per_ledger=4) as devnet:
        chain = devnet.chain
        history = grow(chain, 80)
        oldest = chain.oldest.sequence
        if lake == "ends too soon":
            lake_end = write_lake(tmp_path / "lake", chain.passphrase, history[: oldest - 6])
            reason = f"ends at ledger {lake_end}"
        elif lake == "one object":  # an object may hold any ledgers: not ledger 1, here
            write_lake(tmp_path / "lake", chain.passphrase, history[: oldest - 6])
            source = sorted((tmp_path / "lake").glob("*/*.xdr.zst"))[0]  # the newest ledger's
            reason = "has no ledger 1 (the next it holds is"
        else:
            lake_end = write_lake(tmp_path / "lake", "Test SDF Network ; September 2015", history)
            reason = "holds the ledgers of the network 'Test SDF Network ; September 2015'"
        source = source if lake == "one object" else tmp_path / "lake"
        settings = worker_settings(devnet, database_url, start_ledger=1, lake_url=str(source))
        with pytest.raises(IndexerStopped) as stopped:
            await Worker(settings, database_url).run()
        assert reason in str(stopped.value)
        assert f"only keeps ledgers {oldest}-" in str(stopped.value)
        assert f"accept the gap with `flowfi index --restart-from-ledger {oldest}`" in str(stopped.value)
        # what the lake could give is kept
        written = await db.fetchval("SELECT last_ledger FROM indexer_cursor")
        assert written == (lake_end if lake == "ends too soon" else None)


@pytest.mark.slow
async def test_killing_the_worker_mid_run_leaves_the_rows_of_an_uninterrupted_run(
    server_url: str, template_database: str, database_url: str, db: asyncpg.Connection
) -> None:
    from tests.conftest import _admin, with_database

    with running_devnet(seed=5) as devnet:
        devnet.chain.generate_history(10_000, traffic=Traffic(seed=5), tx_per_ledger=40)
        # the reference: one uninterrupted run
        await index_until_caught_up(Worker(worker_settings(devnet, database_url), database_url), devnet)
        expected = await snapshot(db)

        name = f"flowfi_killed_{os.getpid()}"
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await _admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
        killed_url = with_database(server_url, name)
        env = {**os.environ, "DATABASE_URL": killed_url, "FLOWFI_RPC_URL": devnet.url,
               "FLOWFI_CONTRACT_IDS": devnet.chain.contract_id, "FLOWFI_START_LEDGER": "1",
               "FLOWFI_PAGE_SIZE": "100", "FLOWFI_POLL_INTERVAL": "0.05",
               "FLOWFI_CONTRACT_BUILD": devnet.chain.contract.build}
        kills = 0
        conn = await asyncpg.connect(killed_url)
        try:
            for delay in random.Random(5).sample([0.4 + i * 0.06 for i in range(20)], 10):
                process = subprocess.Popen([sys.executable, "-m", "flowfi", "index"], env=env,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                await asyncio.sleep(delay)
                process.send_signal(signal.SIGKILL)
                process.wait()
                kills += 1
            worker = Worker(worker_settings(devnet, killed_url), killed_url)
            await index_until_caught_up(worker, devnet)
            actual = await snapshot(conn)
            for table, rows in expected.items():
                assert len(actual[table]) == len(rows), table
                mismatch = next(((a, b) for a, b in zip(actual[table], rows, strict=True) if a != b), None)
                assert mismatch is None, f"{table}: {mismatch}"
        finally:
            await conn.close()
            await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        assert kills == 10


async def run_until(worker: Worker, database_url: str, done: Any, timeout: float = 30.0) -> None:
    """Run `worker` until `done(conn)` holds, then stop it; the worker must not stop by itself."""
    conn = await asyncpg.connect(database_url)
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(timeout):
            while not await done(conn):
                if task.done():
                    task.result()
                    raise AssertionError("the worker stopped")
                await asyncio.sleep(0.02)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 10)
        await conn.close()


def indexed(count: int) -> Any:
    async def check(conn: asyncpg.Connection) -> bool:
        return bool(await conn.fetchval("SELECT count(*) FROM contract_events") == count)
    return check


async def test_a_lagging_node_and_a_failed_database_read_are_waited_out(
    database_url: str, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    """Behind a load balancer the next request may reach a node a ledger behind: "startLedger must be
    within the ledger range" with the cursor past its newest ledger means "not yet", not "lost"."""
    with running_devnet(seed=4) as devnet:
        chain = devnet.chain
        chain.generate_history(200, traffic=Traffic(seed=4), tx_per_ledger=10)
        worker = Worker(worker_settings(devnet, database_url), database_url, max_backoff=0.1)

        async def at_the_tip_then_faults() -> None:
            while (await db.fetchval("SELECT max(last_ledger) FROM indexer_cursor") or 0) < chain.latest.sequence:
                await asyncio.sleep(0.02)
            # one fault a request: the next request at the tip is a poll (getEvents)
            for faults in (["db-read-failed"], ["behind", "behind", "behind"]):
                for fault in faults:
                    devnet.faults.inject(fault)
                while len(devnet.faults):
                    await asyncio.sleep(0.02)
            chain.generate_history(50, traffic=Traffic(seed=5), tx_per_ledger=10)

        faults = asyncio.create_task(at_the_tip_then_faults())
        with caplog.at_level(logging.WARNING, logger="indexer.worker"):
            await run_until(worker, database_url, lambda conn: indexed_all(conn, devnet, faults))
        messages = [r.getMessage() for r in caplog.records]
        assert len(devnet.faults) == 0
        assert any("not yet" in m for m in messages), messages
        assert any("database read failed" in m for m in messages), messages


async def indexed_all(conn: asyncpg.Connection, devnet: Any, after: asyncio.Task[None]) -> bool:
    return after.done() and await conn.fetchval("SELECT count(*) FROM contract_events") == devnet.chain.event_count


async def test_a_start_ledger_beyond_the_newest_waits_for_the_chain(database_url: str) -> None:
    with running_devnet() as devnet:
        chain = devnet.chain
        start = chain.latest.sequence + 3
        worker = Worker(worker_settings(devnet, database_url, start_ledger=start), database_url, max_backoff=0.1)

        async def create_later() -> None:
            await asyncio.sleep(0.5)
            for _ in range(3):
                chain.close_ledger()
            chain.execute("create_stream", {"sender": SENDER, "recipient": RECIPIENT, "token_address": TOKEN,
                                            "amount": 1000, "duration": 10})

        later = asyncio.create_task(create_later())
        await run_until(worker, database_url, indexed(1))
        await later


async def test_catching_up_fetches_page_after_page_without_polling(database_url: str) -> None:
    """A page that is not full but ends before the newest ledger (the server scans at most 10,000
    ledgers a request) is followed at once; the poll interval applies at the newest ledger only."""
    with running_devnet() as devnet:
        chain = devnet.chain
        for block in range(4):
            for _ in range(9_000):
                chain.close_ledger()
            chain.execute("create_stream", {"sender": SENDER, "recipient": RECIPIENT, "token_address": TOKEN,
                                            "amount": 1000 + block, "duration": 10})
        worker = Worker(worker_settings(devnet, database_url, poll_interval=60.0), database_url)
        await run_until(worker, database_url, indexed(4), timeout=20)


async def test_events_of_other_contracts_and_of_failed_transactions_are_skipped(
    database_url: str, db: asyncpg.Connection
) -> None:
    with running_devnet(seed=8) as devnet:
        chain = devnet.chain
        chain.generate_history(100, traffic=Traffic(seed=8), tx_per_ledger=5)
        ours = chain.event_count
        created = StreamCreated(stream_id=999, sender=SENDER, recipient=RECIPIENT, rate_per_second=1,
                                token_address=TOKEN, deposited_amount=10, start_time=1)
        chain.inject_event(created, contract_id=OTHER_CONTRACT)
        topic, value = encode_event(created)
        chain.inject_raw_event(topic, value, successful=False)
        chain.close_ledger()
        devnet.faults.inject("unfiltered", 1000)  # the server hands out every contract's events
        worker = Worker(worker_settings(devnet, database_url), database_url)
        await index_until_caught_up(worker, devnet)
        assert await db.fetchval("SELECT count(*) FROM contract_events") == ours
        assert await db.fetchval("SELECT count(*) FROM streams WHERE stream_id = 999") == 0


async def test_a_database_at_its_connection_limit_is_waited_for_not_a_stop(
    database_url: str, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL refusing a connection for want of slots (too many connections, SQLSTATE 53300) is a
    passing outage, as a restart is: the worker says so and tries again until it gets in."""
    role = f"flowfi_limited_{os.getpid()}"
    await db.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0')
    try:
        await db.execute(f'GRANT pg_read_all_data, pg_write_all_data TO "{role}"')
        parts = urlsplit(database_url)
        limited = urlunsplit(parts._replace(netloc=f"{role}@{parts.netloc.rpartition('@')[2]}"))
        with running_devnet(seed=14, traffic_per_ledger=4) as devnet:
            grow(devnet.chain, 10)
            worker = Worker(worker_settings(devnet, limited), limited, max_backoff=0.2)
            with caplog.at_level(logging.WARNING, logger="indexer.worker"):
                running = asyncio.create_task(worker.run())
                try:
                    async with asyncio.timeout(20):
                        while caplog.text.count("too many connections") < 2:
                            await asyncio.sleep(0.05)
                    await db.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT -1')
                    async with asyncio.timeout(20):
                        while await db.fetchval("SELECT count(*) FROM contract_events") < devnet.chain.event_count:
                            await asyncio.sleep(0.05)
                finally:
                    worker.stop()
                    await asyncio.wait_for(running, 10)
    finally:
        await db.execute(f'DROP ROLE "{role}"')


async def roll_back_cursor_writes(db: asyncpg.Connection, sqlstate: str, times: int) -> None:
    """A trigger that raises `sqlstate` for the first `times` writes of the cursor, rolling their pages back."""
    await db.execute("CREATE SEQUENCE cursor_writes")
    await db.execute(f"""
        CREATE FUNCTION roll_back() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF nextval('cursor_writes') <= {times} THEN
                RAISE EXCEPTION 'rolled back' USING ERRCODE = '{sqlstate}';
            END IF;
            RETURN NEW;
        END $$""")
    await db.execute("CREATE TRIGGER roll_back BEFORE INSERT OR UPDATE ON indexer_cursor "
                     "FOR EACH ROW EXECUTE FUNCTION roll_back()")


def rolled_back() -> float:
    return REGISTRY.get_sample_value("flowfi_transactions_rolled_back_total") or 0.0


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])  # a deadlock, a serialization failure
async def test_a_page_postgresql_rolls_back_over_another_session_is_written_again_not_a_stop(
    database_url: str, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture, sqlstate: str
) -> None:
    """A deadlock or a serialization failure with another session rolls the page's transaction back, and
    PostgreSQL asks for it to be tried again: the worker does, rather than stop."""
    await roll_back_cursor_writes(db, sqlstate, times=2)
    before = rolled_back()
    with running_devnet(seed=15, traffic_per_ledger=4) as devnet:
        grow(devnet.chain, 10)
        worker = Worker(worker_settings(devnet, database_url, page_size=20), database_url, max_backoff=0.2)
        with caplog.at_level(logging.WARNING, logger="indexer.worker"):
            await index_until_caught_up(worker, devnet)
        assert await db.fetchval("SELECT count(*) FROM contract_events") == devnet.chain.event_count
    assert await db.fetchval("SELECT events_indexed FROM indexer_cursor") == devnet.chain.event_count
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("write a page failed")]
    assert len(retries) == 2 and all("PostgreSQL rolled the transaction back" in line for line in retries)
    assert rolled_back() == before + 2


async def test_a_transaction_whose_commit_is_unknown_stops_the_worker_rather_than_be_written_again(
    database_url: str, db: asyncpg.Connection
) -> None:
    """SQLSTATE 40003 (statement completion unknown) is in class 40 too, but may have committed."""
    await roll_back_cursor_writes(db, "40003", times=1)
    with running_devnet(seed=15, traffic_per_ledger=4) as devnet:
        grow(devnet.chain, 10)
        worker = Worker(worker_settings(devnet, database_url, page_size=20), database_url, max_backoff=0.2)
        with pytest.raises(asyncpg.exceptions.StatementCompletionUnknownError):
            await asyncio.wait_for(worker.run(), 20)
    assert await db.fetchval("SELECT count(*) FROM contract_events") == 0


async def test_ledgers_read_again_after_a_restart_count_no_event_twice_and_keep_the_newest_event_indexed(
    database_url: str, db: asyncpg.Connection
) -> None:
    with running_devnet(seed=9) as devnet:
        devnet.chain.generate_history(300, traffic=Traffic(seed=9), tx_per_ledger=10)
        await index_until_caught_up(Worker(worker_settings(devnet, database_url), database_url), devnet)
        stored = await db.fetchval("SELECT count(*) FROM contract_events")
        newest = await db.fetchval("SELECT max(id) FROM contract_events")
        assert await db.fetchval("SELECT last_event_id FROM indexer_cursor") == newest
        worker = Worker(worker_settings(devnet, database_url, page_size=10), database_url)
        await worker.restart_from(devnet.chain.latest.sequence - 10)
        worker.page_written = lambda fetched, written: worker.stop()
        await asyncio.wait_for(worker.run(), 30)
        reread = await db.fetchrow("SELECT last_ledger, last_event_id FROM indexer_cursor")
        assert reread["last_ledger"] < devnet.chain.latest.sequence - 1, "stopped within the ledgers read again"
        assert reread["last_event_id"] == newest
        for _ in range(3):
            devnet.chain.close_ledger()
        await index_until_caught_up(Worker(worker_settings(devnet, database_url), database_url), devnet)
        assert await db.fetchval("SELECT events_indexed FROM indexer_cursor") == stored
        assert await db.fetchval("SELECT count(*) FROM contract_events") == stored


async def test_a_worker_of_other_contracts_stands_by_while_one_writes_the_database(
    database_url: str, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    """Two writers of different contracts would commit out of chain order (one behind the other), and the
    live feed, which publishes the events after the last one it published, would never send the late
    ones: a database has one writer, whatever contracts it indexes."""
    other = "CC5VQ6PDN44JTGIJ7XZAN2WPQHHCRQLOKWI2RRAXXRS3WR2HI25AHEX2"
    with running_devnet(seed=11, traffic_per_ledger=2, ledger_interval=0.1) as devnet:
        first = Worker(worker_settings(devnet, database_url), database_url)
        writing = asyncio.create_task(first.run())
        async with asyncio.timeout(10):
            while not await db.fetchval("SELECT count(*) FROM contract_events"):
                await asyncio.sleep(0.05)
        second = Worker(worker_settings(devnet, database_url, contract_ids=(devnet.chain.contract_id, other)),
                        database_url)
        with caplog.at_level(logging.INFO, logger="indexer.worker"):
            standing = asyncio.create_task(second.run())
            async with asyncio.timeout(10):
                while not any("standing by to take over" in r.getMessage() for r in caplog.records):
                    await asyncio.sleep(0.05)
            assert await db.fetchval("SELECT count(*) FROM indexer_cursor") == 1, "the second wrote nothing"
            first.stop()
            await asyncio.wait_for(writing, 10)
            async with asyncio.timeout(10):
                while await db.fetchval("SELECT count(*) FROM indexer_cursor") < 2:
                    await asyncio.sleep(0.05)
            second.stop()
            await asyncio.wait_for(standing, 10)
    said = [r.getMessage() for r in caplog.records if "standing by" in r.getMessage()]
    assert said[0].startswith("another worker writes this database (PostgreSQL session ")
    assert any(r.getMessage() == "took over as the writing worker" for r in caplog.records)


async def test_a_restart_from_a_ledger_holds_until_a_worker_gets_there(
    database_url: str, db: asyncpg.Connection
) -> None:
    """`flowfi index --restart-from-ledger L` stopped before the chain reaches L: the next plain run still
    continues from L (the ledgers before it skipped), not from a default start."""
    with running_devnet(seed=10, traffic_per_ledger=4) as devnet:
        grow(devnet.chain, 20)
        settings = worker_settings(devnet, database_url, start_ledger=None)
        await index_until_caught_up(Worker(settings, database_url), devnet)
        indexed = devnet.chain.latest.sequence
        history = grow(devnet.chain, 5)
        ahead = indexed + 6  # the chain's next ledger
        await Worker(settings, database_url).restart_from(ahead)  # and stopped at once
        assert await db.fetchval("SELECT last_ledger FROM indexer_cursor") == ahead - 1
        history += grow(devnet.chain, 10)
        await index_until_caught_up(Worker(settings, database_url), devnet)
    ours = [e["id"] for r in history for e in r.events if e["contractId"] == devnet.chain.contract_id]
    stored = [r["id"] for r in await db.fetch("SELECT id FROM contract_events WHERE ledger > $1 ORDER BY id",
                                              indexed)]
    assert stored == [i for i in ours if ids.ledger_of(i) >= ahead] and stored


async def test_a_restart_from_a_ledger_the_chain_has_not_closed_is_refused(
    database_url: str, db: asyncpg.Connection
) -> None:
    """The index would be ahead of the chain, which the worker takes for a network reset (at once when it
    is more than an hour of ledgers ahead, else ten minutes later)."""
    with running_devnet(seed=10, traffic_per_ledger=4) as devnet:
        grow(devnet.chain, 5)
        latest = devnet.chain.latest.sequence
        worker = Worker(worker_settings(devnet, database_url), database_url)
        for ledger in (latest + 2, latest + 1000, 0):
            with pytest.raises(IndexerStopped) as refused:
                await worker.restart_from(ledger)
            assert str(refused.value) == (f"--restart-from-ledger {ledger}: the chain's newest ledger is {latest} "
                                          f"(at {devnet.url}); give a ledger from 1 to {latest + 1}")
        assert await db.fetchval("SELECT count(*) FROM indexer_cursor") == 0
        await worker.restart_from(latest + 1)
        assert await db.fetchval("SELECT last_ledger FROM indexer_cursor") == latest


async def test_a_restart_against_another_networks_rpc_is_refused_before_the_cursor_moves(
    database_url: str, db: asyncpg.Connection
) -> None:
    with running_devnet() as devnet:
        grow(devnet.chain, 5)
        settings = worker_settings(devnet, database_url, network_passphrase="Test SDF Network ; September 2015")
        with pytest.raises(IndexerStopped, match="serves the network 'Standalone Network"):
            await Worker(settings, database_url).restart_from(2)
        assert await db.fetchval("SELECT count(*) FROM indexer_cursor") == 0


async def test_a_restart_is_refused_while_another_worker_writes_which_would_write_over_it(
    database_url: str, db: asyncpg.Connection
) -> None:
    with running_devnet(seed=10, traffic_per_ledger=4, ledger_interval=0.1) as devnet:
        grow(devnet.chain, 10)
        settings = worker_settings(devnet, database_url)
        writing = Worker(settings, database_url)
        running = asyncio.create_task(writing.run())
        try:
            async with asyncio.timeout(20):
                while not await db.fetchval("SELECT count(*) FROM indexer_cursor"):
                    await asyncio.sleep(0.02)
            with pytest.raises(WriterBusy) as refused:
                await Worker(settings, database_url).restart_from(2)
            assert str(refused.value).startswith("A worker is writing this database (PostgreSQL session ")
            assert str(refused.value).endswith("holds the writer lock): stop it first, then run `flowfi index "
                                               "--restart-from-ledger 2` again")
            assert await db.fetchval("SELECT last_ledger FROM indexer_cursor") > 1
        finally:
            writing.stop()
            await asyncio.wait_for(running, 10)
        await Worker(settings, database_url).restart_from(2)  # with the worker stopped
        assert await db.fetchval("SELECT last_ledger FROM indexer_cursor") == 1


async def test_a_stream_resumed_after_a_cancel_while_paused_stays_cancelled(
    database_url: str, db: asyncpg.Connection
) -> None:
    """End to end on build 8723543's quirk: the chain accepts the resume and publishes it; the stream
    stays cancelled with nothing to claim, in the contract's storage and in the index."""
    with running_devnet(build=MODEL_BUILD) as devnet:
        chain = devnet.chain
        create = {"sender": SENDER, "recipient": RECIPIENT, "token_address": TOKEN, "amount": 10_000, "duration": 100}
        assert chain.execute("create_stream", create).error is None
        for function in ("pause_stream", "cancel_stream", "resume_stream"):
            receipt = chain.execute(function, {"sender": SENDER, "stream_id": 1})
            assert receipt.error is None, function
        assert [event.sse_name for _, event in receipt.events] == ["stream.resumed"]
        assert chain.execute("withdraw", {"recipient": RECIPIENT, "stream_id": 1}).error.name == "StreamInactive"  # type: ignore[union-attr]
        await index_until_caught_up(Worker(worker_settings(devnet, database_url), database_url), devnet)
        await assert_streams_match_model(db, chain.contract)
        row = await db.fetchrow("SELECT status, last_event_id FROM streams")
        assert row["status"] == "cancelled"
        assert row["last_event_id"] == await db.fetchval("SELECT id FROM events WHERE kind = 'stream.resumed'")


async def test_while_a_worker_runs_cyclic_garbage_is_collected_on_a_clock(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker raises the cyclic collector's thresholds out of its way (indexer/worker.py) and runs it
    on a clock instead, now and then over every generation; when it stops, the process's settings are as
    they were, even when it is cancelled while stopping."""
    monkeypatch.setattr(worker_module, "GC_INTERVAL", 0.02)
    monkeypatch.setattr(worker_module, "GC_FULL_EVERY", 3)
    before = gc.get_threshold(), sys.getswitchinterval()

    class Cycle:
        def __init__(self) -> None:
            self.me = self

    with running_devnet() as devnet:
        worker = Worker(worker_settings(devnet, database_url), database_url)
        task = asyncio.create_task(worker.run())
        try:
            await asyncio.sleep(0.1)
            assert gc.get_threshold() == worker_module.GC_THRESHOLDS
            young = weakref.ref(Cycle())
            old = Cycle()
            gc.collect(1)  # it outlives a collection: in the oldest generation now
            aged = weakref.ref(old)
            del old
            async with asyncio.timeout(5):
                while young() is not None or aged() is not None:
                    await asyncio.sleep(0.02)
        finally:
            worker.stop()
            task.cancel()  # stopping, and cancelled meanwhile
            await asyncio.gather(task, return_exceptions=True)
    assert (gc.get_threshold(), sys.getswitchinterval()) == before


async def test_a_stored_stream_it_cannot_read_is_indexed_from_its_events_and_the_worker_goes_on(
    database_url: str, db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """A build this indexer does not know may store a Stream it cannot read (here an 18th field, on odd ids):
    the creations whose schedule is in storage are still indexed, marked 'unavailable', and said."""
    stored = entries_module.stream_value

    def newer_layout(stream: Any) -> Any:
        value = stored(stream)
        if stream.stream_id % 2:
            value.map.sc_map.append(xdr.SCMapEntry(scval.to_symbol("zz_newer_field"), scval.to_uint32(1)))
        return value

    monkeypatch.setattr(entries_module, "stream_value", newer_layout)
    with running_devnet(seed=4, build="c9f5d2e") as devnet:
        devnet.chain.generate_history(600, traffic=Traffic(seed=4), tx_per_ledger=10)
        worker = Worker(worker_settings(devnet, database_url, page_size=100), database_url)
        with caplog.at_level(logging.WARNING, logger="indexer.storage"):
            await index_until_caught_up(worker, devnet)
        assert await db.fetchval("SELECT count(*) FROM events") == devnet.chain.event_count
        sources = {int(row["stream_id"]): row["terms_source"]
                   for row in await db.fetch("SELECT stream_id, terms_source FROM streams")}
        stored_now = set(devnet.chain.contract.streams)  # closed streams' entries are gone
    said = {stream_id for stream_id in sources if f"stored entry of stream {stream_id} cannot" in caplog.text}
    assert said and all(stream_id % 2 for stream_id in said)
    assert {sources[stream_id] for stream_id in said} == {"unavailable"}
    assert "storage" in {source for stream_id, source in sources.items() if stream_id % 2 == 0}
    assert not {stream_id for stream_id, source in sources.items() if source == "storage" and stream_id % 2}
    # an even stream is 'unavailable' only where its entry was gone when read
    assert not {stream_id for stream_id, source in sources.items()
                if source == "unavailable" and stream_id % 2 == 0 and stream_id in stored_now}
