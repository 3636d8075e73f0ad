"""The migrations build exactly the schema that indexer/tables.py defines, and can be undone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from indexer.database import alembic_config, asyncpg_dsn, migrate, sqlalchemy_url
from indexer.ids import event_id
from indexer.tables import metadata


async def schema_differences(url: str) -> list[object]:
    """What alembic's autogenerate would change: tables, columns, types, nullability, indexes, comments."""

    def compare(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    engine = create_async_engine(sqlalchemy_url(url))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(compare)
    finally:
        await engine.dispose()


async def test_the_migrated_schema_is_the_one_the_tables_define(database_url: str) -> None:
    assert await schema_differences(database_url) == []


async def test_the_latest_migration_goes_down_and_up_again(database_url: str) -> None:
    def down_and_up() -> None:
        command.downgrade(alembic_config(database_url), "-1")
        migrate(database_url)

    await asyncio.to_thread(down_and_up)
    assert await schema_differences(database_url) == []


async def test_each_index_has_the_method_the_tables_define(database_url: str) -> None:
    """Autogenerate compares an index's columns, not its method (BRIN or B-tree): this does."""
    wanted = {index.name: index.dialect_options["postgresql"]["using"] or "btree"
              for table in metadata.tables.values() for index in table.indexes}
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT i.relname AS name, am.amname AS method FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "JOIN pg_am am ON am.oid = i.relam WHERE i.relname = ANY($1::text[])", list(wanted))
    finally:
        await conn.close()
    assert {row["name"]: row["method"] for row in rows} == wanted
    assert wanted["ix_events_ledger"] == "brin"


async def test_the_index_ledger_time_is_filled_for_cursors_the_migration_finds(database_url: str) -> None:
    """0011: a caught-up cursor's index time is the chain's newest close time; a cursor behind gets its
    newest event's (of its contracts, a ledger after its own too: a page may end within it, a cursor moved
    back keeps the state it had), and none without one."""
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0010")
    t = [datetime(2026, 3, 1, 12, minute, tzinfo=UTC) for minute in range(4)]
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.executemany(
            "INSERT INTO indexer_cursor (contract_ids, rpc_cursor, last_ledger, latest_ledger, "
            "latest_ledger_closed_at) VALUES ($1, '', $2, $3, $4)",
            [("CA", 50, 50, t[3]), ("CB", 20, 50, t[3]), ("CC", 20, 50, t[3])])
        await conn.executemany(
            "INSERT INTO contract_events (id, ledger, ledger_closed_at, contract_id, tx_hash, topic_xdr, value_xdr) "
            "VALUES ($1, $2, $3, $4, '', '{}', '')",
            [(event_id(10, 1, 0, 0), 10, t[0], "CB"), (event_id(20, 1, 0, 0), 20, t[1], "CB"),
             (event_id(30, 1, 0, 0), 30, t[2], "CB"), (event_id(40, 1, 0, 0), 40, t[2], "CA")])
        await asyncio.to_thread(migrate, database_url)
        rows = await conn.fetch("SELECT contract_ids, last_ledger_closed_at FROM indexer_cursor ORDER BY 1")
    finally:
        await conn.close()
    assert [tuple(row) for row in rows] == [("CA", t[3]), ("CB", t[2]), ("CC", None)]
