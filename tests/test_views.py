"""The analysts' views, against answers computed without them: the contract model's own state on the
devnet's traffic (two tokens, five weeks), the contract's claimable formula (indexer/accrual.py) on
streams of every schedule made by hand, and the README's examples run through psql."""

from __future__ import annotations

import asyncio
import re
import subprocess
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Context, Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from api.rest import claimable_at
from devnet import FlowFiContract, claimable, running_devnet
from indexer.accrual import FINISHED, LOCKED
from indexer.database import asyncpg_dsn
from indexer.ids import event_id
from tests.analytics import CONTRACT, Flows, RecordingTraffic, insert, psql, set_ledger_time, stream_row
from tests.conftest import _admin, with_database
from tests.live import index_now

README = Path(__file__).parent.parent / "README.md"
I128_MAX, U64_MAX = 2**127 - 1, 2**64 - 1
EXACT = Context(prec=1000)
DECIMALS_OF_FIRST_TOKEN = 7


@dataclass
class Indexed:
    url: str
    recording: RecordingTraffic
    contract: FlowFiContract
    now: datetime  # the newest ledger close time the index has seen


@pytest.fixture(scope="module")
async def indexed(server_url: str, template_database: str) -> AsyncIterator[Indexed]:
    """The devnet's traffic, indexed: five weeks of ledgers six hours apart, then minutes of ledgers five
    seconds apart (streams still running), from two populations with a token each. The first token's
    metadata is known, the second's decimals are not."""
    name = f"flowfi_views_{uuid.uuid4().hex[:12]}"
    await _admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    url = with_database(server_url, name)
    recording = RecordingTraffic(seed=7)
    with running_devnet() as devnet:
        devnet.chain.generate_history(1500, traffic=recording, tx_per_ledger=8, seconds_per_ledger=6 * 3600)
        devnet.chain.generate_history(400, traffic=recording, tx_per_ledger=8, seconds_per_ledger=5)
        recording.settle(devnet.chain.contract)
        await index_now(devnet, url)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        first, second = recording.tokens
        # the worker wrote both tokens' metadata; make one unknown, as a token without any would be
        await conn.execute("INSERT INTO tokens (address, name, symbol, decimals, source) VALUES "
                           "($1, 'First Token', 'FIRST', $2, 'manual'), ($3, NULL, 'SECOND', NULL, 'manual') "
                           "ON CONFLICT (address) DO UPDATE SET name = excluded.name, symbol = excluded.symbol, "
                           "decimals = excluded.decimals, source = excluded.source",
                           first, DECIMALS_OF_FIRST_TOKEN, second)
        now = await conn.fetchval("SELECT max(last_ledger_closed_at) FROM indexer_cursor")
    finally:
        await conn.close()
    yield Indexed(url, recording, devnet.chain.contract, now)
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def reader(indexed: Indexed) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(asyncpg_dsn(indexed.url))
    yield conn
    await conn.close()


def human(raw: int | Decimal, decimals: int | None) -> Decimal | None:
    return None if decimals is None else Decimal(raw).scaleb(-decimals, EXACT)


# --- on the devnet's traffic ---------------------------------------------------------------------------


async def test_daily_flows_equal_what_the_contract_moved_each_day_per_token(
        indexed: Indexed, reader: asyncpg.Connection) -> None:
    rows = await reader.fetch("SELECT * FROM daily_flows")
    got = {(row["day"], row["token"]): Flows(row["streams_created"], int(row["deposited"]), int(row["withdrawn"]),
                                             int(row["refunded"]), int(row["fees"])) for row in rows}
    expected = {key: flows for key, flows in indexed.recording.flows.items() if flows != Flows()}
    assert got == expected
    assert len({day for day, _ in got}) >= 30 and {token for _, token in got} == set(indexed.recording.tokens)
    # the traffic has what makes the withdrawn column hard: cancellations of streams already withdrawn from
    cancelled_after_withdrawals = await reader.fetchval(
        "SELECT count(*) FROM events c WHERE c.kind = 'stream.cancelled' AND c.amount_withdrawn > 0 AND EXISTS "
        "(SELECT FROM events w WHERE w.kind = 'stream.withdrawn' AND w.stream_id = c.stream_id AND w.id < c.id)")
    assert cancelled_after_withdrawals >= 5
    assert sum(flows.refunded for flows in got.values()) > 0 and sum(flows.fees for flows in got.values()) > 0


