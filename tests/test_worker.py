from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import subprocess
import sys

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stellar_sdk import scval

from devnet import Traffic, running_devnet
from indexer.worker import IndexerStopped, Worker
from tests.indexing import (
    assert_streams_match_model,
    index_until_caught_up,
    snapshot,
    worker_settings,
)


async def test_indexes_traffic_and_matches_the_contract_state(database_url: str, db: asyncpg.Connection) -> None:
    with running_devnet(seed=1) as devnet:
        devnet.chain.generate_history(1500, traffic=Traffic(seed=1), tx_per_ledger=20)
        worker = Worker(worker_settings(devnet, database_url, page_size=250), database_url)
        await index_until_caught_up(worker, devnet)
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
            assert error is None or "InvalidArguments" not in str(error), error
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
    with running_devnet(seed=3) as devnet:
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
               "FLOWFI_PAGE_SIZE": "100", "FLOWFI_POLL_INTERVAL": "0.05"}
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
