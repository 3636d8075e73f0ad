"""Serving an ASGI app over real HTTP on loopback, for tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, Literal

import httpx
import uvicorn

from indexer.rpc import tls_context


@contextlib.contextmanager
def running_app(
    app: Any,
    *,
    lifespan: Literal["on", "off"] = "on",
    startup_timeout: float = 30.0,
    server_class: type[uvicorn.Server] = uvicorn.Server,
    port: int = 0,
) -> Iterator[str]:
    """Run `app` with uvicorn on 127.0.0.1 at an ephemeral port, in a background thread with its own
    event loop, lifespan included. Yields the base URL ("http://127.0.0.1:PORT"); stops the server on
    exit and re-raises whatever made it fail."""
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on connections whose socket says TCP; without it
    # every response waits ~40 ms for the client's delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))  # 0: any free port
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        app, lifespan=lifespan, ws="none", log_level="warning", timeout_graceful_shutdown=2
    )
    server = server_class(config)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # surfaced to the caller below
            errors.append(exc)

    thread = threading.Thread(target=run, name="app-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if errors or not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(timeout=5)
            sock.close()
            raise RuntimeError(f"the app did not start: {errors[0] if errors else 'timeout or startup failure'}")
        time.sleep(0.005)
    try:
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        if errors:
            raise errors[0]


def http_client(**options: Any) -> httpx.AsyncClient:
    """An HTTP client for the servers the tests run, with the TLS settings the process shares (making
    them anew for each client would cost more CPU than most requests)."""
    return httpx.AsyncClient(verify=tls_context(), **options)
