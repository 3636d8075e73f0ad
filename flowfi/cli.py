"""The `flowfi` command. A flag whose help names a setting ([FLOWFI_...]) overrides that variable.

A problem the user can fix (a busy port, a database that refuses the connection or lacks the schema, a
wrong network) ends the command with one line saying what to do; `flowfi --debug ...` shows the
traceback instead. SIGINT, SIGTERM and SIGHUP (a closed terminal) stop every command cleanly, the
embedded database included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import SecretStr, ValidationError

from flowfi.logs import logs_are_json, setup_logging
from flowfi.problems import Problem, ensure_port_free
from flowfi.settings import Settings
from flowfi.settings_docs import option_help
from indexer import ids
from indexer.builds import BUILDS, NEWEST, build_name
from indexer.events import U64_MAX
from indexer.networks import LOCAL_RPC_PORT
from indexer.rpc import MAX_PAGE_SIZE

T = TypeVar("T")

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__, rich_markup_mode="markdown")
_options = {"debug": False}
lake_app = typer.Typer(no_args_is_help=True, help="Read Stellar's data lake (SEP-54, as Galexie writes it).")
app.add_typer(lake_app, name="lake")

RpcUrl = Annotated[str | None, typer.Option(help=option_help("Stellar RPC URL", "rpc_url"))]
Passphrase = Annotated[str | None, typer.Option(help=option_help("network passphrase", "network_passphrase"))]
ContractIds = Annotated[
    str | None, typer.Option("--contract-ids", help=option_help("comma-separated contract ids", "contract_ids"))
]


def _check_build(value: str) -> str:
    try:
        return build_name(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


Build = Annotated[str, typer.Option(help=f"the FlowFi contract's build: {' or '.join(BUILDS)}",
                                    callback=_check_build)]
Verbose = Annotated[bool, typer.Option("--verbose", help="more detail in the log (its DEBUG level)")]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(help=option_help("PostgreSQL URL", "database_url"), show_default=False),
]


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        typer.echo(f"flowfi {version('flowfi-indexer')}")
        raise typer.Exit()


@app.callback()
def options(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks instead of one-line problems")] = False,
    _version: Annotated[bool, typer.Option(
        "--version", help="print the version and exit", is_eager=True, callback=_print_version)] = False,
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
        say_problem(str(exc))
        sys.exit(1)


def say_problem(message: str) -> None:
    """A command's one-line problem on stderr: in red, or as a JSON log line where the logs are JSON."""
    if logs_are_json():
        logging.getLogger("flowfi").error(message)
    else:
        typer.secho(message, fg="red", err=True)


def _problems() -> tuple[type[Exception], ...]:
    """The exceptions that are problems for the user to fix: their message says how. Looked up among
    the modules already imported (a module that raised one was), so that starting `flowfi` stays quick."""
    kinds: list[type[Exception]] = [Problem]
    for module, name in (("indexer.database", "DatabaseProblem"), ("indexer.embedded", "EmbeddedUnavailable"),
                         ("indexer.worker", "IndexerStopped"), ("indexer.storage", "StorageError")):
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


def database_of(settings: Settings, *, schema: bool = True, migrate_embedded: bool = True) -> str:
    """The database URL the settings name (checked: it answers and, with `schema`, is migrated), or the
    embedded server's (started, and unless told otherwise migrated, first)."""
    from indexer.database import check, database_url

    configured = settings.database_url
    url = database_url(None if configured is None else configured.get_secret_value(), settings.data_dir,
                       migrated=migrate_embedded)
    if configured is not None:
        asyncio.run(check(url, schema=schema))
    return url


def load_settings(**flags: Any) -> Settings:
    """Settings from the environment, overridden by the flags that were given. A refused setting
    stops the command with what is wrong with it (never its value: it may be a secret), named as the
    user gave it: the flag, or the variable."""
    given = {name: value for name, value in flags.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"]) or "settings"
            what = f"--{name.replace('_', '-')}" if name in given else f"setting FLOWFI_{name.upper()}"
            message = error["msg"].removeprefix("Value error, ")
            typer.secho(f"invalid {what}: {message}", fg="red", err=True)
        raise typer.Exit(2) from None


def run_until_signalled(main: Coroutine[Any, Any, T], on_signal: Callable[[], None]) -> T:
    """Run the coroutine `main`, and return its result; SIGINT, SIGTERM and SIGHUP call `on_signal` (a
    graceful stop)."""

    async def runner() -> T:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, on_signal)
        return await main

    return asyncio.run(runner())


