"""The `flowfi` command as a person meets it: `flowfi dev` stops cleanly on every signal that ends a
terminal session, leaving no database server behind; problems are one line that says what to do; and
`flowfi lake events` prints what getEvents would."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from flowfi.cli import app
from indexer.database import alembic_config, asyncpg_dsn
from indexer.lake import read_ledgers
from tests.commands import FLOWFI, environment, free_port, run, start_dev
from tests.conftest import with_database
from tests.lake_files import DATALAKE, FEES, TESTBUCKET, decompressed, ledger_spans
from tests.servers import leftover_servers
from tests.serving import running_app


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.slow
def test_flowfi_dev_stops_with_its_database_on_sighup_sigterm_and_sigint(tmp_path: Path) -> None:
    signals = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
    with ThreadPoolExecutor(len(signals)) as pool:  # three at once, each on its own data folder
        started = list(pool.map(lambda sig: start_dev(tmp_path / sig.name), signals))
    time.sleep(1.5)  # a few ledgers indexed
    for sig, (process, _) in zip(signals, started, strict=True):
        process.send_signal(sig)
    for sig, (process, lines) in zip(signals, started, strict=True):
        out, _ = process.communicate(timeout=60)
        lines += out.splitlines()
        assert process.returncode == 0, f"{sig.name}: exit {process.returncode}\n" + "\n".join(lines)
        assert leftover_servers(tmp_path / sig.name) == [], f"{sig.name} left the database running"
        assert sum(line.endswith("flowfi.dev: stopping") for line in lines) == 1
        assert not any("Traceback" in line or "Started server process" in line for line in lines), "\n".join(lines)


def test_a_busy_port_is_one_line_naming_the_port_and_the_flag(tmp_path: Path, busy_port: int) -> None:
    result = run("dev", "--api-port", str(busy_port), "--rpc-port", str(free_port()), data_dir=tmp_path)
    assert result.returncode == 1
    refusal = [f"port {busy_port} on 127.0.0.1 is already in use (another flowfi?); choose another port with "
               "--api-port (FLOWFI_PORT; make dev API_PORT=...)"]
    assert result.stderr.splitlines() == refusal
    from_the_environment = subprocess.run([*FLOWFI, "dev", "--rpc-port", str(free_port())], capture_output=True,
                                          text=True, timeout=60,
                                          env={**environment(tmp_path), "FLOWFI_PORT": str(busy_port)})
    assert from_the_environment.stderr.splitlines() == refusal
    assert leftover_servers(tmp_path) == [], "nothing was started"
    result = run("serve", "--port", str(busy_port), data_dir=tmp_path)
    assert result.stderr.splitlines() == [
        f"port {busy_port} on 127.0.0.1 is already in use (another flowfi?); choose another port with --port "
        "(FLOWFI_PORT)"
    ]


def test_a_database_that_refuses_the_connection_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    url = f"postgresql://flowfi:secret@127.0.0.1:{port}/flowfi"
    for command in (["migrate"], ["index"], ["serve", "--port", str(free_port())]):
        result = run(*command, "--database-url", url, data_dir=tmp_path)
        assert result.returncode == 1, command
        assert len(result.stderr.splitlines()) == 1, result.stderr
        line = result.stderr.strip()
        assert line.startswith(f"cannot connect to the database at postgresql://flowfi:***@127.0.0.1:{port}/flowfi (")
        assert line.endswith("is the server running, and is DATABASE_URL (--database-url) right?")


def test_a_database_that_does_not_exist_is_one_line_saying_to_create_it(tmp_path: Path, server_url: str) -> None:
    url = with_database(server_url, f"flowfi_absent_{os.getpid()}")
    for command in (["migrate"], ["index"], ["serve", "--port", str(free_port())]):
        result = run(*command, "--database-url", url, data_dir=tmp_path)
        assert result.returncode == 1, command
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stderr.strip().endswith(
            "does not exist): create it (createdb, or CREATE DATABASE in psql), then run `flowfi migrate`; or set "
            "DATABASE_URL (--database-url) to one that exists"), result.stderr


@pytest.mark.slow
async def test_a_database_without_the_schema_is_one_line_saying_migrate(tmp_path: Path, server_url: str) -> None:
    name = f"flowfi_empty_{os.getpid()}"
    head = ScriptDirectory.from_config(alembic_config(server_url)).get_current_head()
    admin = await asyncpg.connect(asyncpg_dsn(with_database(server_url, "postgres")))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = with_database(server_url, name)
        for command in (["index"], ["serve", "--port", str(free_port())]):
            result = run(*command, "--database-url", url, data_dir=tmp_path)
            assert result.returncode == 1
            assert len(result.stderr.splitlines()) == 1, result.stderr
            line = result.stderr.strip()
            assert line.endswith(f"has no flowfi schema, this version needs {head}: run `flowfi migrate`"), line
        migrated = run("migrate", "--database-url", url, data_dir=tmp_path)
        assert migrated.returncode == 0 and migrated.stdout == f"created the database schema (revision {head})\n"
        again = run("migrate", "--database-url", url, data_dir=tmp_path).stdout
        assert again == f"the database schema is up to date (revision {head})\n"
        newer = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await newer.execute("UPDATE alembic_version SET version_num = '9999_from_a_newer_flowfi'")
        finally:
            await newer.close()
        for command in (["migrate"], ["index"]):
            result = run(*command, "--database-url", url, data_dir=tmp_path)
            assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
            assert result.stderr.strip().endswith(
                f"is at revision 9999_from_a_newer_flowfi, which this flowfi does not know (its newest is {head}): "
                "a newer flowfi migrated it; run that one, or give this one a database of its own"), result.stderr
        assert run("migrate", data_dir=tmp_path).stdout == f"created the database schema (revision {head})\n"
        assert run("migrate", data_dir=tmp_path).stdout == f"the database schema is up to date (revision {head})\n"
        assert "traceback" in run("--debug", "serve", "--database-url", url + "x", data_dir=tmp_path).stderr.lower()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _first_line_of_index(rpc_url: str, database_url: str, tmp_path: Path) -> tuple[str, int, str]:
    """`flowfi index` against `rpc_url`: the first line it logs, then its exit code and output after a SIGTERM."""
    process = subprocess.Popen(
        [*FLOWFI, "index", "--rpc-url", rpc_url, "--database-url", database_url], env=environment(tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=20)
    return line, process.returncode, out


def test_an_unreachable_rpc_says_which_setting_to_check_and_stops_on_sigterm(tmp_path: Path,
                                                                              database_url: str) -> None:
    rpc_url = f"http://127.0.0.1:{free_port()}"
    line, code, out = _first_line_of_index(rpc_url, database_url, tmp_path)
    assert f"getNetwork failed (getNetwork: cannot reach {rpc_url} (" in line
    assert line.count("?") == 1 and "is that its URL (--rpc-url, FLOWFI_RPC_URL)?" in line, line
    assert code == 0 and "Traceback" not in out


def test_a_server_that_is_not_stellar_rpc_is_named_with_the_setting_that_points_at_it(
    tmp_path: Path, database_url: str
) -> None:
    async def web_page(scope: dict, receive: object, send: Callable[[dict], Awaitable[None]]) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": b"<html><body>a web site</body></html>"})

    with running_app(web_page, lifespan="off") as url:
        line, _, _ = _first_line_of_index(url, database_url, tmp_path)
    assert "getNetwork failed (getNetwork: the answer is not JSON" in line, line
    assert line.rstrip().endswith(f"; is FLOWFI_RPC_URL (--rpc-url) a Stellar RPC server? it is {url}"), line


def test_flowfi_psql_reads_unless_asked_to_write(tmp_path: Path, database_url: str) -> None:
    """A guard against an accident in an analyst's session (the embedded server's user is a superuser),
    not a permission: --write opens it for changes."""
    refused = run("psql", "--database-url", database_url, "-c", "DELETE FROM streams", data_dir=tmp_path)
    assert refused.returncode != 0 and "cannot execute DELETE in a read-only transaction" in refused.stderr
    read = run("psql", "--database-url", database_url, "-At", "-c", "SELECT count(*) FROM streams",
               data_dir=tmp_path)
    assert (read.returncode, read.stdout) == (0, "0\n"), read.stderr
    written = run("psql", "--write", "--database-url", database_url, "-c", "DELETE FROM streams", data_dir=tmp_path)
    assert (written.returncode, written.stdout) == (0, "DELETE 0\n"), written.stderr
    # options of the URL's own (which libpq takes over PGOPTIONS) keep the guard, and --write lifts one given there
    joined = "&" if "?" in database_url else "?"
    with_options = f"{database_url}{joined}options=-c%20statement_timeout%3D0"
    refused = run("psql", "--database-url", with_options, "-c", "DELETE FROM streams", data_dir=tmp_path)
    assert "cannot execute DELETE in a read-only transaction" in refused.stderr, (refused.stdout, refused.stderr)
    kept = subprocess.run([*FLOWFI, "psql", "--database-url", database_url, "-At", "-c", "SHOW statement_timeout"],
                          env={**environment(tmp_path), "PGOPTIONS": "-c statement_timeout=1234"},
                          capture_output=True, text=True, timeout=60)
    assert kept.stdout == "1234ms\n", kept.stderr  # PGOPTIONS's own settings still apply
    read_only_url = f"{database_url}{joined}options=-c%20default_transaction_read_only%3Don"
    written = run("psql", "--write", "--database-url", read_only_url, "-c", "DELETE FROM streams", data_dir=tmp_path)
    assert (written.returncode, written.stdout) == (0, "DELETE 0\n"), written.stderr


@pytest.mark.slow
def test_db_url_prints_the_embedded_servers_url_while_it_runs(tmp_path: Path) -> None:
    result = run("db-url", data_dir=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"the embedded database in {tmp_path} is not running: start `flowfi dev`, or open it with `flowfi psql`, "
        "which starts it"
    ]
    result = run("psql", "-At", "-c", "SELECT count(*) FROM streams", data_dir=tmp_path)
    assert (result.returncode, result.stdout) == (0, "0\n"), result.stderr
    assert leftover_servers(tmp_path) == [], "psql started the server, and stopped it when it was done"
    process, _ = start_dev(tmp_path)
    try:
        result = run("db-url", data_dir=tmp_path)
        url = result.stdout.strip()
        assert url.startswith("postgresql://postgres:@/postgres?host=")
        assert result.stderr == ""
        result = subprocess.run([sys.executable, "-c", (
            "import asyncio, asyncpg, sys\n"
            "async def main():\n"
            "    conn = await asyncpg.connect(sys.argv[1])\n"
            "    print(await conn.fetchval('SELECT count(*) FROM indexer_cursor'))\n"
            "asyncio.run(main())\n"), url], capture_output=True, text=True, timeout=30)
        assert result.stdout.strip() in ("0", "1"), result.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    assert leftover_servers(tmp_path) == []


def test_make_dev_passes_its_ports_to_flowfi_dev() -> None:
    result = subprocess.run(["make", "-n", "dev", "API_PORT=8090", "RPC_PORT=8010"], cwd=Path(__file__).parent.parent,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "flowfi dev --api-port 8090 --rpc-port 8010" in result.stdout


def test_make_browser_looks_for_chromium_where_the_page_tests_do(tmp_path: Path) -> None:
    """CHROMIUM_PATH first, then chromium on PATH; only without either is Debian's package installed."""
    tools = tmp_path / "bin"
    tools.mkdir()
    make = shutil.which("make")
    assert make is not None
    installs = tmp_path / "apt-get-ran"
    (tools / "apt-get").write_text(f"#!/bin/sh\necho \"$@\" >> {installs}\nexit 1\n")
    stub = tmp_path / "chrome"
    stub.write_text("#!/bin/sh\n")
    for executable in (tools / "apt-get", stub):
        executable.chmod(0o755)

    def make_browser(**env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([make, "--no-print-directory", "browser"], cwd=Path(__file__).parent.parent,
                              env={"PATH": str(tools), **env}, capture_output=True, text=True, timeout=30)

    for wrong in (tmp_path / "nowhere", tools):
        missing = make_browser(CHROMIUM_PATH=str(wrong))
        assert missing.returncode != 0 and f"CHROMIUM_PATH={wrong} is not an executable file" in missing.stderr
    assert make_browser(CHROMIUM_PATH=str(stub)).returncode == 0
    assert not installs.exists()
    assert make_browser().returncode != 0 and installs.read_text().startswith("update")



def _flowfi(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FLOWFI, *args], capture_output=True, text=True, timeout=120)


