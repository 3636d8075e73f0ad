"""The SSE servers under test, each in its own process so that its memory can be read alone.

    python -m bench.servers flowfi DATABASE_URL CLIENT_BUFFER [PROCESSES]
    python -m bench.servers baseline DATABASE_URL
    python -m bench.servers served DATABASE_URL
    python -m bench.servers undefended DATABASE_URL

`flowfi` is this project's API (`api.app.create_app`, served by its `Server` on uvloop, as `flowfi serve`
runs it), with the per-address limits lifted for the benchmark's clients; with PROCESSES, in that many
processes on one port, as `flowfi serve --processes` runs it. `baseline` is the
minimal sse-starlette server one would write first: an asyncio.Queue per client, fed by a task that
LISTENs on the same channel and reads the same rows, each event serialized once (the same payload
JSON) and yielded to each client as a `ServerSentEvent`. `served` is the API exactly as `flowfi serve`
runs it (default settings, uvloop, its log on stderr); `undefended` the same app under plain
uvicorn (h11, asyncio's own accept loop), without the connection gate. Each prints one JSON line (url,
pid) when it accepts connections, and stops when its stdin closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn

from bench import raise_open_files, wait_for_stdin_close
from flowfi.settings import Settings
from indexer.database import asyncpg_dsn
from indexer.tables import EVENTS_CHANNEL

UVICORN_OPTIONS: dict[str, Any] = {"http": "httptools", "loop": "uvloop", "backlog": 4096,
                                   "log_level": "warning", "access_log": False, "timeout_graceful_shutdown": 2}


def flowfi_settings(database_url: str, client_buffer: int) -> Settings:
    # Every benchmark client comes from 127.0.0.1: lift the per-address limits.
    # A fixed /v1 token secret: without one the app warns that its tokens die with the process.
    return Settings(database_url=database_url, client_buffer=client_buffer, v1_jwt_secret="bench-" + "0" * 32,
                    max_connections=50_000, max_connections_per_ip=50_000, max_sockets_per_ip=100_000)


def flowfi_app(database_url: str, client_buffer: int) -> tuple[Any, type[uvicorn.Server]]:
    from api.app import Server, create_app

    return create_app(flowfi_settings(database_url, client_buffer), database_url), Server


def baseline_app(database_url: str) -> tuple[Any, type[uvicorn.Server]]:
    import asyncpg
    from sse_starlette import EventSourceResponse, ServerSentEvent
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route

    from api.payloads import EVENT_COLUMNS, event_payload

    queues: set[asyncio.Queue] = set()

    async def feed() -> None:
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        rung = asyncio.Event()
        await conn.add_listener(EVENTS_CHANNEL, lambda *_: rung.set())
        last = await conn.fetchval("SELECT coalesce(max(id), '') FROM events")
        while True:
            await rung.wait()
            rung.clear()
            while rows := await conn.fetch(
                f"SELECT {EVENT_COLUMNS} FROM events AS e WHERE id > $1 ORDER BY id LIMIT 1000", last
            ):
                for row in rows:
                    item = (row["id"], row["kind"], json.dumps(event_payload(row), separators=(",", ":")))
                    for queue in queues:
                        queue.put_nowait(item)
                last = rows[-1]["id"]

    async def subscribe(request: Request) -> EventSourceResponse:
        queue: asyncio.Queue = asyncio.Queue()
        queues.add(queue)

        async def events() -> AsyncIterator[ServerSentEvent]:
            try:
                while True:
                    event_id, kind, data = await queue.get()
                    yield ServerSentEvent(data=data, id=event_id, event=kind)
            finally:
                queues.discard(queue)

        return EventSourceResponse(events())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(feed())
        yield
        task.cancel()

    return Starlette(routes=[Route("/events/subscribe", subscribe)], lifespan=lifespan), uvicorn.Server


async def several(database_url: str, client_buffer: int, processes: int) -> None:
    """The API as `flowfi serve --processes N` runs it; the line printed names the parent's pid, then each
    API process's."""
    from flowfi.processes import ApiProcesses, listening_sockets

    sockets = listening_sockets("127.0.0.1", 0, processes)
    api = ApiProcesses(flowfi_settings(database_url, client_buffer), database_url, sockets, log_level=logging.WARNING)
    api.start()
    try:
        url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
        await asyncio.to_thread(wait_until_ready, url)
        print(json.dumps({"url": url, "pid": os.getpid(), "pids": api.pids}), flush=True)
        await wait_for_stdin_close()
    finally:
        await asyncio.to_thread(api.stop)


def wait_until_ready(url: str) -> None:
    """Return once the API answers (until every process has started, the others' connections wait queued)."""
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)


async def main(kind: str, database_url: str, client_buffer: int, processes: int = 1) -> None:
    raise_open_files()
    if kind == "flowfi" and processes > 1:
        await several(database_url, client_buffer, processes)
        return
    if kind == "flowfi":  # as `flowfi serve` runs it
        from api.app import SERVER_OPTIONS

        app, server_class = flowfi_app(database_url, client_buffer)
        options = {**UVICORN_OPTIONS, **SERVER_OPTIONS, "log_level": "warning", "access_log": False}
    elif kind in ("served", "undefended"):
        from api.app import SERVER_OPTIONS, Server, create_app
        from flowfi.logs import setup_logging
        from flowfi.settings import Settings

        setup_logging()
        app = create_app(Settings(database_url=database_url), database_url)
        server_class = Server if kind == "served" else uvicorn.Server
        options = {**SERVER_OPTIONS, "http": "h11"}
    else:
        app, server_class = baseline_app(database_url)
        options = UVICORN_OPTIONS
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on connections whose socket says TCP; without it
    # every response waits ~40 ms for the client's delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = server_class(uvicorn.Config(app, **options))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    print(json.dumps({"url": f"http://127.0.0.1:{sock.getsockname()[1]}", "pid": os.getpid()}), flush=True)
    await wait_for_stdin_close()
    server.should_exit = True
    await serving


if __name__ == "__main__":
    import uvloop

    arguments = (sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1000,
                 int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    if sys.argv[1] == "undefended":
        asyncio.run(main(*arguments))  # plain uvicorn on asyncio's own accept loop
    else:
        uvloop.run(main(*arguments))  # as `flowfi serve` runs (api.app.run); the baseline at its fastest
