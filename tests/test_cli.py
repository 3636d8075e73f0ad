"""The `flowfi` command line: `flowfi lake events` run as a user runs it (a separate process), and the
local network's options."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from flowfi.cli import app
from indexer.lake import read_ledgers
from tests.lake_files import DATALAKE, FEES, TESTBUCKET, decompressed, ledger_spans


def _flowfi(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flowfi", *args], capture_output=True, text=True, timeout=120)


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
