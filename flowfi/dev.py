"""`flowfi dev`: the local network with traffic, the worker and the API in one process. SIGINT (Ctrl-C),
SIGTERM and SIGHUP (a closed terminal) stop all three; the embedded database stops when the process
exits.

The local network's chain is kept in the data folder (flowfi/datadir.py) and continued by the next run,
with the streams it holds. Before the worker starts, the database must index that chain: when it holds
the index of another one (the saved chain was deleted, or the process died between a ledger's close and
its save, after the worker had indexed it), the embedded database starts anew, said in one line; a
database of DATABASE_URL is never emptied (the command stops, saying what to do). `fresh` starts over: a
new chain and, embedded, a new database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from api.app import SERVER_OPTIONS, Server, create_app
from devnet import Devnet, StateMismatch
from flowfi.datadir import chain_folder
from flowfi.problems import Problem
from flowfi.settings import Settings
from indexer import store
from indexer.database import connect, embedded_folder, empty, redacted
from indexer.worker import Worker

log = logging.getLogger(__name__)


class _SharedSignals:
    """Servers that leave signal handling to `run_dev` (two uvicorn servers in one loop would each
    install, and on exit restore, their own handlers)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _QuietDevnetServer(_SharedSignals, uvicorn.Server):
    pass


class _QuietApiServer(_SharedSignals, Server):
    pass


def banner(api_url: str, rpc_url: str, data_dir: Path | None = None) -> str:
    """Where everything is, and the commands that reach it from another terminal: `data_dir` is a data
    folder other than the default, which `flowfi verify` is then told of."""
    folder = "" if data_dir is None else f"FLOWFI_DATA_DIR={shlex.quote(str(data_dir))} "
    return f"""
  FlowFi indexer, running locally
    live page      {api_url}/
    live events    curl -N '{api_url}/events/subscribe?all=true'
    streams        curl '{api_url}/streams?limit=5'
    API schema     {api_url}/openapi.json
    local RPC      {rpc_url}  (create a stream: curl -X POST {rpc_url}/invoke -d '{{"function": ...}}')
    in a terminal  flowfi tail --url {api_url}
    check it       {folder}flowfi verify --rpc-url {rpc_url}
  Ctrl-C stops everything.
"""


def run_dev(settings: Settings, database_url: str, *, ledger_interval: float, traffic_rate: float, build: str,
            fresh: bool = False) -> None:
    asyncio.run(_run(settings, database_url, ledger_interval, traffic_rate, build, fresh))


def local_network(settings: Settings, *, ledger_interval: float, traffic_rate: float, build: str,
                  fresh: bool) -> Devnet:
    """The local network of the data folder: its saved chain continued, or a new one (always with `fresh`).
    A saved chain of another build, network or contract, or of another format, is a Problem saying how to
    continue it or start over."""
    folder = chain_folder(settings.data_dir)
    if fresh:
        shutil.rmtree(folder, ignore_errors=True)
    try:
        devnet = Devnet(
            passphrase=settings.network_passphrase, contract_id=settings.contract_ids[0],
            ledger_interval=ledger_interval, traffic_per_ledger=traffic_rate * ledger_interval, build=build,
            state=folder,
        )
    except StateMismatch as exc:
        keep = {"build": f"`flowfi dev --build {exc.saved}`", "network_passphrase": "FLOWFI_NETWORK_PASSPHRASE set to "
                f"{exc.saved!r}", "contract_ids": f"FLOWFI_CONTRACT_IDS set to {exc.saved}"}.get(exc.setting or "")
        again = f"continue it with {keep}, or " if keep else ""
        raise Problem(f"{exc}: {again}start over with `flowfi dev --fresh` (a new chain and database)") from exc
    if devnet.continued:
        log.info("continuing the local chain saved in %s after ledger %d", folder, devnet.chain.latest.sequence)
    return devnet