async def test_stream_balances_follow_the_contract_at_the_newest_ledger_time(
        indexed: Indexed, reader: asyncpg.Connection) -> None:
    streams = {int(row["stream_id"]): row for row in await reader.fetch("SELECT * FROM streams")}
    balances = await reader.fetch("SELECT * FROM stream_balances")
    assert {int(row["stream_id"]) for row in balances} == set(streams)
    closed = set(streams) - set(indexed.contract.streams)  # close_stream deleted their storage
    assert set(indexed.contract.streams) <= set(streams) and closed
    assert {streams[stream_id]["status"] for stream_id in closed} == {"closed"}
    now = int(indexed.now.timestamp())
    running = 0
    for row in balances:
        if int(row["stream_id"]) in closed:
            assert (row["claimable"], row["remaining"], row["locked"]) == (0, 0, 0)
            continue
        stream = indexed.contract.streams[int(row["stream_id"])]
        assert row["as_of"] == indexed.now
        expected = claimable(stream, now) if stream.is_active else 0
        assert row["claimable"] == expected == claimable_at(streams[int(row["stream_id"])], now), row["stream_id"]
        left = stream.deposited_amount - stream.withdrawn_amount if stream.is_active else 0
        assert (row["remaining"], row["locked"]) == (left, left - expected)
        running += 0 < expected < left
    assert running >= 10, "the traffic leaves streams part-way through"


async def test_human_amounts_are_exact_and_null_until_the_decimals_are_known(
        indexed: Indexed, reader: asyncpg.Connection) -> None:
    first, second = indexed.recording.tokens
    rows = await reader.fetch("SELECT * FROM stream_balances")
    assert {row["token"] for row in rows} == {first, second}
    for row in rows:
        decimals = DECIMALS_OF_FIRST_TOKEN if row["token"] == first else None
        assert (row["symbol"], row["decimals"]) == ("FIRST" if row["token"] == first else "SECOND", decimals)
        for name in ("deposited", "withdrawn", "refunded", "fees_paid", "claimable", "locked", "remaining"):
            assert row[f"{name}_human"] == human(row[name], decimals)
            if decimals is not None:
                assert row[f"{name}_human"].as_tuple().exponent == -decimals  # 12.5000000, not 12.5
    for row in await reader.fetch("SELECT * FROM daily_flows"):
        decimals = DECIMALS_OF_FIRST_TOKEN if row["token"] == first else None
        assert [row[f"{name}_human"] for name in ("deposited", "withdrawn", "refunded", "fees")] == [
            human(row[name], decimals) for name in ("deposited", "withdrawn", "refunded", "fees")]
    extremes = await reader.fetch(
        "SELECT a, d, token_amount(a, d) AS t FROM unnest($1::numeric[]) a, unnest($2::bigint[]) d",
        [I128_MAX, -(2**127), U64_MAX, 1, 0], [0, 7, 18, 38, 255])
    assert all(row["t"] == human(row["a"], row["d"]) for row in extremes)
    assert await reader.fetchval("SELECT token_amount(5, 256)") is None


async def test_positions_are_each_address_open_streams_per_token(
        indexed: Indexed, reader: asyncpg.Connection) -> None:
    now = int(indexed.now.timestamp())
    expected: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for stream in indexed.contract.streams.values():
        if not stream.is_active:
            continue
        accrued = claimable(stream, now)
        locked = stream.deposited_amount - stream.withdrawn_amount - accrued
        out, into = expected[(stream.sender, stream.token_address)], expected[(stream.recipient, stream.token_address)]
        out[0] += 1
        out[1] += locked
        into[2] += 1
        into[3] += locked
        into[4] += accrued
    rows = await reader.fetch("SELECT * FROM positions")
    got = {(row["address"], row["token"]): [row["streams_out"], int(row["streaming_out"]), row["streams_in"],
                                            int(row["streaming_in"]), int(row["claimable"])] for row in rows}
    assert got == dict(expected)
    assert len(got) >= 20


async def test_protocol_fees_are_per_token_and_the_treasury_that_received_them(
        indexed: Indexed, reader: asyncpg.Connection) -> None:
    rows = await reader.fetch("SELECT * FROM protocol_fees")
    assert {(row["token"], row["treasury"]): int(row["fees"]) for row in rows} == dict(indexed.recording.fees_to)
    assert len({row["treasury"] for row in rows}) >= 2, "the traffic changes the treasury"
    assert sum(row["fee_events"] for row in rows) == await reader.fetchval(
        "SELECT count(*) FROM events WHERE kind = 'stream.fee_collected'")


