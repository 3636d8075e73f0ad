"""Fixtures: a real PostgreSQL server (DATABASE_URL's, else an embedded one), a freshly migrated
database per test (cloned from a migrated template), and the test data files."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from indexer.database import asyncpg_dsn, migrate, start_embedded

DATA = Path(__file__).parent / "data"


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The PostgreSQL server the tests run against."""
    return os.environ.get("DATABASE_URL") or start_embedded(tmp_path_factory.mktemp("pg") / "data")


async def _admin(server_url: str, sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(with_database(server_url, "postgres")))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def template_database(server_url: str) -> AsyncIterator[str]:
    name = f"flowfi_template_{os.getpid()}"
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}"')
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    import asyncio

    await asyncio.to_thread(migrate, with_database(server_url, name))
    yield name
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def database_url(server_url: str, template_database: str) -> AsyncIterator[str]:
    """A new, migrated, empty database for one test."""
    name = f"flowfi_test_{uuid.uuid4().hex[:12]}"
    await _admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    yield with_database(server_url, name)
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    yield conn
    await conn.close()


@pytest.fixture(scope="session")
def vectors() -> list[dict[str, Any]]:
    return list(json.loads((DATA / "flowfi_events.json").read_text())["vectors"])


@pytest.fixture(scope="session")
def rpc_examples() -> dict[str, Any]:
    return dict(json.loads((DATA / "rpc_getEvents_examples.json").read_text()))


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("FLOWFI_"):
            monkeypatch.delenv(key)
    yield