async def index_of_this_chain(devnet: Devnet, settings: Settings, database_url: str, *, fresh: bool) -> None:
    """Make sure the database indexes `devnet`'s chain before the worker starts: the embedded one is
    emptied when it holds the index of another chain (or with `fresh`), in one line; DATABASE_URL's is
    never emptied, and a Problem when it holds another chain's index."""
    embedded = settings.database_url is None
    folder, pgdata = chain_folder(settings.data_dir), embedded_folder(settings.data_dir)
    if fresh and embedded:
        await empty(database_url)
        log.warning("starting over: a new local chain in %s and a new database in %s", folder, pgdata)
        return
    conn = await connect(database_url, "flowfi-dev")
    try:
        cursor = await store.load_cursor(conn, settings.contract_ids)
    finally:
        await conn.close()
    difference = _other_chain(devnet, folder, cursor)
    if difference is None:
        return
    if not embedded:
        raise Problem(f"{difference}, and the database at {redacted(database_url)} holds the index of another chain: "
                      "give `flowfi dev` an empty database (DATABASE_URL), or unset DATABASE_URL for the embedded one")
    await empty(database_url)
    log.warning("%s, and the database in %s held the index of another chain: started a new database there",
                difference, pgdata)


def _other_chain(devnet: Devnet, folder: Path, cursor: store.Cursor | None) -> str | None:
    """How the index (its cursor) shows another chain than `devnet`'s, saved in `folder`; None when it may
    be this one."""
    if cursor is None:
        return None
    chain, anchor = devnet.chain, cursor.anchor
    if not devnet.continued:
        return f"the local chain in {folder} is new (no saved one was there)"
    if cursor.last_ledger > chain.latest.sequence:
        return (f"the local chain saved in {folder} ends at ledger {chain.latest.sequence}, before the index "
                f"(ledger {cursor.last_ledger}): the last run was killed before it saved the ledgers after "
                f"{chain.latest.sequence}")
    if anchor is not None and chain.oldest.sequence <= anchor.sequence and (
            chain.ledger(anchor.sequence).hash != anchor.hash):
        return f"the local chain saved in {folder} is not the one indexed (its ledger {anchor.sequence} differs)"
    return None


async def _run(settings: Settings, database_url: str, ledger_interval: float, traffic_rate: float, build: str,
               fresh: bool) -> None:
    rpc_port = int(settings.rpc_url.rsplit(":", 1)[1])
    devnet = local_network(settings, ledger_interval=ledger_interval, traffic_rate=traffic_rate, build=build,
                           fresh=fresh)
    await index_of_this_chain(devnet, settings, database_url, fresh=fresh)
    devnet_server = _QuietDevnetServer(
        uvicorn.Config(devnet.app, host="127.0.0.1", port=rpc_port, lifespan="off", log_config=None,
                       access_log=False)
    )
    api_server = _QuietApiServer(
        uvicorn.Config(create_app(settings, database_url), host=settings.host, port=settings.port,
                       **{**SERVER_OPTIONS, "access_log": False})
    )
    # a new index takes in the whole chain kept, so that a database started anew lacks no stream
    start = settings.start_ledger or devnet.chain.oldest.sequence
    worker = Worker(settings.model_copy(update={"start_ledger": start}), database_url)

    def stop() -> None:
        if not worker.stopping.is_set():
            log.info("stopping")
        worker.stop()
        api_server.should_exit = True
        devnet_server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the terminal was closed
        loop.add_signal_handler(sig, stop)
    # Two servers would each say they start and stop; the banner says where everything is.
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)

    chain_task = asyncio.create_task(devnet.serve(devnet_server))
    api_task = asyncio.create_task(api_server.serve())
    while not (devnet_server.started and api_server.started):
        if chain_task.done() or api_task.done():
            stop()
            break
        await asyncio.sleep(0.05)
    else:
        own_folder = settings.database_url is None and settings.data_dir != Settings.model_fields["data_dir"].default
        print(banner(f"http://{settings.host}:{settings.port}", settings.rpc_url,
                     settings.data_dir if own_folder else None), flush=True)
    try:
        await worker.run()
    finally:
        stop()
        await asyncio.gather(chain_task, api_task, return_exceptions=True)
