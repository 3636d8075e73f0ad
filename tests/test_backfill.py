"""`flowfi backfill`: a data lake's ledgers through the worker's decode, state and store, in batches of whole
ledgers; exact on the largest test file, resumable after SIGKILL, handed over to RPC with no gap and no
duplicate, and refusing what it cannot do in one line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.staticfiles import StaticFiles

from devnet import Devnet, running_devnet
from devnet.lake import LakeLedger, write_lake
from indexer import ids
from indexer.backfill import batches
from indexer.lake import LedgerEvents, read_ledgers
from indexer.rpc import LedgerInfo
from indexer.store import WriterBusy
from indexer.worker import IndexerStopped, Worker
from tests.conftest import _admin, with_database
from tests.indexing import MODEL_BUILD, assert_streams_match_model, index_until_caught_up, snapshot, worker_settings
from tests.lake_files import DATALAKE, TESTBUCKET, V28
from tests.lake_writer import grow
from tests.serving import running_app

V28_CONTRACT = "CAFQMN2QWPMLVSZC3KPEOCMFSP4ATAVSQEAVKXW27M3DEQ7SCKNUFHVT"  # the only contract of its 72,300 events
V28_LEDGERS = (10048, 10077)


def _backfill(devnet: Devnet, database_url: str, *args: str, env: dict[str, str] | None = None,
              quiet: bool = False) -> subprocess.Popen[str]:
    """`flowfi backfill args...` in its own process, of the v28 file's contract, with the local network as RPC."""
    environment = {**os.environ, "DATABASE_URL": database_url, "FLOWFI_RPC_URL": devnet.url,
                   "FLOWFI_NETWORK_PASSPHRASE": devnet.chain.passphrase, "FLOWFI_CONTRACT_IDS": V28_CONTRACT,
                   **(env or {})}
    output = subprocess.DEVNULL if quiet else subprocess.PIPE
    return subprocess.Popen([sys.executable, "-m", "flowfi", "backfill", *args], env=environment, text=True,
                            stdout=output, stderr=output)


@contextlib.asynccontextmanager
async def another_database(server_url: str, template_database: str, name: str) -> AsyncIterator[str]:
    """A second fresh database beside the test's own; its URL."""
    name = f"{name}_{os.getpid()}"
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await _admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    try:
        yield with_database(server_url, name)
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=240)
    return process.returncode, out, err


async def _rows(conn: asyncpg.Connection) -> dict[str, list[tuple]]:
    """Every table a backfill writes, in order; the cursor and progress rows without their clock times."""
    rows = await snapshot(conn)
    rows["indexer_cursor"] = [tuple(r) for r in await conn.fetch(
        "SELECT contract_ids, rpc_cursor, last_event_id, last_ledger, latest_ledger, events_indexed "
        "FROM indexer_cursor")]
    rows["backfill_progress"] = [tuple(r) for r in await conn.fetch(
        "SELECT contract_ids, source, first_ledger, end_ledger, last_ledger, events_indexed FROM backfill_progress")]
    return rows


def test_the_test_lake_gives_the_local_networks_events_as_its_rpc_does(tmp_path: Path) -> None:
    with running_devnet(seed=3, traffic_per_ledger=6) as devnet:
        recorded = grow(devnet.chain, 40)
        newest = write_lake(tmp_path / "lake", devnet.chain.passphrase, recorded)
    read = list(read_ledgers(str(tmp_path / "lake"), start=1))
    assert newest == 39  # whole batches of 4 ledgers: 0-3 (from the genesis ledger, 1) ... 36-39
    assert [ledger.sequence for ledger in read] == [r.ledger.sequence for r in recorded[:newest]] == list(range(1, 40))
    expected = [event for r in recorded[:newest] for event in r.events]
    assert len(expected) > 200
    assert [event.rpc_json() for ledger in read for event in ledger.events] == expected


def test_batches_hold_whole_ledgers_within_their_limits() -> None:
    event = next(e for ledger in read_ledgers(str(DATALAKE / V28)) for e in ledger.events)

    def ledger(sequence: int, count: int) -> LedgerEvents:
        return LedgerEvents(sequence, tuple(event._replace(ledger=sequence, id=ids.event_id(sequence, 1, 0, i))
                                            for i in range(count)))

    ledgers = [ledger(10 + i, count) for i, count in enumerate([3, 0, 4, 0, 0, 0, 0, 1, 9, 2])]
    made = list(batches(ledgers, max_events=5, max_ledgers=4, max_seconds=60))
    assert [(b.first, b.last, len(b.events)) for b in made] == [(10, 12, 7), (13, 16, 0), (17, 18, 10), (19, 19, 2)]
    assert [e.id for b in made for e in b.events] == [e.id for led in ledgers for e in led.events]


