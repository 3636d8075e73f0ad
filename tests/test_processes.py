"""`flowfi serve --processes N`: N API processes on one port, each delivering every event to its own
clients; one that dies is started again, and SIGTERM stops them all."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from devnet import running_devnet
from flowfi.processes import ApiProcesses, listening_sockets
from flowfi.settings import Settings
from indexer.database import asyncpg_dsn
from tests.commands import FLOWFI, environment, free_port
from tests.live import add_traffic, all_event_ids, index_now, read_sse, subscription, wait_for

pytestmark = pytest.mark.slow

CLIENTS = 16  # SO_REUSEPORT hashes each connection: all 16 on one of two processes has odds of 2 in 65,536


def api_processes(parent: int) -> list[int]:
    """The parent's children that run the API (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return sorted(int(pid) for pid in children
                  if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes())


def connections_held(pid: int, port: int) -> int:
    """Established TCP connections on local `port` among `pid`'s open files."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    held = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, state, inode = int(fields[1].split(":")[1], 16), fields[3], fields[9]
        held += local_port == port and state == "01" and inode in inodes
    return held


def wait_healthy(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer /health within {timeout} s")


@contextlib.contextmanager
def serving(tmp_path: Path, database_url: str, port: int, processes: int) -> Iterator[subprocess.Popen[bytes]]:
    """`flowfi serve --processes` once it answers; its log goes to tmp_path/serve.log."""
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [*FLOWFI, "serve", "--processes", str(processes), "--port", str(port), "--database-url", database_url],
            env={**environment(tmp_path), "FLOWFI_MAX_CONNECTIONS_PER_IP": "1000"},
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(f"http://127.0.0.1:{port}")
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def test_two_processes_share_the_port_and_each_delivers_to_its_own_clients(tmp_path: Path,
                                                                                database_url: str) -> None:
    port = free_port()
    with running_devnet() as devnet, serving(tmp_path, database_url, port, processes=2) as server:
        add_traffic(devnet, events=30)
        pids = api_processes(server.pid)
        assert len(pids) == 2
        async with contextlib.AsyncExitStack() as stack:
            streams = [await stack.enter_async_context(subscription(f"http://127.0.0.1:{port}", "all=true"))
                       for _ in range(CLIENTS)]
            assert all(response.status_code == 200 for response, _ in streams)
            held = [connections_held(pid, port) for pid in pids]
            assert sum(held) == CLIENTS and min(held) > 0, f"connections per process: {held}"
            readers = [asyncio.create_task(read_sse(response, received)) for response, received in streams]
            await index_now(devnet, database_url)
            conn = await asyncpg.connect(asyncpg_dsn(database_url))
            try:
                expected = await all_event_ids(conn)
            finally:
                await conn.close()
            assert len(expected) >= 30
            await wait_for(lambda: all(len(received.ids) >= len(expected) for _, received in streams))
            for reader in readers:
                reader.cancel()
            assert all(received.ids == expected for _, received in streams)


def test_a_process_that_dies_is_replaced_and_sigterm_stops_them_all(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    with serving(tmp_path, database_url, port, processes=2) as server:
        first, second = api_processes(server.pid)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 20
        replaced = api_processes(server.pid)
        while time.monotonic() < deadline and (len(replaced) < 2 or first in replaced):
            time.sleep(0.1)
            replaced = api_processes(server.pid)
        assert len(replaced) == 2 and first not in replaced and second in replaced, (first, second, replaced)
        for _ in range(20):  # every new connection is answered, whichever process it reaches (the new one
            # once it has started: meanwhile its connections wait in its socket's queue)
            assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=30.0).status_code == 200
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        out = (tmp_path / "serve.log").read_text()
        assert server.returncode == 0, out
        assert "Traceback" not in out
        assert "starting another on its socket" in out
        for pid in replaced:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_the_processes_stop_when_their_parent_is_killed(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    with serving(tmp_path, database_url, port, processes=2) as server:
        children = api_processes(server.pid)
        server.kill()
        server.wait()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in children):
            time.sleep(0.1)
        assert not any(Path(f"/proc/{pid}").exists() for pid in children), "an API process outlived its parent"
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=2.0)


def test_processes_that_cannot_start_stop_the_server(database_url: str) -> None:
    """A first process that fails to start (here: its database is gone) ends the server with an error,
    rather than being started again forever."""
    missing = urlsplit(database_url)._replace(path="/flowfi_no_such_database").geturl()
    processes = ApiProcesses(Settings(database_url=missing), missing, listening_sockets("127.0.0.1", 0, 2))
    give_up = threading.Timer(60, lambda: setattr(processes, "stopping", True))
    give_up.start()
    try:
        processes.start()
        assert processes.watch() == 1
    finally:
        give_up.cancel()
        processes.stop()
