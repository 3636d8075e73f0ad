"""Where the database is, and getting its schema up to date.

With a database URL, that server is used as it is (run `flowfi migrate` after upgrading). Without one,
an embedded PostgreSQL server runs from the user's data folder (indexer/embedded.py); it is migrated on
every start, and `flowfi dev` may empty it (`empty`) when it holds the index of another chain.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError
from alembic.util import CommandError

import migrations
from indexer import embedded

log = logging.getLogger(__name__)


def embedded_folder(data_dir: Path) -> Path:
    """Where the embedded server of the data folder `data_dir` keeps its files."""
    return data_dir / "postgres"


def database_url(configured: str | None, data_dir: Path, *, migrated: bool = True) -> str:
    """The PostgreSQL URL to use, as asyncpg takes it: the configured one, or that of the embedded server
    in `data_dir` (started, and with `migrated` migrated, here)."""
    if configured is not None:
        return asyncpg_dsn(configured)
    url = embedded.start(embedded_folder(data_dir))
    if migrated:
        migrate(url)
    return url


async def empty(url: str) -> None:
    """Drop the schema (every table, with its rows) of the database at `url` and create it again, empty:
    a new index. Waits at most ten seconds for the tables' locks."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute("SET lock_timeout = '10s'")
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()
    await asyncio.to_thread(migrate, url)


class DatabaseProblem(Exception):
    """The database cannot be used as it is; the message says why and what to do, in one line."""


async def check(url: str, *, schema: bool = True) -> None:
    """Raise DatabaseProblem unless the server at `url` accepts a connection and (with `schema`) holds
    the schema this version of the indexer writes."""
    try:
        conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    except asyncpg.InvalidCatalogNameError as exc:
        raise DatabaseProblem(
            f"cannot connect to the database at {redacted(url)} ({exc}): create it (createdb, or CREATE DATABASE "
            "in psql), then run `flowfi migrate`; or set DATABASE_URL (--database-url) to one that exists"
        ) from exc
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise DatabaseProblem(
            f"cannot connect to the database at {redacted(url)} ({reason}); is the server running, and is "
            "DATABASE_URL (--database-url) right?"
        ) from exc
    try:
        if not schema:
            return
        revision = await _revision(conn)
    finally:
        await conn.close()
    scripts = ScriptDirectory.from_config(alembic_config(url))
    head = scripts.get_current_head()
    if revision is not None and revision not in {script.revision for script in scripts.walk_revisions()}:
        raise DatabaseProblem(_unknown_revision(url, revision, head))
    if revision != head:
        found = f"is at revision {revision}" if revision else "has no flowfi schema"
        raise DatabaseProblem(f"the database at {redacted(url)} {found}, this version needs {head}: "
                              "run `flowfi migrate`")


async def schema_revision(url: str) -> str | None:
    """The migration the database at `url` is at, None where it holds no flowfi schema."""
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        return await _revision(conn)
    finally:
        await conn.close()


async def _revision(conn: asyncpg.Connection) -> str | None:
    try:
        revision: str | None = await conn.fetchval("SELECT version_num FROM alembic_version")
    except asyncpg.UndefinedTableError:
        return None
    return revision


def redacted(url: str) -> str:
    """`url` without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    credentials, at, location = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{location}"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Bring the schema up to `revision`. Synchronous: call it before the event loop starts, or
    through asyncio.to_thread. DatabaseProblem for a schema a newer flowfi migrated."""
    config = alembic_config(url)
    try:
        command.upgrade(config, revision)
    except CommandError as exc:
        if not isinstance(exc.__cause__, ResolutionError):
            raise
        head = ScriptDirectory.from_config(config).get_current_head()
        raise DatabaseProblem(_unknown_revision(url, str(exc.__cause__.argument), head)) from exc


def _unknown_revision(url: str, revision: str, head: str | None) -> str:
    return (f"the database at {redacted(url)} is at revision {revision}, which this flowfi does not know (its newest "
            f"is {head}): a newer flowfi migrated it; run that one, or give this one a database of its own")


def sqlalchemy_url(url: str) -> str:
    """The same URL for SQLAlchemy's asyncpg dialect."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r:.40}")
    return f"postgresql+asyncpg://{rest}"


async def connect(url: str, application_name: str) -> asyncpg.Connection:
    """A connection that names itself in pg_stat_activity (flowfi-worker, flowfi-listener, ...)."""
    return await asyncpg.connect(asyncpg_dsn(url), server_settings={"application_name": application_name})


# The send buffer asked for on the writer's Unix-domain socket (the kernel caps it at net.core.wmem_max). A
# page's COPY data, some 10 MB, otherwise leaves in a few hundred KB at a time, and each time the event
# loop must wake and take the GIL from the thread rendering the next page while PostgreSQL waits (bench
# ingest: the COPY statements 20% shorter, 8% more events a second).
WRITER_SEND_BUFFER = 4 * 2**20


def widen_send_buffer(conn: asyncpg.Connection, size: int = WRITER_SEND_BUFFER) -> None:
    """Ask for a send buffer of `size` bytes on `conn`'s socket, where it is a Unix-domain one (see
    widen_socket_send_buffer)."""
    transport = getattr(conn, "_transport", None)  # asyncpg keeps its transport private
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        widen_socket_send_buffer(sock, size)


def widen_socket_send_buffer(sock: socket.socket, size: int) -> None:
    """A Unix-domain socket's send buffer raised to `size` bytes (as far as the kernel allows); a TCP one is
    left alone, since setting its size turns off the kernel's autotuning, which grows it as far."""
    if sock.family == socket.AF_UNIX and sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) < size:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


def asyncpg_dsn(url: str) -> str:
    """asyncpg takes postgresql:// URLs; accept SQLAlchemy-style ones (postgresql+asyncpg://) too."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme.startswith("postgres") else url