@pytest.mark.slow
async def test_the_v28_file_is_stored_event_for_event_with_the_ids_lake_events_prints(
    database_url: str, db: asyncpg.Connection
) -> None:
    printed = subprocess.run([sys.executable, "-m", "flowfi", "lake", "events", str(DATALAKE / V28)],
                             capture_output=True, text=True, timeout=240, check=True).stdout.splitlines()
    first, last = V28_LEDGERS
    with running_devnet() as devnet:
        code, _, refused = _finish(_backfill(devnet, database_url, "--lake", str(DATALAKE / V28), "--from", "1"))
        assert code == 1 and f"has no ledger 1 (the next it holds is {first})" in refused, refused
        assert await db.fetchval("SELECT count(*) FROM indexer_cursor") == 0, "no cursor moved past ledgers unread"
        code, out, err = _finish(_backfill(devnet, database_url, "--lake", str(DATALAKE / V28), "--from", str(first)))
    assert code == 0, err
    assert out.strip().endswith(f"`flowfi index` continues from ledger {last + 1}")
    assert "72,300 events (72,300 dead letters)" in out
    expected = [json.loads(line) for line in printed]
    assert len(expected) == 72_300
    stored = await db.fetch("SELECT id, ledger, tx_hash, contract_id, topic_xdr, value_xdr FROM contract_events "
                            "ORDER BY id")
    assert [tuple(row) for row in stored] == [
        (e["id"], e["ledger"], e["txHash"], e["contractId"], e.get("topic", []), e["value"]) for e in expected]
    # not FlowFi's events: each is kept raw and goes to the dead letters
    assert await db.fetchval("SELECT count(*) FROM dead_letters") == 72_300
    assert await db.fetchval("SELECT count(*) FROM events") == 0
    cursor = await db.fetchrow("SELECT rpc_cursor, last_event_id, last_ledger, events_indexed FROM indexer_cursor")
    assert tuple(cursor) == (ids.end_of_ledger(last), expected[-1]["id"], last, 72_300)
    progress = await db.fetchrow("SELECT source, first_ledger, last_ledger, events_indexed FROM backfill_progress")
    assert tuple(progress) == (str(DATALAKE / V28), first, last, 72_300)


@pytest.mark.slow
async def test_a_backfill_killed_at_random_points_leaves_the_rows_of_an_uninterrupted_run(
    server_url: str, template_database: str, database_url: str, db: asyncpg.Connection
) -> None:
    source = str(DATALAKE / V28)
    first, last = V28_LEDGERS
    with running_devnet() as devnet:
        settings = worker_settings(devnet, database_url, contract_ids=(V28_CONTRACT,))
        done = await Worker(settings, database_url).backfill(source, start=first, end=None)
        assert (done.first, done.last, done.events, done.finished) == (first, last, 72_300, True)
        expected = await _rows(db)
        # the same again: the file ends where the index does (a file's end is known only by reading it)
        again = await Worker(settings, database_url).backfill(source, start=first, end=None)
        assert (again.first, again.events, again.finished) == (last + 1, 0, True)
        onwards = await Worker(settings, database_url).backfill(source, start=last + 1, end=None)  # the next ledger
        assert (onwards.first, onwards.events, onwards.finished) == (last + 1, 0, True)

        async with another_database(server_url, template_database, "flowfi_backfill_killed") as killed_url:
            conn = await asyncpg.connect(killed_url)
            try:
                reached = await _kill_at_random_points(devnet, killed_url, conn)
                assert any(first <= ledger < last for ledger in reached), reached  # killed in the middle
                assert reached == sorted(reached)  # each run continued where the one before stopped
                code, _, err = _finish(_backfill(devnet, killed_url, "--lake", source, "--from", str(first)))
                assert code == 0, err
                assert await _rows(conn) == expected
            finally:
                await conn.close()


