"""The `flowfi` command. Every flag has a FLOWFI_* environment variable; flags win."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from flowfi.logs import setup_logging
from flowfi.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
lake_app = typer.Typer(no_args_is_help=True, help="Read Stellar's data lake (SEP-54, as Galexie writes it).")
app.add_typer(lake_app, name="lake")

RpcUrl = Annotated[str | None, typer.Option(help="Stellar RPC URL [FLOWFI_RPC_URL]")]
Passphrase = Annotated[str | None, typer.Option(help="network passphrase [FLOWFI_NETWORK_PASSPHRASE]")]
ContractIds = Annotated[
    str | None, typer.Option("--contract-ids", help="comma-separated contract ids [FLOWFI_CONTRACT_IDS]")
]
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
def bootstrap(
    rpc_url: RpcUrl = None,
    contract_ids: ContractIds = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Start a fresh database from the contracts' storage: every stream's state and the protocol's
    configuration as they are now, then index forward with `flowfi index`."""
    from indexer.bootstrap import NotEmpty
    from indexer.bootstrap import bootstrap as run_bootstrap
    from indexer.database import connect
    from indexer.rpc import RpcClient, RpcError
    from indexer.storage import ChainMovedOn, StorageError

    settings = load_settings(rpc_url=rpc_url, contract_ids=contract_ids, database_url=database_url)
    setup_logging(log_format=settings.log_format)
    url = database_of(settings)

    async def main() -> None:
        conn = await connect(url, "flowfi-bootstrap")
        try:
            async with RpcClient(settings.rpc_url, timeout=settings.rpc_timeout) as rpc:
                done = await run_bootstrap(rpc, conn, settings.contract_ids)
        finally:
            await conn.close()
        typer.echo(f"took {done.streams} streams from storage at ledger {done.ledger}; `flowfi index` goes on "
                   f"from ledger {done.ledger + 1}")
        if done.archived:
            typer.echo(f"archived (TTL ran out; read, not live): streams {', '.join(map(str, done.archived))}")
        if done.without_entry:
            typer.echo(f"no entry (closed, storage deleted): streams {', '.join(map(str, done.without_entry))}")

    try:
        asyncio.run(main())
    except (NotEmpty, ChainMovedOn, StorageError, RpcError) as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc


@app.command()
def verify(
    rpc_url: RpcUrl = None,
    contract_ids: ContractIds = None,
    database_url: DatabaseUrl = None,
    stream: Annotated[list[int] | None, typer.Option(help="only this stream id (repeatable)")] = None,
) -> None:
    """Compare the indexed streams and configuration with the contracts' storage at one ledger; list the
    differences and exit 1 when there is any."""
    from rich.console import Console
    from rich.table import Table

    from indexer.bootstrap import NotCaughtUp
    from indexer.bootstrap import verify as run_verify
    from indexer.database import connect
    from indexer.rpc import RpcClient, RpcError
    from indexer.storage import ChainMovedOn, StorageError

    settings = load_settings(rpc_url=rpc_url, contract_ids=contract_ids, database_url=database_url)
    setup_logging(log_format=settings.log_format)
    url = database_of(settings)

    async def main() -> int:
        conn = await connect(url, "flowfi-verify")
        try:
            async with RpcClient(settings.rpc_url, timeout=settings.rpc_timeout) as rpc:
                ledger, differences = await run_verify(rpc, conn, settings.contract_ids, stream)
        finally:
            await conn.close()
        if not differences:
            typer.echo(f"the index equals the contracts' storage at ledger {ledger}")
            return 0
        table = Table(title=f"{len(differences)} differences at ledger {ledger}")
        for column in ("contract", "what", "field", "indexed", "chain"):
            table.add_column(column)
        for d in differences:
            table.add_row(d.contract_id[:8] + "…", d.what, d.field, str(d.indexed), str(d.chain))
        Console().print(table)
        return 1

    try:
        code = asyncio.run(main())
    except (NotCaughtUp, ChainMovedOn, StorageError, RpcError) as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc
    raise typer.Exit(code)


@app.command()
def redecode(
    contract_ids: ContractIds = None,
    database_url: DatabaseUrl = None,
    from_ledger: Annotated[int, typer.Option(help="decode again the events of this ledger and later")] = 0,
) -> None:
    """Decode the stored raw events again (after an upgrade of the indexer) and rebuild what they touch,
    without fetching anything. Stop the worker first."""
    from indexer.database import connect
    from indexer.redecode import Busy
    from indexer.redecode import redecode as run_redecode

    settings = load_settings(contract_ids=contract_ids, database_url=database_url)
    setup_logging(log_format=settings.log_format)
    url = database_of(settings)

    async def main() -> None:
        conn = await connect(url, "flowfi-redecode")
        try:
            done = await run_redecode(conn, settings.contract_ids, from_ledger)
        finally:
            await conn.close()
        typer.echo(f"decoded {done.events} stored events again: {done.typed_before} were typed, {done.typed_now} "
                   f"are now; rebuilt {done.streams_rebuilt} streams"
                   + (f" and the configuration of {', '.join(done.contracts_reconfigured)}"
                      if done.contracts_reconfigured else ""))

    try:
        asyncio.run(main())
    except Busy as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc


