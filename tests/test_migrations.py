"""The migrations build exactly the schema that indexer/tables.py defines, and can be undone."""

from __future__ import annotations

import asyncio

import asyncpg
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from indexer.database import alembic_config, asyncpg_dsn, migrate, sqlalchemy_url
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
