"""A hostile client: how many connections one client holds before the API stops answering others.

The API runs in its own process, as `flowfi serve` runs it, with an open-file limit of `open_files`.
One client (from 127.0.0.3) opens connections that each send part of a request head and nothing
more; after every `step` of them another client (from 127.0.0.2) asks GET /health and must be
answered within 2 s. The figure is the number of connections the hostile client holds (still open
from its side) when the other is first refused, or after `attempts` connections if it never is. The
baseline is the same application under plain uvicorn (h11, asyncio's accept loop), without the
connection gate: there the hostile client holds about the open-file limit, then others wait, and
asyncio logs every failed accept. The size of each server's log during the attack is reported too.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
import time
from typing import Any
from urllib.parse import urlsplit

from bench import Postgres, child

HOSTILE, OTHER = "127.0.0.3", "127.0.0.2"
UNFINISHED = b"GET /health HTTP/1.1\r\nHost: flowfi\r\nUser-Agent: slow"
PROBE_TIMEOUT = 2.0


def _connect(port: int, source: str, timeout: float) -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(timeout)
    try:
        sock.connect(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


def _answered(port: int) -> bool:
    try:
        with _connect(port, OTHER, PROBE_TIMEOUT) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: flowfi\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def _still_open(socks: list[socket.socket]) -> int:
    time.sleep(0.3)
    alive = 0
    for sock in socks:
        sock.setblocking(False)
        try:
            alive += sock.recv(1, socket.MSG_PEEK) != b""  # an answer, not a close
        except BlockingIOError:
            alive += 1  # nothing to read: open
        except OSError:
            pass  # reset
    return alive


def attack(port: int, attempts: int, step: int) -> dict[str, Any]:
    hostile: list[socket.socket] = []
    refused_after: int | None = None
    try:
        while len(hostile) < attempts and refused_after is None:
            for _ in range(step):
                with contextlib.suppress(OSError):
                    sock = _connect(port, HOSTILE, 1.0)
                    hostile.append(sock)
                    with contextlib.suppress(OSError):
                        sock.sendall(UNFINISHED)
            if not _answered(port):
                refused_after = len(hostile)
        return {"held": _still_open(hostile), "attempted": len(hostile), "others_refused": refused_after is not None}
    finally:
        for sock in hostile:
            sock.close()


async def _run(kind: str, url: str, open_files: int, attempts: int, step: int) -> dict[str, Any]:
    with tempfile.TemporaryFile() as log, child("bench.servers", kind, url, open_files=open_files,
                                                  stderr=log) as (_, server):
        port = urlsplit(server["url"]).port
        assert port is not None
        started = time.monotonic()
        result = await asyncio.to_thread(attack, port, attempts, step)
        result["seconds"] = round(time.monotonic() - started, 1)
        result["log_bytes"] = log.seek(0, 2)  # what the server wrote during the attack
    return result


async def measure(postgres: Postgres, open_files: int = 1024, step: int = 32) -> dict[str, Any]:
    from api.settings import ApiSettings

    url = await postgres.fresh_database()
    attempts = 2 * open_files
    try:
        served = await _run("served", url, open_files, attempts, step)
        baseline = await _run("undefended", url, open_files, attempts, step)
    finally:
        await postgres.drop(url)
    cap = ApiSettings.model_fields["max_sockets_per_ip"].default
    return {
        "open_files": open_files, "per_address_cap": cap, "attempts": attempts,
        "served": served, "baseline": baseline,
        "met": served["held"] <= cap and not served["others_refused"],
    }
