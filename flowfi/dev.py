"""`flowfi dev`: the local network with traffic, the worker and the API in one process. SIGINT (Ctrl-C),
SIGTERM and SIGHUP (a closed terminal) stop all three; the embedded database stops when the process
exits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn

from api.app import SERVER_OPTIONS, Server, create_app
from devnet import Devnet
from flowfi.settings import Settings
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


def banner(api_url: str, rpc_url: str) -> str:
    return f"""
  FlowFi indexer, running locally
    live page      {api_url}/
    live events    curl -N '{api_url}/events/subscribe?all=true'
    streams        curl '{api_url}/streams?limit=5'
    API schema     {api_url}/openapi.json
    local RPC      {rpc_url}  (create a stream: curl -X POST {rpc_url}/invoke -d '{{"function": ...}}')
  Ctrl-C stops everything.
"""


def run_dev(settings: Settings, database_url: str, *, ledger_interval: float, traffic_rate: float, build: str) -> None:
    asyncio.run(_run(settings, database_url, ledger_interval, traffic_rate, build))


async def _run(settings: Settings, database_url: str, ledger_interval: float, traffic_rate: float, build: str) -> None:
    rpc_port = int(settings.rpc_url.rsplit(":", 1)[1])
    devnet = Devnet(
        passphrase=settings.network_passphrase, contract_id=settings.contract_ids[0],
        ledger_interval=ledger_interval, traffic_per_ledger=traffic_rate * ledger_interval, build=build,
    )
    devnet_server = _QuietDevnetServer(
        uvicorn.Config(devnet.app, host="127.0.0.1", port=rpc_port, lifespan="off", log_config=None,
                       access_log=False)
    )
    api_server = _QuietApiServer(
        uvicorn.Config(create_app(settings, database_url), host=settings.host, port=settings.port,
                       **{**SERVER_OPTIONS, "access_log": False})
    )
    worker = Worker(settings, database_url)

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
        print(banner(f"http://{settings.host}:{settings.port}", settings.rpc_url), flush=True)
    try:
        await worker.run()
    finally:
        stop()
        await asyncio.gather(chain_task, api_task, return_exceptions=True)
