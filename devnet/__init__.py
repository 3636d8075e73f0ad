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
    saved.py     a chain and its traffic saved in a folder, and continued from it
    rpc.py       the HTTP app: JSON-RPC getEvents, getLedgers, getLedgerEntries & co., /invoke, /state,
                 /upgrade, /allowance, fault injection

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
from devnet.saved import SavedChain, StateMismatch
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
    "StateMismatch",
    "StreamStatus",
    "Traffic",
    "claimable",
    "running_devnet",
    "serve",
]


# Seconds between saves of a running chain in manual mode that has a state folder (on an interval, each
# ledger is saved as it closes, and every change of state comes with a ledger).
SAVE_INTERVAL = 5.0


class Devnet:
    """A chain, its fault queue and its HTTP app, plus the task that closes ledgers.

    `ledger_interval` is in seconds; None means manual mode: ledgers close only when `chain.close_ledger()`
    is called. `traffic_per_ledger` valid random transactions are added to each ledger (fractions carry).
    `build` is the contract's build ("8723543" or "c9f5d2e", the newest by default). With `lake`, every
    closed ledger is also written there as a SEP-54 data lake.

    With `state`, a folder: the chain saved there is continued (`continued` says so), with its traffic
    source, ledgers closing from now on; a chain of another network, contract or build is refused
    (StateMismatch). A new chain starts otherwise. While `run` runs the chain is saved there at once,
    then after each ledger it closes (in manual mode every SAVE_INTERVAL seconds), and once more when it
    stops: a crash loses at most the ledger being saved. A continued chain keeps what it was started
    with (first ledger, seed, lifetimes) and takes this run's retention, interval and traffic rate.
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
        state: Path | None = None,
    ) -> None:
        self.saved = SavedChain(state) if state is not None else None
        loaded = None
        if self.saved is not None:
            loaded = self.saved.load(passphrase=passphrase, contract_id=contract_id, build=build, clock=clock)
        self.continued = loaded is not None
        if loaded is None:
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
        else:
            self.chain, self.traffic = loaded
            self.chain.retention = retention
        if traffic_per_ledger > 0:
            self.chain.traffic = self.traffic
            self.chain.traffic_per_ledger = traffic_per_ledger
        if lake is not None:
            self.chain.lake = LakeWriter(lake, passphrase)
            if not self.continued:
                self.chain.lake.write(self.chain.latest, ())  # the genesis ledger, which no close writes
        self.faults = Faults()
        self.app = create_app(self.chain, self.faults)
        self.ledger_interval = ledger_interval
        self.url = ""

    def save(self) -> None:
        """Save the chain into its state folder (nothing without one)."""
        if self.saved is not None:
            self.saved.save(self.chain, self.traffic)

    async def run(self) -> None:
        """Close ledgers (`close_ledgers`) and save the chain at once and as it goes (`_save_periodically`)
        until cancelled, then once more."""
        try:
            await asyncio.gather(self.close_ledgers(), self._save_periodically())
        finally:
            self.save()

    async def _save_periodically(self) -> None:
        """Save at once; then, in manual mode, every SAVE_INTERVAL seconds (on an interval `close_ledgers`
        saves each ledger, and a periodic save would only write the same state again)."""
        while self.saved is not None:
            await asyncio.to_thread(self.save)
            if self.ledger_interval is not None:
                return
            await asyncio.sleep(SAVE_INTERVAL)

    async def close_ledgers(self) -> None:
        """Close a ledger every `ledger_interval` seconds until cancelled (nothing in manual mode), each
        saved as soon as it is closed (in a thread: tens of milliseconds, more as the chain grows) where there
        is a state folder."""
        if self.ledger_interval is None:
            return
        loop = asyncio.get_running_loop()
        next_close = loop.time()
        while True:
            next_close += self.ledger_interval
            await asyncio.sleep(max(next_close - loop.time(), 0))
            self.chain.close_ledger()
            if self.saved is not None:
                await asyncio.to_thread(self.save)

    async def serve(self, server: uvicorn.Server, sockets: list[socket.socket] | None = None) -> None:
        """Run `server` (serving `self.app`), closing ledgers and saving the chain, until it stops."""
        background = asyncio.create_task(self.run())
        try:
            await server.serve(sockets=sockets)
        finally:
            background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await background


async def serve(devnet: Devnet, *, host: str, port: int) -> None:
    """Serve `devnet`'s RPC on host:port, closing its ledgers (and saving its chain), until cancelled."""
    devnet.url = f"http://{host}:{port}"
    await devnet.serve(uvicorn.Server(uvicorn.Config(devnet.app, host=host, port=port, lifespan="off", ws="none",
                                                     log_config=None)))


@contextlib.contextmanager
def running_devnet(*, port: int = 0, **options: object) -> Iterator[Devnet]:
    """Run a `Devnet(**options)` on 127.0.0.1 at `port` (an ephemeral one by default) in a background
    thread.

    Yields the devnet with `url` set ("http://127.0.0.1:PORT"); its `chain` and `faults` may be used
    from the calling thread. Stops the server (and the ledger task, which saves a chain that has a state
    folder) on exit.
    """
    devnet = Devnet(**options)  # type: ignore[arg-type]
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on connections whose socket says TCP; without it
    # every response waits ~40 ms for the client's delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    devnet.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        devnet.app, lifespan="off", ws="none", log_level="warning", timeout_graceful_shutdown=1
    )
    server_box: list[uvicorn.Server] = []
    errors: list[BaseException] = []

    async def main() -> None:
        server = uvicorn.Server(config)
        server_box.append(server)
        await devnet.serve(server, sockets=[sock])

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
