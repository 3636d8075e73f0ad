"""The local network in its own process, with pre-generated history, for the benchmarks.

    python -m bench.devnet_process EVENTS [SEED]

Generates EVENTS events of random valid traffic, serves Stellar RPC on a loopback port, prints one JSON
line (url, passphrase, contract id, event count, seconds spent generating) and serves until its stdin
closes.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time

import uvicorn

from bench import wait_for_stdin_close
from devnet import Devnet, Traffic


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
    config = uvicorn.Config(devnet.app, lifespan="off", ws="none", log_level="warning", http="httptools",
                            loop="uvloop", timeout_graceful_shutdown=1)
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
