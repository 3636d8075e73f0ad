"""`flowfi tail`'s lines: exact amounts, shortened parties, and the live loop over a dropping server."""

from __future__ import annotations

import asyncio
import io
import os
import sys

import pytest
from rich.console import Console

from api.client import Event
from api.tail import format_amount, format_event, shorten, tail
from tests.live import live_pipeline
from tests.test_client import flaky_server


@pytest.mark.parametrize(
    ("units", "decimals", "shown"),
    [
        ("125000000", 7, "12.5"),
        ("1", 7, "0.0000001"),
        ("0", 7, "0"),
        ("100000000", 7, "10"),
        ("-25", 2, "-0.25"),
        (str(2**127 - 1), 7, "17014118346046923173168730371588.4105727"),
        ("42", 0, "42"),
    ],
)
def test_amounts_are_exact_decimal_strings(units: str, decimals: int, shown: str) -> None:
    assert format_amount(units, decimals) == shown


def test_shorten_keeps_both_ends() -> None:
    assert shorten("GBXQ2ZVXJ5ZK3ODHDDSWYVBNQM6FUJXFQOHNHZ3NL7PBGS6CIY7K7KDA") == "GBXQ…7KDA"
    assert shorten("short") == "short"


def test_a_withdrawal_line_shows_time_type_stream_parties_and_amount() -> None:
    event = Event("0000000012884905984-0000000001", "stream.withdrawn", {
        "id": "0000000012884905984-0000000001", "type": "stream.withdrawn", "ledger": 3,
        "ledgerClosedAt": "2025-03-01T12:00:05Z", "streamId": "17",
        "sender": "GBXQ2ZVXJ5ZK3ODHDDSWYVBNQM6FUJXFQOHNHZ3NL7PBGS6CIY7K7KDA",
        "recipient": "GC3FWOOLNVZ6Z2CR3RTKNFOHRSSL5UJFLXQIKEDWRWVJ7EKOSFAQQ2LM",
        "amount": "125000000", "timestamp": "1740830405",
    })
    line = format_event(event).plain
    assert line.startswith("2025-03-01 12:00:05  stream.withdrawn")
    assert "#17" in line and "GBXQ…7KDA → GC3F…Q2LM" in line and "amount 12.5" in line


def test_amounts_are_shown_in_their_tokens_decimals_and_symbol_where_the_index_knows_them() -> None:
    data = {"ledgerClosedAt": "2025-03-01T12:00:05Z", "streamId": "17", "amount": "1250"}
    known = format_event(Event("x", "stream.withdrawn", {**data, "tokenSymbol": "EURC", "tokenDecimals": 2})).plain
    assert "amount 12.5 EURC" in known
    unknown = {**data, "tokenSymbol": None, "tokenDecimals": None}
    assert "amount 0.000125" in format_event(Event("x", "stream.withdrawn", unknown)).plain
    assert "amount 1.25" in format_event(Event("x", "stream.withdrawn", unknown), decimals=3).plain


def test_rates_are_per_second_and_a_stream_that_unlocks_in_steps_shows_none() -> None:
    data = {"ledgerClosedAt": "2025-03-01T12:00:05Z", "streamId": "17", "tokenSymbol": "EURC", "tokenDecimals": 2}
    steps = format_event(Event("x", "stream.created", {**data, "ratePerSecond": "0", "depositedAmount": "500"})).plain
    assert "deposited amount 5 EURC" in steps and "rate" not in steps
    modified = format_event(Event("x", "stream.rate_modified", {**data, "oldRatePerSecond": "150",
                                                               "newRatePerSecond": "250"})).plain
    assert "old rate per second 1.5 EURC/s" in modified and "new rate per second 2.5 EURC/s" in modified


def test_a_protocol_line_names_its_addresses_and_fee_rates() -> None:
    event = Event("x", "protocol.fee_config_updated", {
        "ledgerClosedAt": "2025-03-01T12:00:10Z", "admin": "GAAAAAAAAAAAAAAAWHF2",
        "oldTreasury": "GBBBBBBBBBBBBBBBBBB1", "newTreasury": "GCCCCCCCCCCCCCCCCCC2",
        "oldFeeRateBps": 25, "newFeeRateBps": 30,
    })
    line = format_event(event).plain
    assert "admin GAAA…WHF2" in line and "new treasury GCCC…CCC2" in line
    assert "old fee rate 25 bps" in line and "new fee rate 30 bps" in line


async def test_tail_prints_each_event_once_across_drops() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, color_system=None)
    async with flaky_server(12, lambda n: ("events", 5)) as server:
        await tail(server.url, streams=["1"], out=console, limit=12)
    lines = [line for line in buffer.getvalue().splitlines() if "stream.withdrawn" in line]
    assert len(lines) == 12
    printed = buffer.getvalue().splitlines()
    assert printed[0] == f"connected to {server.url}, waiting for matching events"
    assert sum("connection lost" in line for line in printed) >= 2
    assert sum(line == "reconnected, resuming where it left off" for line in printed) >= 2


@pytest.mark.slow
async def test_flowfi_tail_says_it_is_waiting_and_its_refusals_name_its_own_flags(database_url: str) -> None:
    with live_pipeline(database_url) as (_, base_url):
        # with no --url, the API is the one FLOWFI_PORT names, as for `flowfi serve`
        port = base_url.rsplit(":", 1)[1]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "flowfi", "tail", "--all", stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env={**os.environ, "COLUMNS": "200", "FLOWFI_PORT": port})
        assert process.stdout is not None
        try:
            first = await asyncio.wait_for(process.stdout.readline(), 30)
        finally:
            process.terminate()
            await process.wait()
        assert first.decode().strip() == f"connected to http://127.0.0.1:{port}, waiting for matching events"

        async def refusal(*flags: str) -> str:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "flowfi", "tail", "--url", base_url, *flags,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, "COLUMNS": "200"})
            _, err = await asyncio.wait_for(process.communicate(), 30)
            assert process.returncode == 1
            (line,) = err.decode().splitlines()
            return line

        line = await refusal("--types", "stream.nope")
        assert line.startswith("the server refused the filter: ") and line.endswith("; check --types"), line
        unknown = "0000000099999999999-0000000000"
        line = await refusal("--all", "--since", unknown)
        assert line == (f"the server has no event {unknown} to resume after: run again without --since (live from "
                        f"now), or with the id of one of its events ({base_url}/events lists them)")
        assert "EventSource" not in line  # the server's advice is a browser's


def test_later_builds_events_show_their_counts_flags_and_hashes() -> None:
    unlocked = format_event(Event("x", "stream.milestone_unlocked", {
        "ledgerClosedAt": "2025-03-01T12:00:05Z", "streamId": "4", "milestoneId": 2, "amount": "5000000",
        "caller": "GBXQ2ZVXJ5ZK3ODHDDSWYVBNQM6FUJXFQOHNHZ3NL7PBGS6CIY7K7KDA", "timestamp": "1740830405",
    })).plain
    assert "milestone id 2" in unlocked and "amount 0.5" in unlocked and "bps" not in unlocked
    paused = format_event(Event("x", "protocol.paused", {"ledgerClosedAt": "2025-03-01T12:00:05Z",
                                                          "isPaused": True, "admin": None})).plain
    assert "is paused yes" in paused
    upgraded = format_event(Event("x", "protocol.contract_upgraded", {
        "ledgerClosedAt": "2025-03-01T12:00:05Z", "newWasmHash": "ab" * 32, "newVersion": None})).plain
    assert "new wasm hash abab" in upgraded
