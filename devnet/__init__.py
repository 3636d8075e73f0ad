"""A local stand-in for a Stellar network running the FlowFi contract, for development and tests.

It speaks Stellar RPC's JSON-RPC over HTTP as the real server does, over a Python model of the
contract, so the indexer runs and is tested without internet. Data path:

    terms.py     the contract's types, errors and formulas, for both builds (8723543, c9f5d2e)
    ttl.py       Soroban's entry lifetimes: last modified, live until, archived
    tokens.py    the tokens (Stellar Asset Contracts): metadata, allowances
    calls.py     the entry points by name: which build has which, parameters, JSON arguments
    state.py     the contract's storage, one transaction per call, shared helpers
    creations.py the entry points that create streams
    contract.py  the contract model: entry points -> state changes, events and token transfers
    xdr.py       events and token transfers -> topic and value XDR, as they are published
    entries.py   the contract's and the tokens' storage -> ledger entries (getLedgerEntries)
    chain.py     ledgers, transactions and event ids; retention; bulk history; ledger state
    lake.py      closed ledgers as a SEP-54 data lake (LedgerCloseMeta XDR), as Galexie writes them
    traffic.py   random valid calls from a seeded population of accounts, for the build in force
    rpc.py       the HTTP app: JSON-RPC getEvents, getLedgerEntries & co., /invoke, /state, /upgrade,
                 /allowance, fault injection

`serve` runs it (the CLI's `devnet` command); `running_devnet` runs it in a background thread on an
ephemeral loopback port, for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn

from devnet.chain import (
    DEFAULT_CONTRACT_ID,
    DEFAULT_PASSPHRASE,
    DEFAULT_RETENTION,
    Chain,
    Ledger,
    Receipt,
)
from devnet.contract import FlowFiContract
from devnet.lake import LakeWriter
from devnet.rpc import Faults, create_app
from devnet.terms import (
    BUILDS,
    NEWEST_BUILD,
    ContractError,
    ContractTrap,
    InvalidInvocation,
    Stream,
    StreamStatus,
    claimable,
)
from devnet.traffic import Traffic
from devnet.ttl import MIN_PERSISTENT_TTL

__all__ = [
    "BUILDS",
    "DEFAULT_CONTRACT_ID",
    "DEFAULT_PASSPHRASE",
    "DEFAULT_RETENTION",
    "Chain",
    "ContractError",
    "ContractTrap",
    "Devnet",
    "Faults",
    "InvalidInvocation",
    "FlowFiContract",
    "Ledger",
    "NEWEST_BUILD",
    "Receipt",
    "Stream",
    "StreamStatus",
    "Traffic",
    "claimable",
    "running_devnet",
    "serve",
]


class Devnet:
    """A chain, its fault queue and its HTTP app, plus the task that closes ledgers.

    `ledger_interval` is in seconds; None means manual mode: ledgers close only when `chain.close_ledger()`
    is called. `traffic_per_ledger` valid random transactions are added to each ledger (fractions carry).
    `build` is the contract's build ("8723543" or "c9f5d2e", the newest by default). With `lake`, every
    closed ledger is also written there as a SEP-54 data lake.
    """

    def __init__(
        self,
        *,
        passphrase: str = DEFAULT_PASSPHRASE,
        contract_id: str = DEFAULT_CONTRACT_ID,
        ledger_interval: float | None = None,
        retention: int = DEFAULT_RETENTION,
        traffic_per_ledger: float = 0.0,
        seed: int | None = None,
        first_ledger: int = 1,
        clock: Callable[[], float] = time.time,
        build: str = NEWEST_BUILD,
        min_persistent_ttl: int = MIN_PERSISTENT_TTL,
        lake: Path | None = None,
    ) -> None:
        self.chain = Chain(
            contract_id=contract_id,
            passphrase=passphrase,
            retention=retention,
            first_ledger=first_ledger,
            clock=clock,
            build=build,
            min_persistent_ttl=min_persistent_ttl,
        )
        self.traffic = Traffic(seed=seed)
        if traffic_per_ledger > 0:
            self.chain.traffic = self.traffic
            self.chain.traffic_per_ledger = traffic_per_ledger
        if lake is not None:
            self.chain.lake = LakeWriter(lake, passphrase)
            self.chain.lake.write(self.chain.latest, ())  # the genesis ledger, which no close writes
        self.faults = Faults()
        self.app = create_app(self.chain, self.faults)
        self.ledger_interval = ledger_interval
        self.url = ""

    async def close_ledgers(self) -> None:
        """Close a ledger every `ledger_interval` seconds until cancelled (nothing in manual mode)."""
        if self.ledger_interval is None:
            return
        loop = asyncio.get_running_loop()
        next_close = loop.time()
        while True:
            next_close += self.ledger_interval
            await asyncio.sleep(max(next_close - loop.time(), 0))
            self.chain.close_ledger()

    async def serve(self, server: uvicorn.Server, sockets: list[socket.socket] | None = None) -> None:
        """Run `server` (serving `self.app`) and close ledgers until it stops."""
        ledgers = asyncio.create_task(self.close_ledgers())
        try:
            await server.serve(sockets=sockets)
        finally:
            ledgers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ledgers


async def serve(
    *,
    host: str,
    port: int,
    passphrase: str = DEFAULT_PASSPHRASE,
    contract_id: str = DEFAULT_CONTRACT_ID,
    ledger_interval: float = 5.0,
    retention: int = DEFAULT_RETENTION,
    traffic_rate: float = 0.0,
    seed: int | None = None,
    build: str = NEWEST_BUILD,
    lake: Path | None = None,
) -> None:
    """Run the devnet until cancelled: RPC on host:port, a ledger every `ledger_interval` seconds, and
    `traffic_rate` random transactions per second (0 for none), with the contract's `build`; every closed
    ledger also written into a data lake at `lake`, when given."""
    devnet = Devnet(
        passphrase=passphrase,
        contract_id=contract_id,
        ledger_interval=ledger_interval,
        retention=retention,
        traffic_per_ledger=traffic_rate * ledger_interval,
        seed=seed,
        build=build,
        lake=lake,
    )
    devnet.url = f"http://{host}:{port}"
    await devnet.serve(uvicorn.Server(uvicorn.Config(devnet.app, host=host, port=port, lifespan="off", ws="none",
                                                     log_config=None)))


@contextlib.contextmanager
def running_devnet(**options: object) -> Iterator[Devnet]:
    """Run a `Devnet(**options)` on 127.0.0.1 at an ephemeral port in a background thread.

    Yields the devnet with `url` set ("http://127.0.0.1:PORT"); its `chain` and `faults` may be used
    from the calling thread. Stops the server (and the ledger task) on exit.
    """
    devnet = Devnet(**options)  # type: ignore[arg-type]
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on connections whose socket says TCP; without it
    # every response waits ~40 ms for the client's delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    devnet.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        devnet.app, lifespan="off", ws="none", log_level="warning", timeout_graceful_shutdown=1
    )
    server_box: list[uvicorn.Server] = []
    errors: list[BaseException] = []

    async def main() -> None:
        server = uvicorn.Server(config)
        server_box.append(server)
        ledgers = asyncio.create_task(devnet.close_ledgers())
        try:
            await server.serve(sockets=[sock])
        finally:
            ledgers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ledgers

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced to the caller below
            errors.append(exc)

    thread = threading.Thread(target=run, name="devnet", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not (server_box and server_box[0].started):
        if errors or not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"the devnet did not start: {errors[0] if errors else 'timeout'}")
        time.sleep(0.005)
    try:
        yield devnet
    finally:
        server_box[0].should_exit = True
        thread.join(timeout=10)
        sock.close()
        if errors:
            raise errors[0]
