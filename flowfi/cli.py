"""The `flowfi` command. A flag whose help names a setting ([FLOWFI_...]) overrides that variable.

A problem the user can fix (a busy port, a database that refuses the connection or lacks the schema, a
wrong network) ends the command with one line saying what to do; `flowfi --debug ...` shows the
traceback instead. SIGINT, SIGTERM and SIGHUP (a closed terminal) stop every command cleanly, the
embedded database included.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from typing import Annotated, Any

import typer

from flowfi.logs import setup_logging
from flowfi.problems import Problem, ensure_port_free
from flowfi.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
_options = {"debug": False}

RpcUrl = Annotated[str | None, typer.Option(help="Stellar RPC URL [FLOWFI_RPC_URL]")]
Passphrase = Annotated[str | None, typer.Option(help="network passphrase [FLOWFI_NETWORK_PASSPHRASE]")]
ContractIds = Annotated[
    str | None, typer.Option("--contract-ids", help="comma-separated contract ids [FLOWFI_CONTRACT_IDS]")
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(help="PostgreSQL URL; default: an embedded server [DATABASE_URL]", show_default=False),
]


@app.callback()
def options(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks instead of one-line problems")] = False,
) -> None:
    """The FlowFi indexer: index the contract's events, serve them live and over REST, or run it all
    locally with `flowfi dev`."""
    _options["debug"] = debug


def main() -> None:
    """The `flowfi` executable: the commands, with problems said in one line and clean stops on signals."""
    stop_cleanly_on_signals()
    try:
        app(prog_name="flowfi")
    except KeyboardInterrupt:
        sys.exit(0)
    except Exception as exc:
        if _options["debug"] or not isinstance(exc, _problems()):
            raise
        typer.secho(str(exc), fg="red", err=True)
        sys.exit(1)


def _problems() -> tuple[type[Exception], ...]:
    """The exceptions that are problems for the user to fix: their message says how. Looked up among
    the modules already imported (a module that raised one was), so that starting `flowfi` stays quick."""
    kinds: list[type[Exception]] = [Problem]
    for module, name in (("indexer.database", "DatabaseProblem"), ("indexer.embedded", "EmbeddedUnavailable"),
                         ("indexer.worker", "IndexerStopped")):
        if module in sys.modules:
            kinds.append(getattr(sys.modules[module], name))
    return tuple(kinds)


def stop_cleanly_on_signals() -> None:
    """SIGTERM ends the process through SystemExit, so that exit handlers run (they stop the embedded
    database); SIGHUP, which a closed terminal sends, counts as SIGTERM. While a command's event loop
    or server runs, SIGINT and SIGTERM stop it gracefully instead."""

    def exit_now(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    def as_sigterm(signum: int, frame: Any) -> None:
        signal.raise_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, exit_now)
    signal.signal(signal.SIGHUP, as_sigterm)


def database_of(settings: Settings, *, schema: bool = True) -> str:
    """The database URL the settings name (checked: it answers and, with `schema`, is migrated), or the
    embedded server's (started and migrated first)."""
    from indexer.database import check, database_url

    configured = settings.database_url
    url = database_url(None if configured is None else configured.get_secret_value(), settings.data_dir)
    if configured is not None:
        asyncio.run(check(url, schema=schema))
    return url


def load_settings(**flags: Any) -> Settings:
    """Settings from the environment, overridden by the flags that were given."""
    try:
        return Settings(**{k: v for k, v in flags.items() if v is not None})
    except ValueError as exc:
        typer.secho(f"invalid settings: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc


def run_until_signalled(main: Any, on_signal: Any) -> None:
    """Run the coroutine `main`; SIGINT, SIGTERM and SIGHUP call `on_signal` (a graceful stop)."""

    async def runner() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, on_signal)
        await main

    asyncio.run(runner())


@app.command()
def migrate(database_url: DatabaseUrl = None) -> None:
    """Create or upgrade the database schema."""
    from indexer.database import migrate as run_migrations

    settings = load_settings(database_url=database_url)
    setup_logging(log_format=settings.log_format)
    url = database_of(settings, schema=False)
    run_migrations(url)
    typer.echo("the database schema is up to date")


