"""Fixtures: a real PostgreSQL server (DATABASE_URL's, else an embedded one per test process), a freshly
migrated database per test (cloned from a migrated template), and the test data files.

When the session ends, every embedded server a test started is stopped, and the suite fails if one of
them is still running."""

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

from indexer import embedded
from indexer.database import asyncpg_dsn, migrate
from tests.servers import leftover_servers

DATA = Path(__file__).parent / "data"


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The PostgreSQL server the tests run against: DATABASE_URL's, else an embedded one of this process."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    pgdata = tmp_path_factory.mktemp("pg") / "data"
    yield embedded.start(pgdata)
    embedded.release(pgdata)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files with long runs (marked slow) first, so that a parallel run does not end waiting on one
    of them; each file's own order is kept."""
    long_runs = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in long_runs)


@pytest.hookimpl(trylast=True)  # after pytest-xdist has shut its workers down
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the embedded servers this process started, then fail the suite if any server started under
    this run's temporary folder still runs (a test that leaked one)."""
    embedded.release_all()
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None or getattr(session.config, "workerinput", None) is not None:
        return  # an xdist worker: the controller checks the whole run once its workers are gone
    left = leftover_servers(factory.getbasetemp())
    if left:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "PostgreSQL servers left running by the tests: " + "; ".join(left)
        if reporter is not None:
            reporter.write_line(message, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
