"""Decoding stored raw events again: an older indexer's dead letters become typed events, the streams
they touch are rebuilt, and a second run changes nothing."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from devnet import Traffic, running_devnet
from indexer import decode as decoder
from indexer import storage
from indexer.bootstrap import verify
from indexer.events import StreamToppedUp, TokensWithdrawn
from indexer.redecode import redecode
from indexer.rpc import RpcClient
from indexer.worker import Worker
from tests.indexing import bootstrap_once, index_until_caught_up, snapshot, worker_settings
from tests.lake_writer import grow


async def test_an_older_indexers_dead_letters_become_the_rows_of_todays(
    database_url: str, db: asyncpg.Connection, server_url: str, template_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import _admin

    with running_devnet(seed=12) as devnet:
        devnet.chain.generate_history(2000, traffic=Traffic(seed=12, accounts=10), tx_per_ledger=15)
        contract_ids = (devnet.chain.contract_id,)
        # today's indexer, for reference
        await index_until_caught_up(Worker(worker_settings(devnet, database_url), database_url), devnet)
        expected = await snapshot(db)

        # an indexer that did not know top-ups and withdrawals yet
        name = "flowfi_older_indexer"
        older_url = await _fresh_database(server_url, template_database, name)
        with monkeypatch.context() as older:
            for kind in (StreamToppedUp, TokensWithdrawn):
                older.delitem(decoder.BY_SYMBOLS, kind.symbols)
            await index_until_caught_up(Worker(worker_settings(devnet, older_url), older_url), devnet)
    conn = await asyncpg.connect(older_url)
    try:
        before = await snapshot(conn)
        assert len(before["dead_letters"]) > 100
        assert before["streams"] != expected["streams"]
        done = await redecode(conn, contract_ids)
        assert done.events == len(expected["contract_events"])
        assert done.typed_now - done.typed_before == len(before["dead_letters"])
        after = await snapshot(conn)
        assert after == expected
        again = await redecode(conn, contract_ids)
        assert again.typed_before == again.typed_now
        assert await snapshot(conn) == expected
    finally:
        await conn.close()
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_redecode_from_a_ledger_rebuilds_the_streams_it_touches(
    database_url: str, db: asyncpg.Connection
) -> None:
    with running_devnet(seed=13) as devnet:
        devnet.chain.generate_history(800, traffic=Traffic(seed=13, accounts=6), tx_per_ledger=10)
        await index_until_caught_up(Worker(worker_settings(devnet, database_url), database_url), devnet)
        expected = await snapshot(db)
        middle = devnet.chain.latest.sequence // 2
        touched = {int(r["stream_id"]) for r in await db.fetch(
            "SELECT DISTINCT stream_id FROM events WHERE ledger >= $1 AND stream_id IS NOT NULL", middle)}
        await db.execute("UPDATE streams SET withdrawn = 0, status = 'active'")  # a state gone wrong
        corrupted = {int(r["stream_id"]): tuple(r) for r in await db.fetch("SELECT * FROM streams")}
        done = await redecode(db, (devnet.chain.contract_id,), from_ledger=middle)
        assert 0 < done.events < len(expected["contract_events"])
        assert done.streams_rebuilt == len(touched) > 0
        good = {int(row[1]): row for row in expected["streams"]}
        for row in (await snapshot(db))["streams"]:
            stream_id = int(row[1])
            assert row == (good[stream_id] if stream_id in touched else corrupted[stream_id]), stream_id


async def test_redecode_of_a_bootstrapped_index_keeps_the_configuration_read_from_storage(
    database_url: str, db: asyncpg.Connection
) -> None:
    """The admin and the guardian came from the contract's storage, and no event since names them: a
    rebuild of the configuration from the events keeps them."""
    with running_devnet(seed=23, traffic_per_ledger=4) as devnet:
        chain = devnet.chain
        grow(chain, 30)
        async with RpcClient(devnet.url) as rpc:
            await bootstrap_once(rpc, database_url, chain.contract_id)
            config = chain.contract.config
            assert config is not None
            chain.execute("update_fee_config", {"admin": config.admin, "treasury": config.admin, "fee_rate_bps": 7})
            await index_until_caught_up(Worker(worker_settings(devnet, database_url, start_ledger=None),
                                               database_url), devnet)
            before = await db.fetchrow("SELECT * FROM protocol_config")
            assert before["admin"] == config.admin and before["fee_rate_bps"] == 7
            done = await redecode(db, (chain.contract_id,))
            assert done.contracts_reconfigured == [chain.contract_id]
            assert await db.fetchrow("SELECT * FROM protocol_config") == before
            _, differences = await verify(rpc, db, (chain.contract_id,))
        assert differences == []


async def test_redecode_does_not_run_beside_a_writing_worker(database_url: str, db: asyncpg.Connection) -> None:
    from indexer.store import WRITER_LOCK_KEY, WriterBusy

    contract_ids = ("CCR2RRS64MGIDMQUAWN3JOPTLWOJVDNN7WGCHNGZCVNGYBUXRV5QHFIG",)
    holder = await asyncpg.connect(database_url, server_settings={"application_name": "a notebook"})
    try:
        assert await holder.fetchval("SELECT pg_try_advisory_lock($1)", WRITER_LOCK_KEY)
        with pytest.raises(WriterBusy) as busy:
            await redecode(db, contract_ids)
        pid, role = await holder.fetchval("SELECT pg_backend_pid()"), await holder.fetchval("SELECT current_user")
        where = await holder.fetchval("SELECT coalesce(host(inet_client_addr()), 'the local socket')")
        assert str(busy.value) == (f"A worker is writing this database (PostgreSQL session {pid} (a notebook, role "
                                   f"{role}, from {where}) holds the writer lock): stop it first, then redecode, then "
                                   "start it again")
    finally:
        await holder.close()


async def test_redecode_with_storage_reads_again_the_schedules_storage_could_not_give(
    database_url: str, db: asyncpg.Connection, server_url: str, template_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An indexer that could not read odd streams' entries (a layout it did not know) indexed them from their
    events; once it can, `redecode --storage` makes the index what one that always could would have made."""
    from tests.conftest import _admin

    with running_devnet(seed=6) as devnet:
        devnet.chain.generate_history(800, traffic=Traffic(seed=6), tx_per_ledger=10)
        contract_ids = (devnet.chain.contract_id,)
        await index_until_caught_up(Worker(worker_settings(devnet, database_url), database_url), devnet)
        expected = await snapshot(db)

        name = "flowfi_unreadable_entries"
        older_url = await _fresh_database(server_url, template_database, name)
        with monkeypatch.context() as older:
            older.setattr(storage, "_stored_stream", _unreadable_odd_streams(storage._stored_stream))
            await index_until_caught_up(Worker(worker_settings(devnet, older_url), older_url), devnet)
        older_db = await asyncpg.connect(older_url)
        try:
            unavailable = await older_db.fetchval(
                "SELECT count(*) FROM streams WHERE terms_source = 'unavailable' AND stream_id % 2 = 1")
            assert unavailable > 3 and await snapshot(older_db) != expected

            await redecode(older_db, contract_ids)  # without storage: the schedules stay as they were
            assert await older_db.fetchval(
                "SELECT count(*) FROM streams WHERE terms_source = 'unavailable' AND stream_id % 2 = 1") == unavailable

            async with RpcClient(devnet.url) as rpc:
                done = await redecode(older_db, contract_ids, rpc=rpc)
            assert done.schedules_read > 0
            assert await snapshot(older_db) == expected
        finally:
            await older_db.close()
            await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _fresh_database(server_url: str, template_database: str, name: str) -> str:
    """A second migrated, empty database on the test server, for an index made another way; its URL."""
    from tests.conftest import _admin, with_database

    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await _admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    return with_database(server_url, name)


def _unreadable_odd_streams(read: Any) -> Any:
    def stored_stream(stream_id: int, fields: Any, live_until_ledger: int | None) -> Any:
        if stream_id % 2:
            raise storage.StorageError("a layout this indexer does not know")
        return read(stream_id, fields, live_until_ledger)
    return stored_stream