async def _kill_at_random_points(devnet: Devnet, database_url: str, conn: asyncpg.Connection) -> list[int]:
    """Run `flowfi backfill` of the v28 file again and again, each killed (SIGKILL) at a random point after a
    random ledger is written; the last ledger written when each died."""
    first, last = V28_LEDGERS
    chance = random.Random(7)
    reached: list[int] = []
    while len(reached) < 6:
        written = await conn.fetchval("SELECT last_ledger FROM backfill_progress") or first - 1
        if written >= last - 2:
            break
        target = min(written + chance.randint(1, 5), last - 1)  # then a random moment later
        process = _backfill(devnet, database_url, "--lake", str(DATALAKE / V28), "--from", str(first), quiet=True)
        async with asyncio.timeout(120):
            while process.poll() is None and (
                    await conn.fetchval("SELECT last_ledger FROM backfill_progress") or 0) < target:
                await asyncio.sleep(0.005)
        await asyncio.sleep(chance.uniform(0, 0.2))
        process.send_signal(signal.SIGKILL)
        process.wait()
        reached.append(await conn.fetchval("SELECT last_ledger FROM backfill_progress") or 0)
    return reached


async def test_a_backfill_hands_over_to_rpc_with_no_gap_and_no_duplicate(
    tmp_path: Path, database_url: str, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    with running_devnet(seed=11, retention=30, traffic_per_ledger=8, build=MODEL_BUILD) as devnet:
        chain = devnet.chain
        history = grow(chain, 100)
        lake_end = write_lake(tmp_path / "lake", chain.passphrase, history[:chain.oldest.sequence + 10])
        assert chain.oldest.sequence <= lake_end  # the lake ends inside RPC's window
        settings = worker_settings(devnet, database_url, start_ledger=None)
        with caplog.at_level(logging.INFO, logger="indexer.worker"):
            done = await Worker(settings, database_url).backfill(str(tmp_path / "lake"), start=1, end=None)
        assert (done.first, done.last, done.finished) == (1, lake_end, True)
        assert f"backfilling ledgers 1-{lake_end}" in caplog.text
        # the cursor says how far behind the chain the index is, and when the chain's newest ledger closed
        behind = await db.fetchrow("SELECT last_ledger, latest_ledger, latest_ledger_closed_at FROM indexer_cursor")
        assert tuple(behind) == (lake_end, chain.latest.sequence,
                                 datetime.fromtimestamp(chain.latest.close_time, UTC))
        history += grow(chain, 5)  # while RPC still keeps the ledger after the lake's last
        assert chain.oldest.sequence <= lake_end + 1
        # the worker, which has no lake, continues from the backfill's cursor through RPC
        await index_until_caught_up(Worker(settings, database_url), devnet)
        await _assert_indexed(db, history, chain.contract_id)
        await assert_streams_match_model(db, chain.contract)


async def test_a_lake_object_the_server_refuses_is_read_again_from_the_ledger_the_backfill_stopped_at(
    tmp_path: Path, database_url: str, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    with running_devnet(seed=6, traffic_per_ledger=8) as devnet:
        history = grow(devnet.chain, 40)
        lake_end = write_lake(tmp_path / "lake", devnet.chain.passphrase, history)
        objects = sorted((tmp_path / "lake").rglob("*.xdr.zst"))
        refused = "/" + objects[len(objects) // 2].relative_to(tmp_path).as_posix()
        files = StaticFiles(directory=tmp_path)
        refusing = True

        async def serve(request: Request) -> Response:
            if refusing and request.url.path == refused:
                return Response(status_code=403)  # not retried by the store's client: the worker retries
            return await files.get_response(request.path_params["path"], request.scope)

        worker = Worker(worker_settings(devnet, database_url, start_ledger=None), database_url, max_backoff=0.2)
        with running_app(Starlette(routes=[Route("/{path:path}", serve)]), lifespan="off") as url, \
                caplog.at_level(logging.INFO, logger="indexer.worker"):
            backfill = asyncio.create_task(worker.backfill(f"{url}/lake", start=1, end=lake_end))
            async with asyncio.timeout(30):
                while caplog.text.count("reading the data lake failed") < 2:
                    await asyncio.sleep(0.02)
            refusing = False
            done = await asyncio.wait_for(backfill, 30)
        assert (done.first, done.last, done.finished) == (1, lake_end, True)
        await _assert_indexed(db, history[:lake_end], devnet.chain.contract_id)


async def _assert_indexed(db: asyncpg.Connection, history: list[LakeLedger], contract_id: str) -> None:
    """The contract's own events of `history` (not its tokens'), each stored once, in order."""
    expected = [(e["id"], e["ledger"], e["txHash"], e.get("topic", []), e["value"])
                for r in history for e in r.events if e["contractId"] == contract_id]
    stored = await db.fetch("SELECT id, ledger, tx_hash, topic_xdr, value_xdr FROM contract_events ORDER BY id")
    assert [tuple(row) for row in stored] == expected
    assert await db.fetchval("SELECT count(*) FROM events") == len(expected)


async def test_a_second_run_continues_after_the_last_ledger_written_and_refuses_a_gap(
    tmp_path: Path, server_url: str, template_database: str, database_url: str, db: asyncpg.Connection
) -> None:
    with running_devnet(seed=5, traffic_per_ledger=8) as devnet:
        lake = str(tmp_path / "lake")
        last = write_lake(Path(lake), devnet.chain.passphrase, grow(devnet.chain, 60))
        settings = worker_settings(devnet, database_url, start_ledger=None)
        part = await Worker(settings, database_url).backfill(lake, start=1, end=30)
        assert (part.first, part.last, part.finished) == (1, 30, True)
        with pytest.raises(IndexerStopped, match="would leave ledgers 31-39 out"):
            await Worker(settings, database_url).backfill(lake, start=40, end=None)
        rest = await Worker(settings, database_url).backfill(lake, start=None, end=None)
        assert (rest.first, rest.last) == (31, last)
        assert part.events > 0 and rest.events > 0
        again = await Worker(settings, database_url).backfill(lake, start=1, end=None)
        assert (again.first, again.last, again.events) == (last + 1, last, 0)

        async with another_database(server_url, template_database, "flowfi_backfill_whole") as whole_url:
            whole = await Worker(settings, whole_url).backfill(lake, start=1, end=None)
            assert whole.events == part.events + rest.events
            conn = await asyncpg.connect(whole_url)
            try:
                assert await snapshot(db) == await snapshot(conn)
            finally:
                await conn.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_what_a_backfill_cannot_do_it_says_in_one_line_and_writes_nothing(
    tmp_path: Path, database_url: str, db: asyncpg.Connection
) -> None:
    with running_devnet() as devnet:
        lake_end = write_lake(tmp_path / "lake", devnet.chain.passphrase, grow(devnet.chain, 8))
        for args, env, words in [
            # the test bucket is testnet's; the local network is not
            (["--lake", str(TESTBUCKET), "--from", "997"], {},
             "holds the ledgers of the network 'Test SDF Network ; September 2015'"),
            (["--lake", str(DATALAKE / V28), "--from", "1"], {"FLOWFI_RPC_URL": f"http://127.0.0.1:{_closed_port()}"},
             "set FLOWFI_RPC_URL"),
            (["--lake", str(TESTBUCKET), "--from", "997", "--to", "5000"],
             {"FLOWFI_NETWORK_PASSPHRASE": "Test SDF Network ; September 2015"}, "ends at ledger 999"),
            (["--from", "1"], {}, "give --lake"),
            (["--lake", str(tmp_path / "lake"), "--from", str(lake_end + 100)], {},
             f"ends at ledger {lake_end}: ledger {lake_end + 100} is not there yet"),
            (["--lake", str(TESTBUCKET), "--from", "999", "--to", "998"],
             {"FLOWFI_NETWORK_PASSPHRASE": "Test SDF Network ; September 2015"}, "--from 999 is after --to 998"),
        ]:
            code, out, err = _finish(_backfill(devnet, database_url, *args, env=env))
            assert code != 0 and out == "", args
            assert len(err.strip().splitlines()) == 1 and words in err, err
            assert "Traceback" not in err
    assert await db.fetchval("SELECT count(*) FROM indexer_cursor") == 0
    assert await db.fetchval("SELECT count(*) FROM backfill_progress") == 0


async def test_a_backfill_refuses_to_write_beside_a_running_worker(database_url: str) -> None:
    with running_devnet(seed=2, traffic_per_ledger=3) as devnet:
        grow(devnet.chain, 5)
        worker = Worker(worker_settings(devnet, database_url), database_url)
        running = asyncio.create_task(worker.run())
        try:
            conn = await asyncpg.connect(database_url)
            try:
                async with asyncio.timeout(20):
                    while not await conn.fetchval("SELECT count(*) FROM indexer_cursor"):
                        await asyncio.sleep(0.02)
            finally:
                await conn.close()
            busy = r"A worker is writing this database \(PostgreSQL session \d+ \(flowfi-worker, "
            with pytest.raises(WriterBusy, match=busy):
                await Worker(worker_settings(devnet, database_url), database_url).backfill(
                    str(DATALAKE / V28), start=None, end=None)
        finally:
            worker.stop()
            await asyncio.wait_for(running, 10)


async def test_a_lake_read_past_the_rpcs_newest_ledger_keeps_the_newest_ledger_and_its_close_time_a_pair(
    tmp_path: Path, database_url: str, db: asyncpg.Connection
) -> None:
    with running_devnet(seed=12, traffic_per_ledger=4, build=MODEL_BUILD) as devnet:
        chain = devnet.chain
        lake_end = write_lake(tmp_path / "lake", chain.passphrase, grow(chain, 30))
        worker = Worker(worker_settings(devnet, database_url, start_ledger=None), database_url)
        asked = worker.rpc.get_latest_ledger

        async def behind_at_first() -> LedgerInfo:
            """An RPC server still catching up when the backfill begins: its newest ledger is behind the lake's."""
            newest = await asked()
            if worker.rpc.get_latest_ledger is behind_at_first:
                worker.rpc.get_latest_ledger = asked  # type: ignore[method-assign]
                return LedgerInfo(5, newest.hash, newest.close_time - 1000)
            return newest

        worker.rpc.get_latest_ledger = behind_at_first  # type: ignore[method-assign]
        done = await worker.backfill(str(tmp_path / "lake"), start=1, end=None)
    assert done.last == lake_end == chain.latest.sequence
    behind = await db.fetchrow("SELECT latest_ledger, latest_ledger_closed_at FROM indexer_cursor")
    assert tuple(behind) == (chain.latest.sequence, datetime.fromtimestamp(chain.latest.close_time, UTC))


async def test_a_stopped_backfill_ends_after_a_whole_batch_and_says_it_did_not_finish(
    database_url: str, db: asyncpg.Connection
) -> None:
    with running_devnet() as devnet:
        worker = Worker(worker_settings(devnet, database_url, contract_ids=(V28_CONTRACT,)), database_url)
        worker.page_written = lambda fetched, written: worker.stop()  # a SIGINT after the first batch
        done = await worker.backfill(str(DATALAKE / V28), start=V28_LEDGERS[0], end=None)
    assert not done.finished
    assert done.first == V28_LEDGERS[0] <= done.last < V28_LEDGERS[1]
    assert await db.fetchval("SELECT last_ledger FROM backfill_progress") == done.last
    assert await db.fetchval("SELECT count(*) FROM contract_events") == done.events
    assert await db.fetchval("SELECT max(ledger) FROM contract_events") == done.last


async def test_ledgers_before_a_workers_index_are_not_put_behind_it(
    tmp_path: Path, database_url: str, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    with running_devnet(seed=4, traffic_per_ledger=6) as devnet:
        history = grow(devnet.chain, 40)
        lake_end = write_lake(tmp_path / "lake", devnet.chain.passphrase, history[:-10])
        settings = worker_settings(devnet, database_url, start_ledger=20)
        await index_until_caught_up(Worker(settings, database_url), devnet)
        began = await db.fetchval("SELECT min(ledger) FROM contract_events")
        stored = await db.fetchval("SELECT count(*) FROM contract_events")
        # from past the lake's end, within the index: nothing to backfill either (not "not there yet")
        beyond_the_lake = await Worker(settings, database_url).backfill(str(tmp_path / "lake"), start=lake_end + 2,
                                                                         end=None)
        assert (beyond_the_lake.first, beyond_the_lake.events) == (devnet.chain.latest.sequence + 1, 0)
        with caplog.at_level(logging.INFO, logger="indexer.worker"):
            done = await Worker(settings, database_url).backfill(str(tmp_path / "lake"), start=1, end=None)
            assert f"--from {began + 1} is ignored" not in caplog.text
            await Worker(settings, database_url).backfill(str(tmp_path / "lake"), start=began + 1, end=None)
    warning = f"the index holds nothing before ledger {began}: ledgers 1-{began - 1} cannot be put behind it"
    assert warning in caplog.text
    assert (f"--from {began + 1} is ignored: the index reaches ledger {done.first - 1} already, and a backfill "
            f"continues after it, from ledger {done.first}") in caplog.text
    assert f"nothing to backfill: the index already reaches ledger {done.first - 1}" in caplog.text
    assert "backfilling" not in caplog.text
    assert (done.first, done.events) == (devnet.chain.latest.sequence + 1, 0)
    assert lake_end < done.first
    assert await db.fetchval("SELECT count(*) FROM contract_events") == stored