@contextlib.contextmanager
def said_in_one_line(problems: tuple[type[Exception], ...], exit_code: int = 1) -> Iterator[None]:
    """One of a command's own `problems` ends it with its message in one line, and `exit_code` (with
    --debug, its traceback)."""
    try:
        yield
    except problems as exc:
        if _options["debug"]:
            raise
        say_problem(str(exc))
        raise typer.Exit(exit_code) from exc


@app.command()
def migrate(database_url: DatabaseUrl = None) -> None:
    """Create or upgrade the database schema."""
    from indexer.database import migrate as run_migrations
    from indexer.database import schema_revision

    settings = load_settings(database_url=database_url)
    setup_logging(log_format=settings.log_format)
    url = database_of(settings, schema=False, migrate_embedded=False)
    before = asyncio.run(schema_revision(url))
    run_migrations(url)
    after = asyncio.run(schema_revision(url))
    if before is None:
        typer.echo(f"created the database schema (revision {after})")
    elif before != after:
        typer.echo(f"migrated the database schema from revision {before} to {after}")
    else:
        typer.echo(f"the database schema is up to date (revision {after})")


@app.command()
def index(
    rpc_url: RpcUrl = None,
    network_passphrase: Passphrase = None,
    contract_ids: ContractIds = None,
    start_ledger: Annotated[
        int | None, typer.Option(help=option_help("first ledger when there is no cursor", "start_ledger"))
    ] = None,
    page_size: Annotated[
        int | None, typer.Option(help=option_help(f"events per getEvents page (max {MAX_PAGE_SIZE})", "page_size"))
    ] = None,
    poll_interval: Annotated[
        float | None, typer.Option(help=option_help("seconds between polls when caught up", "poll_interval"))
    ] = None,
    database_url: DatabaseUrl = None,
    restart_from_ledger: Annotated[int | None, typer.Option(
        min=1, help="move the stored cursor and continue from this ledger (earlier ledgers' stored events are kept)"
    )] = None,
    lake: Annotated[str | None, typer.Option(
        "--lake", help=option_help("a data lake to read the ledgers older than the RPC keeps from", "lake_url"),
        show_default=False)] = None,
    verbose: Verbose = False,
) -> None:
    """Index the FlowFi contract's events into PostgreSQL, then follow the chain."""
    from indexer.rpc import FatalRpcError
    from indexer.store import WriterBusy
    from indexer.worker import IndexerStopped, Worker

    settings = load_settings(
        rpc_url=rpc_url, network_passphrase=network_passphrase, contract_ids=contract_ids,
        start_ledger=start_ledger, page_size=page_size, poll_interval=poll_interval,
        database_url=database_url, lake_url=lake,
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
            await worker.restart_from(restart_from_ledger)
        await worker.run()

    with said_in_one_line((IndexerStopped, FatalRpcError, WriterBusy)):
        run_until_signalled(main(), worker.stop)


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
    from indexer.store import WriterBusy

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

    with said_in_one_line((NotEmpty, WriterBusy, ChainMovedOn, StorageError, RpcError)):
        asyncio.run(main())


TOKEN_COLUMNS = ("address", "symbol", "decimals", "name", "source")
_LIST_TOKENS = f"SELECT {', '.join(TOKEN_COLUMNS)} FROM tokens ORDER BY address"


@app.command()
def tokens(
    refresh: Annotated[bool, typer.Option(
        "--refresh", help="read each token's metadata from its contract again (rows set by hand are kept)")] = False,
    rpc_url: RpcUrl = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The tokens the index knows, tab-separated under a header line: address, symbol, decimals, name and
    where they were read (chain, or manual: set by hand). With
    --refresh, their metadata is read from the chain again first (a token whose metadata changed, or one
    that had none when a stream first named it)."""
    from indexer import storage, store
    from indexer.database import connect
    from indexer.rpc import RpcClient, RpcError

    settings = load_settings(rpc_url=rpc_url, database_url=database_url)
    setup_logging(log_format=settings.log_format)
    url = database_of(settings)

    async def main() -> list[Any]:
        conn = await connect(url, "flowfi-tokens")
        try:
            rows = await conn.fetch(_LIST_TOKENS)
            if refresh:
                from_chain = {row["address"] for row in rows if row["source"] == "chain"}
                async with RpcClient(settings.rpc_url, timeout=settings.rpc_timeout) as rpc:
                    metadata = await storage.token_metadata(rpc, from_chain)
                changed = await store.refresh_tokens(conn, metadata)
                kept = len(rows) - len(from_chain)
                typer.echo(f"read {len(from_chain)} tokens from {settings.rpc_url}; {len(changed)} changed"
                           + (f": {', '.join(changed)}" if changed else "")
                           + (f"; {kept} set by hand, kept" if kept else ""), err=True)
                rows = await conn.fetch(_LIST_TOKENS)
            return list(rows)
        finally:
            await conn.close()

    with said_in_one_line((RpcError,)):
        rows = asyncio.run(main())
    typer.echo("\t".join(TOKEN_COLUMNS))
    for row in rows:
        typer.echo("\t".join("" if value is None else str(value) for value in row.values()))


@app.command()
def verify(
    rpc_url: RpcUrl = None,
    contract_ids: ContractIds = None,
    database_url: DatabaseUrl = None,
    stream: Annotated[
        list[int] | None, typer.Option(help="only this stream id (repeatable)", min=0, max=U64_MAX)
    ] = None,
) -> None:
    """Compare the indexed streams and configuration with the contracts' storage at one ledger; list the
    differences and exit 1 when there is any."""
    from rich.console import Console
    from rich.table import Table

    from indexer.bootstrap import NoSuchStreams, NotCaughtUp, RpcBehind
    from indexer.bootstrap import verify as run_verify
    from indexer.database import connect
    from indexer.identity import OtherChain
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
        table = Table(title=f"{len(differences)} difference{'s' * (len(differences) > 1)} at ledger {ledger}")
        for column in ("contract", "what", "field", "indexed", "chain"):
            table.add_column(column)
        for d in differences:
            table.add_row(d.contract_id[:8] + "…", d.what, d.field, str(d.indexed), str(d.chain))
        Console().print(table)
        return 1

    with said_in_one_line((NotCaughtUp, NoSuchStreams, OtherChain, RpcBehind, ChainMovedOn, StorageError, RpcError), 2):
        code = asyncio.run(main())
    raise typer.Exit(code)


@app.command()
def redecode(
    contract_ids: ContractIds = None,
    database_url: DatabaseUrl = None,
    from_ledger: Annotated[int, typer.Option(help="decode again the events of this ledger and later")] = 0,
    storage: Annotated[bool, typer.Option(
        "--storage", help="also read again from the contracts' storage the schedules it could not give before "
                          "(streams whose terms_source is 'unavailable'); needs the RPC server")] = False,
    rpc_url: RpcUrl = None,
) -> None:
    """Decode the stored raw events again (after an upgrade of the indexer) and rebuild what they touch,
    without fetching anything but, with --storage, the schedules storage could not give. Stop the worker
    first."""
    from indexer.database import connect
    from indexer.redecode import redecode as run_redecode
    from indexer.rpc import RpcClient, RpcError
    from indexer.store import WriterBusy

    settings = load_settings(contract_ids=contract_ids, database_url=database_url, rpc_url=rpc_url)
    setup_logging(log_format=settings.log_format)
    url = database_of(settings)

    async def main() -> None:
        conn = await connect(url, "flowfi-redecode")
        try:
            if storage:
                async with RpcClient(settings.rpc_url, timeout=settings.rpc_timeout) as rpc:
                    done = await run_redecode(conn, settings.contract_ids, from_ledger, rpc)
            else:
                done = await run_redecode(conn, settings.contract_ids, from_ledger)
        finally:
            await conn.close()
        typer.echo(f"decoded {done.events} stored events again: {done.typed_before} were typed, {done.typed_now} "
                   f"are now; rebuilt {done.streams_rebuilt} streams"
                   + (f" and the configuration of {', '.join(done.contracts_reconfigured)}"
                      if done.contracts_reconfigured else "")
                   + (f"; read {done.schedules_read} schedules from storage" if storage else ""))

    with said_in_one_line((WriterBusy, RpcError)):
        asyncio.run(main())


@app.command()
def backfill(
    lake: Annotated[str | None, typer.Option(
        "--lake", help=option_help("the data lake (a folder, s3://bucket/path or https://...), one of its objects, "
                                   "or a file of LedgerCloseMeta", "lake_url"), show_default=False)] = None,
    from_ledger: Annotated[int | None, typer.Option(
        "--from", min=1, help="first ledger, where the index is empty (else it continues after the index's last)",
        show_default=False)] = None,
    to_ledger: Annotated[int | None, typer.Option(
        "--to", min=1, help="last ledger, included (default: the lake's newest)", show_default=False)] = None,
    rpc_url: RpcUrl = None,
    network_passphrase: Passphrase = None,
    contract_ids: ContractIds = None,
    database_url: DatabaseUrl = None,
    verbose: Verbose = False,
) -> None:
    """Index past ledgers from Stellar's data lake, through the same decode and state as `flowfi index`,
    which then continues where the backfill stops. Interrupted, it continues where it stopped."""
    import time

    from flowfi.backfill_bar import backfill_bar
    from indexer.rpc import FatalRpcError
    from indexer.store import WriterBusy
    from indexer.worker import IndexerStopped, Worker

    settings = load_settings(rpc_url=rpc_url, network_passphrase=network_passphrase, contract_ids=contract_ids,
                             database_url=database_url, lake_url=lake)
    setup_logging(verbose, settings.log_format)
    if settings.lake_url is None:
        typer.secho("give --lake (or FLOWFI_LAKE_URL): the data lake to read", fg="red", err=True)
        raise typer.Exit(2)
    source = settings.lake_url
    worker = Worker(settings, database_of(settings))
    started = time.perf_counter()
    bar = backfill_bar(worker) if settings.log_format == "text" else contextlib.nullcontext()
    with said_in_one_line((IndexerStopped, FatalRpcError, WriterBusy)), bar:
        done = run_until_signalled(worker.backfill(source, start=from_ledger, end=to_ledger), worker.stop)
    seconds = time.perf_counter() - started
    wrote = (f"ledgers {done.first}-{done.last} from {source}: {done.events:,} events ({done.dead_letters:,} dead "
             f"letters) in {seconds:.1f} s" if done.last >= done.first else "no ledgers")
    if not done.finished:
        typer.echo(f"stopped after {wrote}; run the same command again to continue", err=True)
        raise typer.Exit(130)
    typer.echo(f"backfilled {wrote}; `flowfi index` continues from ledger {done.last + 1}")


@app.command()
def export(
    name: Annotated[str, typer.Argument(help="the table or view", metavar="TABLE", show_default=False)],
    out: Annotated[Path, typer.Option(help="the file to write", show_default=False)],
    file_format: Annotated[str | None, typer.Option(
        "--format", help="parquet or csv; default: as --out's suffix names it (.csv; .parquet or .pq), parquet "
                         "for a name without a suffix",
        show_default=False)] = None,
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
    from indexer.export import ExportError, Written, count, format_of, plan, write

    with said_in_one_line((ExportError,), 2):
        fmt = format_of(out, file_format)
    settings = load_settings(database_url=database_url)
    setup_logging(log_format=settings.log_format)
    url = database_of(settings)
    console = Console(stderr=True)

    async def main() -> Written:
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

    with said_in_one_line((ExportError,), 2):
        written = asyncio.run(main())
    rows = f"{written.rows} row{'' if written.rows == 1 else 's'}"
    typer.echo(f"wrote {rows} of {name} to {out}" + (f": {written.missing}" if written.missing else ""))


@app.command()
def dictionary(
    out: Annotated[Path | None, typer.Option(help="write the page here instead of printing it")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Print the data dictionary (every table, view and column with its meaning, from the database's
    comments) as Markdown: the page docs/SCHEMA.md."""
    from indexer.database import connect
    from indexer.dictionary import dictionary_page
    from indexer.export import ExportError, check_destination

    if out is not None:
        with said_in_one_line((ExportError,), 2):
            check_destination(out)
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
    host: Annotated[str, typer.Option(help="listen address (0.0.0.0: every interface)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="listen port of its JSON-RPC over HTTP")] = LOCAL_RPC_PORT,
    ledger_interval: Annotated[float, typer.Option(
        help="seconds between ledgers (under 1 the chain's clock runs ahead of yours: a ledger closes at least "
             "a whole second after the one before)")] = 5.0,
    retention: Annotated[int, typer.Option(help="ledgers kept (older ones are dropped)")] = 120_960,
    traffic_rate: Annotated[float, typer.Option(help="random contract calls per second (0: none)")] = 1.0,
    seed: Annotated[int | None, typer.Option(
        help="seed of the random traffic (the same seed, the same calls); default: a new one each run",
        show_default=False)] = None,
    build: Build = NEWEST.name,
    lake: Annotated[
        Path | None, typer.Option(help="also write every closed ledger here, as a SEP-54 data lake")
    ] = None,
    state: Annotated[Path | None, typer.Option(
        help="a folder to keep the chain in: continued from it when it holds one, saved into it as each ledger "
             "closes and on exit", show_default=False)] = None,
    network_passphrase: Passphrase = None,
    contract_ids: ContractIds = None,
) -> None:
    """Run a local Stellar network with the FlowFi contract, speaking Stellar RPC's JSON-RPC."""
    import devnet as local_network

    settings = load_settings(network_passphrase=network_passphrase, contract_ids=contract_ids)
    setup_logging(log_format=settings.log_format)
    ensure_port_free(host, port, "--port")
    try:
        network = local_network.Devnet(
            passphrase=settings.network_passphrase, contract_id=settings.contract_ids[0],
            ledger_interval=ledger_interval, retention=retention, traffic_per_ledger=traffic_rate * ledger_interval,
            seed=seed, build=build, lake=lake, state=state,
        )
    except local_network.StateMismatch as exc:
        keep = f" with --{exc.setting.replace('_', '-')} {exc.saved!r}" if exc.setting else ""
        again = f"continue it{keep}, or " if keep else ""
        raise Problem(f"{exc}: {again}start a new chain with another --state (or delete {state})") from exc
    typer.echo(f"local network: http://{host}:{port} (contract {settings.contract_ids[0]})")
    if network.continued:
        typer.echo(f"continuing the chain saved in {state} after ledger {network.chain.latest.sequence}")
    asyncio.run(local_network.serve(network, host=host, port=port))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help=option_help("listen address", "host"))] = None,
    port: Annotated[int | None, typer.Option(help=option_help("listen port", "port"))] = None,
    processes: Annotated[int | None, typer.Option(
        help=option_help("processes sharing the port, each with its own clients (Linux)", "api_processes"))] = None,
    database_url: DatabaseUrl = None,
    header_timeout: Annotated[float | None, typer.Option(
        help=option_help("seconds a client has to send a request's line and headers", "header_timeout"))] = None,
    max_sockets_per_ip: Annotated[int | None, typer.Option(
        help=option_help("open connections of any kind from one address", "max_sockets_per_ip"))] = None,
    trusted_proxies: Annotated[str | None, typer.Option(
        help=option_help("comma-separated addresses or networks of reverse proxies whose X-Forwarded-For is "
                         "believed", "trusted_proxies"))] = None,
) -> None:
    """Serve live events (SSE) and the indexed tables (REST) over HTTP."""
    settings = load_settings(host=host, port=port, api_processes=processes, database_url=database_url,
                             header_timeout=header_timeout, max_sockets_per_ip=max_sockets_per_ip,
                             trusted_proxies=trusted_proxies)
    setup_logging(log_format=settings.log_format)
    ensure_port_free(settings.host, settings.port, "--port (FLOWFI_PORT)")
    if settings.api_processes > 1:
        from flowfi.processes import serve as serve_processes

        raise typer.Exit(serve_processes(settings, database_of(settings), settings.api_processes))
    from api.app import run as run_api
    run_api(settings, database_of(settings))