async def test_the_readme_examples_run_through_psql_and_answer(indexed: Indexed, reader: asyncpg.Connection) -> None:
    blocks = re.findall(r"```sql\n(.*?)```", README.read_text(), re.DOTALL)
    assert len(blocks) >= 5
    address = await reader.fetchval("SELECT address FROM positions ORDER BY claimable DESC LIMIT 1")
    for block in blocks:
        done = await asyncio.to_thread(
            subprocess.run,
            [psql(), indexed.url, "-v", "ON_ERROR_STOP=1", "-v", f"address={address}",
             "--no-psqlrc", "-A", "-t", "-f", "-"],
            input=block, capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0, (block, done.stderr)
        assert done.stdout.strip(), f"no rows from:\n{block}"


# --- hand-made streams and events ----------------------------------------------------------------------

T = 4_000_000_000  # the hand-made streams' ledger times are around this (2096: later than any server clock)


def _schedules() -> list[dict[str, Any]]:
    """Streams of every schedule, each with what makes its formula differ from the others'."""
    updated = datetime.fromtimestamp(T - 10_000, UTC)
    rows = [
        {"schedule": "linear", "rate_per_second": 7, "deposited": 7_000, "last_update_time": T},
        {"schedule": "linear", "rate_per_second": 7, "deposited": 7_000, "withdrawn": 700, "last_update_time": T + 100,
         "cliff_time": T + 300},
        {"schedule": "linear", "status": "paused", "rate_per_second": 7, "deposited": 7_000, "last_update_time": T,
         "paused_at": T + 200},
        {"schedule": "linear", "rate_per_second": I128_MAX // 2, "deposited": I128_MAX, "withdrawn": 5,
         "last_update_time": T},  # the product passes i128: everything left
        {"schedule": "steps", "rate_per_second": 0, "deposited": 600, "step_times": [T + 100, LOCKED, T + 200],
         "step_amounts": [100, 200, 300]},  # a locked step before an unlocked one stops the count
        {"schedule": "steps", "rate_per_second": 0, "deposited": 600, "withdrawn": 150,
         "step_times": [T + 100, T + 200, T + 300], "step_amounts": [100, 200, 300]},
        {"schedule": "steps", "rate_per_second": 0, "deposited": 300, "conditional": True,
         "step_times": [LOCKED, LOCKED], "step_amounts": [100, 200]},
        {"schedule": "steps", "status": "paused", "rate_per_second": 0, "deposited": 600, "paused_at": T + 150,
         "step_times": [T + 100, T + 200], "step_amounts": [100, 500]},
        {"schedule": "hybrid", "rate_per_second": 3, "deposited": 1_000, "cliff_time": T + 200, "cliff_amount": 400},
        {"schedule": "hybrid", "rate_per_second": 3, "deposited": 1_000, "withdrawn": 450, "cliff_time": T + 200,
         "cliff_amount": 400},
        {"schedule": "hybrid", "status": "paused", "rate_per_second": 3, "deposited": 1_000, "cliff_time": T + 200,
         "cliff_amount": 400, "paused_at": T + 250},
        *({"status": status, "rate_per_second": 7, "deposited": 7_000, "last_update_time": T} for status in FINISHED),
    ]
    return [stream_row(number, updated_at=updated, **values) for number, values in enumerate(rows, start=1)]


async def test_claimable_in_sql_is_the_contracts_formula_for_every_schedule(db: asyncpg.Connection) -> None:
    rows = _schedules()
    for row in rows:
        await insert(db, "streams", row)
    stored = {int(row["stream_id"]): row for row in await db.fetch("SELECT * FROM streams")}
    seen: set[tuple[int, int]] = set()
    for offset in (-5_000, 0, 99, 100, 150, 199, 200, 250, 299, 300, 301, 500, 10**6, 10**11):
        at = datetime.fromtimestamp(T + offset, UTC)
        await set_ledger_time(db, at)
        for row in await db.fetch("SELECT stream_id, claimable, locked, remaining, as_of FROM stream_balances"):
            stream = stored[int(row["stream_id"])]
            expected = claimable_at(stream, T + offset)
            assert (row["as_of"], row["claimable"]) == (at, expected), (dict(stream), offset)
            left = 0 if stream["status"] in FINISHED else int(stream["deposited"]) - int(stream["withdrawn"])
            assert (row["remaining"], row["locked"]) == (left, left - expected)
            seen.add((int(row["stream_id"]), expected))
    by_stream = defaultdict(set)
    for stream_id, amount in seen:
        by_stream[stream_id].add(amount)
    assert by_stream[5] == {0, 100}, "steps: the locked second step hides the unlocked third"
    assert by_stream[9] >= {0, 400, 550, 1_000}, "hybrid: nothing, the lump, the lump and its tail, all"
    assert by_stream[2] >= {0, 1_400}, "linear with a cliff: nothing before it, everything since the anchor after"
    assert all(by_stream[number] == {0} for number in (7, 12, 13, 14)), "unmet milestones, finished streams"


def _event(number: int, kind: str, day: int, **fields: Any) -> dict[str, Any]:
    at = datetime(2026, 3, day, 12, tzinfo=UTC)
    return {"id": event_id(day * 1000 + number, 1, 0, 0), "kind": kind, "ledger": day * 1000 + number,
            "ledger_closed_at": at, "tx_hash": f"{number:064x}", "contract_id": CONTRACT, **fields}


async def test_daily_flows_count_at_a_cancellation_only_what_had_accrued_since(db: asyncpg.Connection) -> None:
    """What recipients received: withdrawals, a recipient transfer's settlement, and at the cancellation its
    cumulative amount_withdrawn less what had been paid before; a refund an older build leaves out is
    what was left of the deposits."""
    await insert(db, "streams", stream_row(1, status="cancelled"))
    await insert(db, "streams", stream_row(2, status="cancelled", allowance=True))
    for row in [
        _event(1, "stream.fee_collected", 1, stream_id=1, fee_amount=10),
        _event(2, "stream.created", 1, stream_id=1, deposited_amount=1_000),
        _event(3, "stream.withdrawn", 1, stream_id=1, amount=100),
        _event(4, "stream.topped_up", 2, stream_id=1, amount=500),
        _event(5, "stream.recipient_transferred", 2, stream_id=1, settled_amount=50),
        _event(6, "stream.withdrawn", 3, stream_id=1, amount=70),
        _event(7, "stream.cancelled", 3, stream_id=1, amount_withdrawn=300),  # 80 accrued; refund not published
        _event(8, "stream.allowance_created", 2, stream_id=2),
        _event(9, "stream.topped_up", 2, stream_id=2, amount=90),
        _event(10, "stream.cancelled", 3, stream_id=2, amount_withdrawn=40, refunded_amount=50),
        _event(11, "stream.completed", 3, stream_id=2, total_withdrawn=40),  # moves nothing
    ]:
        await insert(db, "events", row)
    rows = await db.fetch("SELECT day, streams_created, deposited, withdrawn, refunded, fees FROM daily_flows")
    assert sorted(tuple(row) for row in rows) == [
        (date(2026, 3, 1), 1, 1_000, 100, 0, 10),
        (date(2026, 3, 2), 1, 590, 50, 0, 0),
        (date(2026, 3, 3), 0, 0, 150 + 40, 1_200 + 50, 0),
    ]


async def test_protocol_fees_without_a_treasury_went_to_the_one_configured_then(db: asyncpg.Connection) -> None:
    first, second, named = ("GA" + letter * 54 for letter in "XYZ")
    await insert(db, "streams", stream_row(1))
    for row in [
        _event(1, "protocol.initialized", 1, treasury=first, fee_rate_bps=10),
        _event(2, "stream.fee_collected", 1, stream_id=1, fee_amount=3),
        _event(3, "protocol.fee_config_updated", 2, new_treasury=second, new_fee_rate_bps=20),
        _event(4, "stream.fee_collected", 2, stream_id=1, fee_amount=5),
        _event(5, "stream.fee_collected", 2, stream_id=1, fee_amount=7),
        _event(6, "stream.fee_collected", 3, stream_id=1, fee_amount=11, treasury=named, token="C" + "T" * 55),
    ]:
        await insert(db, "events", row)
    rows = await db.fetch("SELECT token, treasury, fee_events, fees, first_at, last_at FROM protocol_fees")
    token = stream_row(1)["token"]
    day = [datetime(2026, 3, n, 12, tzinfo=UTC) for n in (1, 2, 3)]
    assert sorted(tuple(row) for row in rows) == sorted([
        (token, first, 1, 3, day[0], day[0]),
        (token, second, 2, 12, day[1], day[1]),
        ("C" + "T" * 55, named, 1, 11, day[2], day[2]),
    ])


async def test_now_is_the_newest_ledger_time_of_the_streams_contract(db: asyncpg.Connection) -> None:
    """Not the server's clock (these ledger times are later than it): the last ledger the indexer saw for
    the stream's contract, or the stream's own last update where no cursor covers it."""
    await insert(db, "streams", stream_row(1, rate_per_second=1, deposited=10**12, last_update_time=T,
                                           updated_at=datetime.fromtimestamp(T, UTC)))
    await insert(db, "streams", stream_row(2, contract_id="C" + "Q" * 55, rate_per_second=1, deposited=10**12,
                                           last_update_time=T, updated_at=datetime.fromtimestamp(T + 7, UTC)))
    await set_ledger_time(db, datetime.fromtimestamp(T + 60, UTC))
    rows = {int(row["stream_id"]): row for row in await db.fetch("SELECT * FROM stream_balances")}
    assert rows[1]["claimable"] == 60 and rows[1]["as_of"] == datetime.fromtimestamp(T + 60, UTC)
    assert rows[2]["claimable"] == 7, "a contract the cursor does not cover stays at its stream's last update"
    await db.execute("UPDATE indexer_cursor SET contract_ids = $1", f"{'C' + 'Q' * 55},{CONTRACT}")
    later = await db.fetch("SELECT claimable FROM stream_balances ORDER BY stream_id")
    assert [row["claimable"] for row in later] == [60, 60]