@app.command()
def index(
    rpc_url: RpcUrl = None,
    network_passphrase: Passphrase = None,
    contract_ids: ContractIds = None,
    start_ledger: Annotated[
        int | None, typer.Option(help="first ledger when there is no cursor [FLOWFI_START_LEDGER]")
    ] = None,
    page_size: Annotated[
        int | None, typer.Option(help="events per getEvents page (max 10000) [FLOWFI_PAGE_SIZE]")
    ] = None,
    poll_interval: Annotated[
        float | None, typer.Option(help="seconds between polls when caught up [FLOWFI_POLL_INTERVAL]")
    ] = None,
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
    url = database_of(settings)
    if settings.metrics_port is not None:
        import prometheus_client

        ensure_port_free(settings.host, settings.metrics_port, "FLOWFI_METRICS_PORT")
        prometheus_client.start_http_server(settings.metrics_port, addr=settings.host)
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
    network_passphrase: Passphrase = None,
    contract_ids: ContractIds = None,
) -> None:
    """Run a local Stellar network with the FlowFi contract, speaking Stellar RPC's JSON-RPC."""
    import devnet as local_network

    settings = load_settings(network_passphrase=network_passphrase, contract_ids=contract_ids)
    setup_logging(log_format=settings.log_format)
    ensure_port_free(host, port, "--port")
    typer.echo(f"local network: http://{host}:{port} (contract {settings.contract_ids[0]})")

    async def main() -> None:
        await local_network.serve(
            host=host, port=port, passphrase=settings.network_passphrase,
            contract_id=settings.contract_ids[0], ledger_interval=ledger_interval, retention=retention,
            traffic_rate=traffic_rate, seed=seed,
        )

    asyncio.run(main())


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="listen address [FLOWFI_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="listen port [FLOWFI_PORT]")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Serve live events (SSE) and the indexed tables (REST) over HTTP."""
    settings = load_settings(host=host, port=port, database_url=database_url)
    setup_logging(log_format=settings.log_format)
    ensure_port_free(settings.host, settings.port, "--port (FLOWFI_PORT)")
    from api.app import serve as serve_api
    asyncio.run(serve_api(settings, database_of(settings)))


@app.command()
def dev(
    api_port: Annotated[int, typer.Option(help="port of the API and the live page")] = 8080,
    rpc_port: Annotated[int, typer.Option(help="port of the local network's RPC")] = 8000,
    ledger_interval: Annotated[float, typer.Option(help="seconds between ledgers")] = 2.0,
    traffic_rate: Annotated[float, typer.Option(help="random contract calls per second")] = 2.0,
) -> None:
    """Everything at once on this machine: the embedded database, a local network with traffic, the
    worker and the API. Stop with Ctrl-C."""
    settings = load_settings(
        rpc_url=f"http://127.0.0.1:{rpc_port}", port=api_port, poll_interval=min(ledger_interval, 2.0),
    )
    setup_logging(log_format=settings.log_format)
    ensure_port_free(settings.host, api_port, "--api-port (make dev API_PORT=...)")
    ensure_port_free("127.0.0.1", rpc_port, "--rpc-port (make dev RPC_PORT=...)")
    from flowfi.dev import run_dev  # after the checks: it imports everything
    url = database_of(settings)
    run_dev(settings, url, ledger_interval=ledger_interval, traffic_rate=traffic_rate)


# The query parameter a refusal names -> the `flowfi tail` flag that sets it.
TAIL_FLAGS = {"streams": "--streams", "users": "--users", "types": "--types", "all": "--all"}


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
                             all=all_events, last_event_id=since, decimals=decimals, url_flag="--url"))
    except ResumeRejected as exc:
        raise Problem(f"the server cannot resume after event {since}: {exc.message}; run again without --since "
                      "(live from now), or with an id it still has") from exc
    except SubscriptionRejected as exc:
        flag = TAIL_FLAGS.get(exc.parameter or "", "--streams, --users, --types or --all")
        raise Problem(f"the server refused the filter: {exc.message}; check {flag}") from exc



@app.command("db-url")
def db_url(database_url: DatabaseUrl = None) -> None:
    """Print the database's URL (for psql, notebooks, BI tools): DATABASE_URL's, else the embedded
    server's, which runs while `flowfi dev` (or `flowfi psql`) does."""
    from indexer import embedded

    settings = load_settings(database_url=database_url)
    if settings.database_url is not None:
        typer.echo(settings.database_url.get_secret_value())
        return
    url = embedded.url_of(settings.data_dir / "postgres")
    if url is None:
        raise Problem(f"the embedded database in {settings.data_dir} is not running: start `flowfi dev`, or open "
                      "it with `flowfi psql`, which starts it")
    typer.echo(url)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def psql(ctx: typer.Context, database_url: DatabaseUrl = None) -> None:
    """Open psql on the database (the embedded one is started, and migrated, if `flowfi dev` is not
    running). Further arguments go to psql, e.g. `flowfi psql -c 'SELECT count(*) FROM events'`."""
    import shutil

    from indexer import embedded

    settings = load_settings(database_url=database_url)
    setup_logging(log_format=settings.log_format)
    url = database_of(settings, schema=False)
    found = shutil.which("psql")
    program = str(embedded.psql_path()) if embedded.installed() else found
    if program is None:
        raise Problem("psql is not installed: install PostgreSQL's client (Debian: apt-get install postgresql-client)")
    sys.exit(run_in_foreground([program, url, *ctx.args]))


def run_in_foreground(command: list[str]) -> int:
    """Run an interactive program until it exits; its exit code. Ctrl-C is the program's (psql cancels
    a query with it); SIGTERM or SIGHUP to this process ends the program too."""
    child = subprocess.Popen(command)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return child.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
        if child.poll() is None:
            child.terminate()
            child.wait()