@app.command()
def dev(
    api_port: Annotated[int | None, typer.Option(help=option_help("port of the API and the live page", "port"))] = None,
    rpc_port: Annotated[int, typer.Option(help="port of the local network's RPC")] = LOCAL_RPC_PORT,
    ledger_interval: Annotated[float, typer.Option(
        help="seconds between ledgers (under 1 the chain's clock runs ahead of yours: a ledger closes at least "
             "a whole second after the one before)")] = 2.0,
    traffic_rate: Annotated[float, typer.Option(help="random contract calls per second")] = 2.0,
    build: Build = NEWEST.name,
    fresh: Annotated[bool, typer.Option(
        "--fresh", help="start over: a new local chain and a new database (the embedded one)")] = False,
) -> None:
    """Everything at once on this machine: the embedded database, a local network with traffic, the
    worker and the API. The chain and the index are kept in the data folder and continued by the next
    run. Stop with Ctrl-C."""
    from flowfi.datadir import dev_lock, token_secret

    settings = load_settings(
        rpc_url=f"http://127.0.0.1:{rpc_port}", port=api_port, poll_interval=min(ledger_interval, 2.0),
        contract_build=build,
    )
    setup_logging(log_format=settings.log_format)
    ensure_port_free(settings.host, settings.port, "--api-port (FLOWFI_PORT; make dev API_PORT=...)")
    ensure_port_free("127.0.0.1", rpc_port, "--rpc-port (make dev RPC_PORT=...)")
    with dev_lock(settings.data_dir):
        if settings.token_signing_secret is None:
            settings = settings.model_copy(update={"v1_jwt_secret": SecretStr(token_secret(settings.data_dir))})
        from flowfi.dev import run_dev  # after the checks: it imports everything
        url = database_of(settings)
        run_dev(settings, url, ledger_interval=ledger_interval, traffic_rate=traffic_rate, build=build, fresh=fresh)