@app.command()
def export(
    name: Annotated[str, typer.Argument(help="the table or view", show_default=False)],
    out: Annotated[Path, typer.Option(help="the file to write", show_default=False)],
    file_format: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
    from_ledger: Annotated[int | None, typer.Option(
        help="only rows of this ledger and later (tables and views with a ledger column)", show_default=False)] = None,
    to_ledger: Annotated[int | None, typer.Option(
        help="only rows of this ledger and earlier, included", show_default=False)] = None,
    batch_size: Annotated[int, typer.Option(help="rows fetched and written at a time", min=1)] = 10_000,
    database_url: DatabaseUrl = None,
) -> None:
    """Export a table or view to a Parquet or CSV file, every amount exact, in batches (constant memory)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from indexer.database import connect
    from indexer.export import ExportError, Format, count, plan, write

    try:
        fmt = Format(file_format)
    except ValueError:
        typer.secho(f"--format must be parquet or csv, not {file_format!r}", fg="red", err=True)
        raise typer.Exit(2) from None
    settings = load_settings(database_url=database_url)
    setup_logging(log_format=settings.log_format)
    url = database_of(settings)
    console = Console(stderr=True)

    async def main() -> int:
        conn = await connect(url, "flowfi-export")
        try:
            chosen = await plan(conn, name, from_ledger, to_ledger)
            with Progress(TextColumn(f"{name}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=console, disable=not console.is_terminal) as progress:
                task = progress.add_task(name, total=await count(conn, chosen) if console.is_terminal else None)
                return await write(conn, chosen, fmt, out, batch_size,
                                   on_batch=lambda rows: progress.advance(task, rows))
        finally:
            await conn.close()

    try:
        rows = asyncio.run(main())
    except ExportError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"wrote {rows} rows of {name} to {out}")


@app.command()
def dictionary(
    out: Annotated[Path | None, typer.Option(help="write the page here instead of printing it")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Print the data dictionary (every table, view and column with its meaning, from the database's
    comments) as Markdown: the page docs/SCHEMA.md."""
    from indexer.database import connect
    from indexer.dictionary import dictionary_page

    settings = load_settings(database_url=database_url)
    setup_logging(log_format=settings.log_format)
    url = database_of(settings)

    async def main() -> str:
        conn = await connect(url, "flowfi-dictionary")
        try:
            return await dictionary_page(conn)
        finally:
            await conn.close()

    page = asyncio.run(main())
    if out is None:
        typer.echo(page, nl=False)
    else:
        out.write_text(page)
        typer.echo(f"wrote the data dictionary to {out}")


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
) -> None:
    """Everything at once on this machine: the embedded database, a local network with traffic, the
    worker and the API. Stop with Ctrl-C."""
    from flowfi.dev import run_dev

    settings = load_settings(
        rpc_url=f"http://127.0.0.1:{rpc_port}", port=api_port, poll_interval=min(ledger_interval, 2.0),
        contract_build="8723543",
    )
    setup_logging(log_format=settings.log_format)
    url = database_of(settings)
    run_dev(settings, url, ledger_interval=ledger_interval, traffic_rate=traffic_rate)


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


@lake_app.command("events")
def lake_events(
    source: Annotated[str, typer.Argument(
        help="a data lake root (a folder, s3://bucket/path or https://...), one of its objects, or a file of "
             "LedgerCloseMeta", show_default=False)],
    contract: Annotated[list[str] | None, typer.Option(
        "--contract", help="only this contract's events (C...); repeat for several", show_default=False)] = None,
    start: Annotated[int | None, typer.Option(
        help="first ledger (default: the oldest there)", show_default=False)] = None,
    end: Annotated[int | None, typer.Option(
        help="last ledger, included (default: the newest there)", show_default=False)] = None,
) -> None:
    """Print the contract events of the ledgers, one JSON object per line, each exactly as Stellar RPC's
    getEvents returns it (base64 XDR)."""
    import sys

    import orjson

    from indexer.lake import LakeError, read_ledgers

    out = sys.stdout.buffer
    try:
        for ledger in read_ledgers(source, contracts=contract or (), start=start, end=end):
            for event in ledger.events:
                out.write(orjson.dumps(event.rpc_json()) + b"\n")
        out.flush()
    except LakeError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc
    except BrokenPipeError:  # the reader went away (`| head`): not an error
        sys.stderr.close()
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
