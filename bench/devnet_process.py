"""The local network in its own process, with pre-generated history, for the benchmarks.

    python -m bench.devnet_process EVENTS [SEED]

Generates EVENTS events of random valid traffic, serves Stellar RPC on a loopback port, prints one JSON
line (url, passphrase, contract id, event count, seconds spent generating) and serves until its stdin
closes. No ledger closes after the history: each JSON-RPC request always has the same answer, which is
computed once and then sent again as recorded (see `RecordedAnswers`).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from typing import Any

import orjson
import uvicorn

from bench import wait_for_stdin_close
from devnet import Devnet, Traffic

Asgi = Any


class RecordedAnswers:
    """JSON-RPC at "/" over `app`, each result computed once per (method, params) and sent again as
    recorded. The first run of a client costs what the local network costs to compute its answers (on
    the same cores as the client); a second run costs what a real RPC server on another machine costs
    its client: the bytes on the wire."""

    def __init__(self, app: Asgi) -> None:
        self.app = app
        self.results: dict[bytes, bytes] = {}

    async def __call__(self, scope: dict[str, Any], receive: Asgi, send: Asgi) -> None:
        if scope["type"] != "http" or scope["path"] != "/" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":  # the client gave up (a worker stopped mid-request)
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = orjson.loads(body)
        key = orjson.dumps([request.get("method"), request.get("params")], option=orjson.OPT_SORT_KEYS)
        result = self.results.get(key)
        if result is None:
            status, answer = await self._computed(scope, body)
            if status != 200 or "result" not in answer:
                await _send_json(send, status, orjson.dumps(answer))
                return
            result = self.results[key] = orjson.dumps(answer["result"])
        answer = b'{"jsonrpc":"2.0","id":%s,"result":%s}' % (orjson.dumps(request.get("id")), result)
        await _send_json(send, 200, answer)

    async def _computed(self, scope: dict[str, Any], body: bytes) -> tuple[int, Any]:
        """The wrapped app's status and JSON answer to `body`."""
        parts: list[bytes] = []
        status = 500
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        return status, orjson.loads(b"".join(parts))


async def _send_json(send: Asgi, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def main(events: int, seed: int) -> None:
    devnet = Devnet(seed=seed)
    started = time.perf_counter()
    devnet.chain.generate_history(events, traffic=Traffic(seed=seed), tx_per_ledger=50)
    generated = time.perf_counter() - started
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on connections whose socket says TCP; without it
    # every response waits ~40 ms for the client's delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(RecordedAnswers(devnet.app), lifespan="off", ws="none", log_level="warning",
                            http="httptools", loop="uvloop", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    print(json.dumps({
        "url": url,
        "passphrase": devnet.chain.passphrase,
        "contract_id": devnet.chain.contract_id,
        "build": devnet.chain.contract.build,
        "events": devnet.chain.event_count,
        "oldest_ledger": devnet.chain.oldest.sequence,
        "latest_ledger": devnet.chain.latest.sequence,
        "generate_seconds": round(generated, 2),
    }), flush=True)
    await wait_for_stdin_close()
    server.should_exit = True
    await serving


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1))