@app.command()
def reset(yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask")] = False) -> None:
    """Delete the local network's chain and the embedded database of the data folder (FLOWFI_DATA_DIR):
    the next `flowfi dev` starts over. Asks first."""
    import shutil

    from flowfi.datadir import chain_folder, dev_running
    from indexer import embedded
    from indexer.database import embedded_folder

    settings = load_settings()
    data_dir = settings.data_dir
    if dev_running(data_dir):
        raise Problem(f"`flowfi dev` is running on {data_dir}: stop it first (Ctrl-C where it runs), then run "
                      "`flowfi reset` again")
    pgdata = embedded_folder(data_dir)
    if embedded.stop_if_abandoned(pgdata):
        typer.echo(f"stopped the embedded database in {pgdata}: the process that ran it was killed")
    if embedded.server_pid(pgdata) is not None:
        raise Problem(f"the embedded database in {pgdata} is in use (`flowfi psql`, `serve` or `index`?): stop what "
                      "uses it, then run `flowfi reset` again")
    found = [folder for folder in (chain_folder(data_dir), pgdata) if folder.exists()]
    if not found:
        typer.echo(f"nothing to delete: {data_dir} holds no local chain and no database")
        return
    listed = " and ".join(str(folder) for folder in found)
    if not yes and not typer.confirm(f"Delete {listed}?", default=False):
        typer.echo("nothing deleted")
        raise typer.Exit(1)
    for folder in found:
        shutil.rmtree(folder)
    typer.echo(f"deleted {listed}: the next `flowfi dev` starts a new chain and a new database")


# The query parameter a refusal names -> the `flowfi tail` flag that sets it.
TAIL_FLAGS = {"streams": "--streams", "users": "--users", "types": "--types", "all": "--all"}


@app.command()
def tail(
    url: Annotated[str | None, typer.Option(
        help="the API's base URL [default: http://<FLOWFI_HOST>:<FLOWFI_PORT>]", show_default=False)] = None,
    streams: Annotated[str, typer.Option(help="comma-separated stream ids")] = "",
    users: Annotated[str, typer.Option(help="comma-separated G.../C... addresses")] = "",
    types: Annotated[str, typer.Option(help="comma-separated event types, e.g. stream.created")] = "",
    all_events: Annotated[bool, typer.Option("--all", help="every event (what no filter means)")] = False,
    since: Annotated[str | None, typer.Option(help="replay the events after this event id first")] = None,
    decimals: Annotated[int, typer.Option(
        help="decimal places of amounts whose token's decimals the index does not know")] = 7,
) -> None:
    """Print live events in the terminal, one line each; resumes by itself after a drop. With no filter,
    every event."""
    from api.client import ResumeRejected, SubscribeError, SubscriptionRejected
    from api.tail import tail as run_tail

    if url is None:
        settings = load_settings()
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        url = f"http://[{host}]:{settings.port}" if ":" in host else f"http://{host}:{settings.port}"

    def split(text: str) -> list[str]:
        return [part.strip() for part in text.split(",") if part.strip()]

    if all_events and (streams or users):
        typer.secho("--all takes every event: give it without --streams and --users, or drop it", fg="red", err=True)
        raise typer.Exit(2)
    if not (streams or users or types or all_events):
        all_events = True
    if since is not None and since != "0" and not ids.PATTERN.fullmatch(since):
        typer.secho(f"--since {since[:80]!r} is not an event id (like 0000000012884905984-0000000000; 0 replays "
                    "from the first event)", fg="red", err=True)
        raise typer.Exit(2)
    try:
        asyncio.run(run_tail(url, streams=split(streams), users=split(users), types=split(types),
                             all=all_events, last_event_id=since, decimals=decimals, url_flag="--url"))
    except ResumeRejected as exc:
        raise Problem(f"the server has no event {since} to resume after: run again without --since (live from "
                      f"now), or with the id of one of its events ({url}/events lists them)") from exc
    except SubscriptionRejected as exc:
        flag = TAIL_FLAGS.get(exc.parameter or "", "--streams, --users, --types or --all")
        raise Problem(f"the server refused the filter: {exc.message}; check {flag}") from exc
    except SubscribeError as exc:  # e.g. an expired access token
        raise Problem(str(exc)) from exc


@app.command("db-url")
def db_url(database_url: DatabaseUrl = None) -> None:
    """Print the database's URL (for psql, notebooks, BI tools): DATABASE_URL's, else the embedded
    server's, which runs while `flowfi dev` (or `flowfi psql`) does."""
    from indexer import embedded
    from indexer.database import embedded_folder

    settings = load_settings(database_url=database_url)
    if settings.database_url is not None:
        typer.echo(settings.database_url.get_secret_value())
        return
    url = embedded.url_of(embedded_folder(settings.data_dir))
    if url is None:
        raise Problem(f"the embedded database in {settings.data_dir} is not running: start `flowfi dev`, or open "
                      "it with `flowfi psql`, which starts it")
    typer.echo(url)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def psql(
    ctx: typer.Context,
    write: Annotated[bool, typer.Option(
        "--write", help="allow changes: without it the session's transactions are read-only (a guard against "
                        "accidents, not a permission)")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Open psql on the database (the embedded one is started, and migrated, if `flowfi dev` is not
    running), read-only unless --write. Further arguments go to psql, e.g. `flowfi psql -c 'SELECT
    count(*) FROM events'`."""
    import shutil

    from indexer import embedded

    settings = load_settings(database_url=database_url)
    setup_logging(log_format=settings.log_format)
    url = database_of(settings, schema=False)
    found = shutil.which("psql")
    program = str(embedded.psql_path()) if embedded.installed() else found
    if program is None:
        raise Problem("psql is not installed: install PostgreSQL's client (Debian: apt-get install postgresql-client)")
    sys.exit(run_in_foreground([program, with_option(url, "default_transaction_read_only", "off" if write else "on"),
                                *ctx.args]))


def with_option(url: str, name: str, value: str) -> str:
    """`url` with a server setting for its sessions, after the options the URL gives (else PGOPTIONS's,
    which libpq reads only where the URL gives none)."""
    from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = [options for key, options in query if key == "options"] or [os.environ.get("PGOPTIONS", "")]
    options = " ".join([*filter(None, given), f"-c {name}={value}"])
    query = [(key, given) for key, given in query if key != "options"] + [("options", options)]
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


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


@lake_app.command("events")
def lake_events(
    source: Annotated[str, typer.Argument(
        metavar="SOURCE", help="a data lake root (a folder, s3://bucket/path or https://...), one of its objects, or a "
                               "file of LedgerCloseMeta", show_default=False)],
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
