"""The `flowfi` command. Every flag has a FLOWFI_* environment variable; flags win."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated, Any

import typer

from devnet.terms import BUILDS, NEWEST_BUILD
from flowfi.logs import setup_logging
from flowfi.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)

RpcUrl = Annotated[str | None, typer.Option(help="Stellar RPC URL [FLOWFI_RPC_URL]")]
Passphrase = Annotated[str | None, typer.Option(help="network passphrase [FLOWFI_NETWORK_PASSPHRASE]")]
ContractIds = Annotated[
    str | None, typer.Option("--contract-ids", help="comma-separated contract ids [FLOWFI_CONTRACT_IDS]")
]


def _check_build(value: str) -> str:
    if value not in BUILDS:
        raise typer.BadParameter(f"{value!r} is not a build of the contract; one of {', '.join(BUILDS)}")
    return value


Build = Annotated[str, typer.Option(help=f"the FlowFi contract's build: {' or '.join(BUILDS)}",
                                    callback=_check_build)]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(help="PostgreSQL URL; default: an embedded server [DATABASE_URL]", show_default=False),
]


def database_of(settings: Settings) -> str:
    """The database URL the settings name, or the embedded server's (started and migrated first)."""
    from indexer.database import database_url

    configured = settings.database_url
    return database_url(None if configured is None else configured.get_secret_value(), settings.data_dir)


def load_settings(**flags: Any) -> Settings:
    """Settings from the environment, overridden by the flags that were given."""
    try:
        return Settings(**{k: v for k, v in flags.items() if v is not None})
    except ValueError as exc:
        typer.secho(f"invalid settings: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc


def run_until_signalled(main: Any, on_signal: Any) -> None:
    """Run the coroutine `main`; SIGINT and SIGTERM call `on_signal` (a graceful stop)."""

    async def runner() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        await main

    asyncio.run(runner())


@app.command()
def migrate(database_url: DatabaseUrl = None) -> None:
    """Create or upgrade the database schema."""
    from indexer.database import migrate as run_migrations

    settings = load_settings(database_url=database_url)
    setup_logging(log_format=settings.log_format)
    url = database_of(settings)
    run_migrations(url)
    typer.echo("the database schema is up to date")


@app.command()
def index(
    rpc_url: RpcUrl = None,
    network_passphrase: Passphrase = None,
    contract_ids: ContractIds = None,
    start_ledger: Annotated[int | None, typer.Option(help="first ledger when there is no cursor")] = None,
    page_size: Annotated[int | None, typer.Option(help="events per getEvents page (max 10000)")] = None,
    poll_interval: Annotated[float | None, typer.Option(help="seconds between polls when caught up")] = None,
    database_url: DatabaseUrl = None,
    restart_from_ledger: Annotated[
        int | None, typer.Option(help="forget the stored cursor and continue from this ledger")
    ] = None,
    verbose: bool = False,
) -> None:
    """Index the FlowFi contract's events into PostgreSQL, then follow the chain."""
    from indexer.worker import IndexerStopped, Worker

    settings = load_settings(
        rpc_url=rpc_url, network_passphrase=network_passphrase, contract_ids=contract_ids,
        start_ledger=restart_from_ledger or start_ledger, page_size=page_size, poll_interval=poll_interval,
        database_url=database_url,
    )
    setup_logging(verbose, settings.log_format)
    if settings.metrics_port is not None:
        import prometheus_client

        prometheus_client.start_http_server(settings.metrics_port, addr=settings.host)
    url = database_of(settings)
    worker = Worker(settings, url)

    async def main() -> None:
        if restart_from_ledger is not None:
            await worker.forget_cursor()
        await worker.run()

    try:
        run_until_signalled(main(), worker.stop)
    except IndexerStopped as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc


@app.command()
def devnet(
    host: str = "127.0.0.1",
    port: int = 8000,
    ledger_interval: Annotated[float, typer.Option(help="seconds between ledgers")] = 5.0,
    retention: Annotated[int, typer.Option(help="ledgers kept (older ones are dropped)")] = 120_960,
    traffic_rate: Annotated[float, typer.Option(help="random contract calls per second (0: none)")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="seed of the random traffic")] = None,
    build: Build = NEWEST_BUILD,
    network_passphrase: Passphrase = None,
    contract_ids: ContractIds = None,
) -> None:
    """Run a local Stellar network with the FlowFi contract, speaking Stellar RPC's JSON-RPC."""
    import devnet as local_network

    settings = load_settings(network_passphrase=network_passphrase, contract_ids=contract_ids)
    setup_logging(log_format=settings.log_format)
    typer.echo(f"local network: http://{host}:{port} (contract {settings.contract_ids[0]})")

    async def main() -> None:
        await local_network.serve(
            host=host, port=port, passphrase=settings.network_passphrase,
            contract_id=settings.contract_ids[0], ledger_interval=ledger_interval, retention=retention,
            traffic_rate=traffic_rate, seed=seed, build=build,
        )

    asyncio.run(main())


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="listen address [FLOWFI_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="listen port [FLOWFI_PORT]")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Serve live events (SSE) and the indexed tables (REST) over HTTP."""
    from api.app import serve as serve_api

    settings = load_settings(host=host, port=port, database_url=database_url)
    setup_logging(log_format=settings.log_format)
    asyncio.run(serve_api(settings, database_of(settings)))


@app.command()
def dev(
    api_port: Annotated[int, typer.Option(help="port of the API and the live page")] = 8080,
    rpc_port: Annotated[int, typer.Option(help="port of the local network's RPC")] = 8000,
    ledger_interval: Annotated[float, typer.Option(help="seconds between ledgers")] = 2.0,
    traffic_rate: Annotated[float, typer.Option(help="random contract calls per second")] = 2.0,
    build: Build = NEWEST_BUILD,
) -> None:
    """Everything at once on this machine: the embedded database, a local network with traffic, the
    worker and the API. Stop with Ctrl-C."""
    from flowfi.dev import run_dev

    settings = load_settings(
        rpc_url=f"http://127.0.0.1:{rpc_port}", port=api_port, poll_interval=min(ledger_interval, 2.0),
    )
    setup_logging(log_format=settings.log_format)
    url = database_of(settings)
    run_dev(settings, url, ledger_interval=ledger_interval, traffic_rate=traffic_rate, build=build)


@app.command()
def tail(
    url: Annotated[str, typer.Option(help="the API's base URL")] = "http://127.0.0.1:8080",
    streams: Annotated[str, typer.Option(help="comma-separated stream ids")] = "",
    users: Annotated[str, typer.Option(help="comma-separated G.../C... addresses")] = "",
    types: Annotated[str, typer.Option(help="comma-separated event types, e.g. stream.created")] = "",
    all_events: Annotated[bool, typer.Option("--all", help="every event")] = False,
    since: Annotated[str | None, typer.Option(help="replay the events after this event id first")] = None,
    decimals: Annotated[int, typer.Option(help="the token's decimal places, for amounts")] = 7,
) -> None:
    """Print live events in the terminal, one line each; resumes by itself after a drop."""
    from api.client import ResumeRejected, SubscriptionRejected
    from api.tail import tail as run_tail

    def split(text: str) -> list[str]:
        return [part.strip() for part in text.split(",") if part.strip()]

    if not (streams or users or types or all_events):
        all_events = True
    try:
        asyncio.run(run_tail(url, streams=split(streams), users=split(users), types=split(types),
                             all=all_events, last_event_id=since, decimals=decimals))
    except (SubscriptionRejected, ResumeRejected) as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc
    except KeyboardInterrupt:
        pass