def test_lake_events_prints_each_event_as_getevents_returns_it() -> None:
    done = _flowfi("lake", "events", str(DATALAKE / FEES))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    expected = [e.rpc_json() for ledger in read_ledgers(str(DATALAKE / FEES)) for e in ledger.events]
    assert [json.loads(line) for line in lines] == expected
    assert len(lines) == 93
    assert lines[0].startswith('{"type":"contract","ledger":2,"ledgerClosedAt":"1970-01-01T00:00:00Z","contractId":"C')


def test_lake_events_filters_by_contract_and_ledger() -> None:
    everything = [json.loads(line) for line in _flowfi("lake", "events", str(DATALAKE / FEES)).stdout.splitlines()]
    contract = everything[-1]["contractId"]
    done = _flowfi("lake", "events", str(DATALAKE / FEES), "--contract", contract, "--start", "3", "--end", "20")
    assert done.returncode == 0, done.stderr
    chosen = [json.loads(line) for line in done.stdout.splitlines()]
    assert chosen == [e for e in everything if e["contractId"] == contract and 3 <= e["ledger"] <= 20]
    assert chosen


def test_lake_events_on_a_lake_without_events_prints_nothing() -> None:
    done = _flowfi("lake", "events", str(TESTBUCKET))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_lake_events_errors_are_one_line_that_says_what_to_do() -> None:
    for args, words in [
        (["/no/such/lake"], "does not exist: give a data lake root"),
        ([str(DATALAKE / FEES), "--contract", "CNOTACONTRACT"], "is not a contract address"),
        ([str(TESTBUCKET), "--start", "5000"], "ends at ledger 999"),
    ]:
        done = _flowfi("lake", "events", *args)
        assert done.returncode == 1
        assert done.stdout == ""
        assert len(done.stderr.strip().splitlines()) == 1 and words in done.stderr
        assert "Traceback" not in done.stderr


def test_a_truncated_file_prints_its_whole_ledgers_then_names_where_it_ends(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.xdr"
    truncated.write_bytes((DATALAKE / FEES).read_bytes()[:-10])
    done = _flowfi("lake", "events", str(truncated))
    assert done.returncode == 1
    last_record = ledger_spans(decompressed(FEES))[-1][0] - 4
    assert done.stderr.strip().splitlines() == [f"{truncated}: the record at byte {last_record} is truncated (10 "
                                                "bytes missing); the file is incomplete"]
    whole = [e.rpc_json() for ledger in list(read_ledgers(str(DATALAKE / FEES)))[:-1] for e in ledger.events]
    assert [json.loads(line) for line in done.stdout.splitlines()] == whole


def words(output: str) -> str:
    """The text of a rich panel, its frame and line breaks taken out."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


def test_the_local_network_commands_take_a_build_of_the_contract_and_refuse_others() -> None:
    runner = CliRunner()
    for command in ("devnet", "dev"):
        refused = runner.invoke(app, [command, "--build", "v1"])
        assert refused.exit_code == 2
        assert "'v1' is not a build of the contract; one of 8723543, c9f5d2e" in words(refused.output)
        helped = runner.invoke(app, [command, "--help"])
        assert "the FlowFi contract's build: 8723543 or c9f5d2e" in words(helped.output)


def test_out_of_range_stream_ids_and_unwritable_files_are_refused_before_any_work(tmp_path: Path) -> None:
    runner = CliRunner()
    for stream in ("-1", str(2**64)):
        refused = runner.invoke(app, ["verify", "--stream", stream])
        assert refused.exit_code == 2
        assert "Invalid value for '--stream'" in words(refused.output)
    for flags in (["--streams", "1"], ["--users", "GBXQ2ZVXJ5ZK3ODHDDSWYVBNQM6FUJXFQOHNHZ3NL7PBGS6CIY7K7KDA"]):
        refused = runner.invoke(app, ["tail", "--all", *flags])
        assert refused.exit_code == 2
        assert "--all takes every event: give it without --streams and --users" in words(refused.output)
    refused = runner.invoke(app, ["tail", "--url", "http://127.0.0.1:9", "--since", "12884905984"])
    assert refused.exit_code == 2
    assert "--since '12884905984' is not an event id (like 0000000012884905984-0000000000" in words(refused.output)
    for ledger in ("0", "-3"):
        refused = runner.invoke(app, ["index", "--restart-from-ledger", ledger])
        assert refused.exit_code == 2
        assert "Invalid value for '--restart-from-ledger'" in words(refused.output)
    for out, problem in [(tmp_path, f"{tmp_path} is a directory: give --out a file's path"),
                         (tmp_path / "missing" / "SCHEMA.md", f"{tmp_path / 'missing'} is not a directory")]:
        refused = runner.invoke(app, ["dictionary", "--out", str(out)])
        assert refused.exit_code == 2
        assert refused.output.strip().startswith(problem) and len(refused.output.strip().splitlines()) == 1


def test_version_prints_the_installed_packages_version() -> None:
    from importlib.metadata import version

    done = CliRunner().invoke(app, ["--version"])
    assert done.exit_code == 0 and done.output == f"flowfi {version('flowfi-indexer')}\n"


def test_help_paragraphs_are_rewrapped_to_the_terminal() -> None:
    """The commands' docstrings are wrapped at 120 columns in the source; on an 80-column terminal each
    paragraph is wrapped again as a whole, not cut at the source's line ends."""
    done = CliRunner().invoke(app, ["--help"], terminal_width=80, env={"COLUMNS": "80"})
    lines = [line.strip() for line in done.output.splitlines()]
    assert "connection or lacks the schema, a" not in lines  # a source line's end, left short before
    assert "embedded database included." in words(done.output)


def test_help_gives_a_value_option_its_type_and_a_flag_none() -> None:
    done = CliRunner().invoke(app, ["index", "--help"], terminal_width=120, env={"COLUMNS": "120"})
    lines = done.output.splitlines()
    line = {name: next(line for line in lines if name in line) for name in ("--rpc-url", "--verbose")}
    assert re.search(r"<str>|TEXT", line["--rpc-url"])
    assert not re.search(r"<bool>|BOOLEAN", line["--verbose"]), line["--verbose"]


def test_a_refused_setting_is_named_as_it_was_given_a_flag_or_a_variable() -> None:
    runner = CliRunner()
    flag = runner.invoke(app, ["index", "--start-ledger", "-3"], env={"FLOWFI_START_LEDGER": None})
    assert flag.exit_code == 2 and flag.output.startswith("invalid --start-ledger: "), flag.output
    variable = runner.invoke(app, ["index"], env={"FLOWFI_START_LEDGER": "-3"})
    assert variable.exit_code == 2 and variable.output.startswith("invalid setting FLOWFI_START_LEDGER: ")


def test_debug_shows_the_traceback_of_a_problem_said_in_one_line(tmp_path: Path) -> None:
    from indexer.export import ExportError

    shown = CliRunner().invoke(app, ["--debug", "dictionary", "--out", str(tmp_path)])
    assert isinstance(shown.exception, ExportError) and f"{tmp_path} is a directory" in str(shown.exception)
    said = CliRunner().invoke(app, ["dictionary", "--out", str(tmp_path)])
    assert said.exit_code == 2 and not isinstance(said.exception, ExportError)


def test_a_ctrl_c_while_the_commands_load_ends_quietly() -> None:
    """A Ctrl-C a moment after starting a command lands in the imports of its modules: the same quiet end as
    one a moment later, not a traceback."""
    interrupted_import = (
        "import sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'flowfi.cli':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "import flowfi\n"
        "flowfi.main()\n")
    done = subprocess.run([sys.executable, "-c", interrupted_import], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")


def test_a_commands_one_line_problem_is_a_json_log_line_where_the_logs_are_json(tmp_path: Path) -> None:
    """A log collector reading stderr gets the reason a command stopped in the logs' own format."""
    env = {**environment(tmp_path), "FLOWFI_LOG_FORMAT": "json",
           "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"}
    done = subprocess.run([*FLOWFI, "index"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    last = json.loads(done.stderr.strip().splitlines()[-1])
    assert last["level"] == "error" and last["message"].startswith("cannot connect to the database"), last
