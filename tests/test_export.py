"""`flowfi export`: tables and views to Parquet and CSV and back with every value exact (i128 and u64 at
their limits), in batches, between ledgers, and one clear line for what cannot be exported."""

from __future__ import annotations

import asyncio
import csv
import json
import subprocess
import sys
import tracemalloc
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pyarrow.parquet as pq
import pytest

from indexer.events import I128_MAX, U64_MAX
from indexer.export import ExportError, Format, count, plan, write
from indexer.ids import event_id
from tests.analytics import CONTRACT, insert, set_ledger_time, stream_row

I128_MIN = -(2**127)
TOKEN = stream_row(0)["token"]


async def _fill(db: asyncpg.Connection) -> None:
    """Rows at the limits of their types, and a token with 18 decimals for the views' human amounts."""
    await insert(db, "tokens", {"address": TOKEN, "name": "Eighteen", "symbol": "E18", "decimals": 18,
                                "source": "manual"})
    await insert(db, "streams", stream_row(
        U64_MAX, rate_per_second=I128_MAX, deposited=I128_MAX, withdrawn=I128_MAX - 1, fees_paid=I128_MAX,
        start_time=U64_MAX, last_update_time=U64_MAX - 1, end_time=U64_MAX, schedule="hybrid", cliff_time=0,
        cliff_amount=I128_MIN, step_times=[U64_MAX, 0], step_amounts=[I128_MAX, I128_MIN], dispute="requested"))
    await insert(db, "streams", stream_row(1, status="paused", paused_at=1_050, rate_per_second=3,
                                           deposited=1_000_000_000_000_000_001))
    await insert(db, "streams", stream_row(2, status="cancelled", withdrawn=5, refunded=9_995))
    at = datetime(2026, 5, 17, 23, 59, 59, 999_999, tzinfo=UTC)
    for number, (kind, fields) in enumerate([
        ("stream.created", {"stream_id": 1, "deposited_amount": I128_MAX, "start_time": U64_MAX,
                            "sender": stream_row(0)["sender"], "token_address": TOKEN, "rate_per_second": 1}),
        ("stream.withdrawn", {"stream_id": 1, "amount": I128_MAX, "timestamp": U64_MAX}),
        ("stream.cancelled", {"stream_id": 2, "amount_withdrawn": I128_MAX, "refunded_amount": I128_MIN}),
        ("stream.fee_collected", {"stream_id": 1, "fee_amount": 1, "treasury": "GA" + "T" * 54}),
        ("protocol.initialized", {"admin": "GA" + "A" * 54, "treasury": "GA" + "T" * 54, "fee_rate_bps": 2**32 - 1}),
    ], start=1):
        ledger = 2**31 + number
        identifier = event_id(ledger, 1, 0, 0)
        await insert(db, "contract_events", {
            "id": identifier, "ledger": ledger, "ledger_closed_at": at, "tx_hash": "ab" * 32, "contract_id": CONTRACT,
            "topic_xdr": ["AAAADwAAAA5zdHJlYW1fY3JlYXRlZAAA", "AAAABQAAAAAAAAAB"], "value_xdr": "AAAAAQ==",
            "topic": json.dumps([kind, str(U64_MAX)]), "value": json.dumps({"amount": I128_MAX, "x": "a,b\n\"c\""})})
        await insert(db, "events", {"id": identifier, "kind": kind, "ledger": ledger, "ledger_closed_at": at,
                                    "tx_hash": "ab" * 32, "contract_id": CONTRACT, **fields})
    await set_ledger_time(db, datetime(2026, 5, 18, tzinfo=UTC))


def _same(value: Any, expected: Any) -> bool:
    """An exported value equals the database's: numbers by exact value (the text of a NUMERIC with no fixed
    scale too, its scale kept), JSON by meaning."""
    if isinstance(expected, list) and isinstance(value, list):
        return len(value) == len(expected) and all(_same(v, e) for v, e in zip(value, expected, strict=True))
    if isinstance(expected, Decimal) and isinstance(value, str):
        return value == format(expected, "f")
    if isinstance(expected, str) and expected[:1] in "[{" and isinstance(value, str):
        return bool(json.loads(value) == json.loads(expected))
    return bool(value == expected) and type(value) is type(expected)


def _from_csv(cell: str, expected: Any) -> Any:
    """A CSV cell read back as the type of the database's values in its column (NULL is an empty cell)."""
    if cell == "":
        return None
    if isinstance(expected, bool):
        return {"true": True, "false": False}[cell]
    if isinstance(expected, int):
        return int(cell)
    if isinstance(expected, Decimal):
        return Decimal(cell)
    if isinstance(expected, datetime):
        return datetime.fromisoformat(cell)
    if isinstance(expected, date):
        return date.fromisoformat(cell)
    if isinstance(expected, list):
        return json.loads(cell, parse_int=Decimal, parse_float=Decimal)
    return cell


# Each relation's rows in one order (a view's come in whatever order its plan gives).
KEYS = {"streams": ("contract_id", "stream_id"), "events": ("id",), "contract_events": ("id",),
        "stream_balances": ("contract_id", "stream_id"), "daily_flows": ("day", "token"),
        "positions": ("address", "token"), "protocol_fees": ("token", "treasury"), "tokens": ("address",)}


@pytest.mark.parametrize("fmt", list(Format))
@pytest.mark.parametrize("name", list(KEYS))
async def test_a_round_trip_keeps_every_value_exact(db: asyncpg.Connection, tmp_path: Path, name: str,
                                                    fmt: Format) -> None:
    await _fill(db)
    chosen = await plan(db, name)
    out = tmp_path / f"{name}.{fmt}"
    assert (await write(db, chosen, fmt, out)).rows == await count(db, chosen) > 0
    expected = [dict(row) for row in await db.fetch(f"SELECT * FROM {name}")]
    if fmt is Format.PARQUET:
        got = pq.read_table(out).to_pylist()
    else:
        sample = {column: next((row[column] for row in expected if row[column] is not None), None)
                  for column in expected[0]}
        with out.open(newline="") as file:
            got = [{column: _from_csv(cell, sample[column]) for column, cell in row.items()}
                   for row in csv.DictReader(file)]

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row[column] or "" for column in KEYS[name])

    assert len(got) == len(expected)
    for row, expected_row in zip(sorted(got, key=key), sorted(expected, key=key), strict=True):
        assert list(row) == list(expected_row)
        for column, value in row.items():
            assert _same(value, expected_row[column]), (name, column, value, expected_row[column])


async def test_parquet_keeps_the_types(db: asyncpg.Connection, tmp_path: Path) -> None:
    await _fill(db)
    for name in ("streams", "stream_balances"):
        await write(db, await plan(db, name), Format.PARQUET, tmp_path / f"{name}.parquet")
    streams = pq.read_schema(tmp_path / "streams.parquet")
    assert str(streams.field("deposited").type) == "decimal256(39, 0)"
    assert str(streams.field("stream_id").type) == "decimal128(20, 0)"
    assert str(streams.field("step_amounts").type.value_type) == "decimal256(39, 0)"
    assert str(streams.field("created_at").type) == "timestamp[us, tz=UTC]"
    balances = pq.read_schema(tmp_path / "stream_balances.parquet")
    assert str(balances.field("claimable").type) == "decimal256(39, 0)"
    assert str(balances.field("claimable_human").type) == "string"
    row = next(r for r in pq.read_table(tmp_path / "stream_balances.parquet").to_pylist() if r["stream_id"] == 1)
    assert row["deposited_human"] == "1.000000000000000001"


async def _events(db: asyncpg.Connection, rows: int) -> None:
    await db.execute(
        "INSERT INTO events (id, kind, ledger, ledger_closed_at, tx_hash, contract_id, stream_id, amount, timestamp) "
        "SELECT lpad(n::text, 19, '0') || '-0000000000', 'stream.withdrawn', n, "
        "timestamptz '2026-01-01Z' + n * interval '5 seconds', md5(n::text), $1, n % 97, $2::numeric - n, $3 "
        "FROM generate_series(1, $4) AS n", CONTRACT, I128_MAX, U64_MAX, rows)


async def test_rows_go_out_in_batches_with_constant_memory(db: asyncpg.Connection, tmp_path: Path) -> None:
    await _events(db, 20_000)
    batches: list[int] = []
    chosen = await plan(db, "events", to_ledger=2_500)
    await write(db, chosen, Format.PARQUET, tmp_path / "small.parquet", batch_size=1_000, on_batch=batches.append)
    assert batches == [1_000, 1_000, 500]
    assert pq.ParquetFile(tmp_path / "small.parquet").metadata.num_row_groups == 3

    async def peak(rows: int) -> int:
        tracemalloc.start()
        try:
            await write(db, await plan(db, "events", to_ledger=rows), Format.CSV, tmp_path / f"{rows}.csv",
                        batch_size=500)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = await peak(2_000), await peak(20_000)
    assert large < small * 1.5, (small, large)


async def test_ledgers_bound_the_rows_inclusively(db: asyncpg.Connection, tmp_path: Path) -> None:
    await _events(db, 10)
    for bounds, ledgers in [((3, 5), [3, 4, 5]), ((8, None), [8, 9, 10]), ((None, 2), [1, 2]), ((4, 4), [4])]:
        out = tmp_path / "events.parquet"
        await write(db, await plan(db, "events", *bounds), Format.PARQUET, out)
        assert pq.read_table(out).column("ledger").to_pylist() == ledgers


async def test_what_cannot_be_exported_is_refused_in_one_line_naming_what_can(db: asyncpg.Connection) -> None:
    with pytest.raises(ExportError, match=r"^no table or view 'stream'; export one of: .*positions"):
        await plan(db, "stream")
    with pytest.raises(ExportError) as refused:
        await plan(db, "alembic_version")
    assert "alembic_version" not in str(refused.value).partition(";")[2]
    with pytest.raises(ExportError, match="^streams has no ledger column, so --from-ledger/--to-ledger do not apply "
                                          "to it; they do to: contract_events, contract_upgrades, events$"):
        await plan(db, "streams", from_ledger=5)
    with pytest.raises(ExportError, match="^--from-ledger 9 is after --to-ledger 3$"):
        await plan(db, "events", 9, 3)


async def test_a_failed_export_leaves_no_file(db: asyncpg.Connection, tmp_path: Path) -> None:
    await db.execute("CREATE VIEW fails_midway AS SELECT 10 / (5 - n) AS x FROM generate_series(1, 10) AS n")
    out = tmp_path / "fails.parquet"
    batches: list[int] = []
    with pytest.raises(asyncpg.DivisionByZeroError):
        await write(db, await plan(db, "fails_midway"), Format.PARQUET, out, batch_size=2, on_batch=batches.append)
    assert batches == [2, 2]
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []
    with pytest.raises(ExportError, match="is not a directory"):
        await write(db, await plan(db, "events"), Format.CSV, tmp_path / "missing" / "events.csv")


def _flowfi(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flowfi", *args], capture_output=True, text=True, timeout=120)


async def test_flowfi_export_writes_the_file_and_refuses_bad_requests_in_one_line(
        database_url: str, db: asyncpg.Connection, tmp_path: Path) -> None:
    await _events(db, 30)
    out = tmp_path / "events.csv"
    done = await asyncio.to_thread(_flowfi, "export", "events", "--format", "csv", "--out", str(out),
                                   "--from-ledger", "11", "--database-url", database_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote 20 rows of events to {out}\n"
    assert len(out.read_text().splitlines()) == 21
    inferred = tmp_path / "events from its name.CSV"
    done = await asyncio.to_thread(_flowfi, "export", "events", "--out", str(inferred), "--database-url", database_url)
    assert done.returncode == 0, done.stderr
    lines = inferred.read_text().splitlines()  # CSV, as the name says, though --format's default is parquet
    assert lines[0] == out.read_text().splitlines()[0] and len(lines) == 31
    dot_file = tmp_path / ".csv"  # a name that is all suffix (pathlib sees none)
    done = await asyncio.to_thread(_flowfi, "export", "events", "--out", str(dot_file), "--database-url", database_url)
    assert done.returncode == 0 and dot_file.read_text().splitlines()[0] == lines[0], done.stderr
    # ledgers the index has not reached: said, not a silent file of no rows
    await db.execute("INSERT INTO indexer_cursor (contract_ids, rpc_cursor, last_ledger, latest_ledger) "
                     "VALUES ($1, '', 30, 40)", CONTRACT)
    missing = "the index holds ledgers up to 30 whole; {} not indexed yet, or only in part"
    for bounds, said in [(["--from-ledger", "31"], f"wrote 0 rows of events to {{out}}: "
                                                   f"{missing.format('ledger 31 and later are')}\n"),
                         (["--from-ledger", "29", "--to-ledger", "35"],
                          f"wrote 2 rows of events to {{out}}: {missing.format('ledgers 31-35 are')}\n"),
                         (["--from-ledger", "31", "--to-ledger", "31"],
                          f"wrote 0 rows of events to {{out}}: {missing.format('ledger 31 is')}\n"),
                         (["--to-ledger", "30"], "wrote 30 rows of events to {out}\n"),
                         (["--from-ledger", "30"], "wrote 1 row of events to {out}\n")]:
        done = await asyncio.to_thread(_flowfi, "export", "events", "--out", str(out), *bounds,
                                       "--database-url", database_url)
        assert (done.returncode, done.stdout) == (0, said.format(out=out)), done.stderr
    for args, words in [(["stream"], "no table or view 'stream'; export one of:"),
                        (["streams", "--to-ledger", "3"], "streams has no ledger column"),
                        (["events", "--format", "xlsx"], "--format must be parquet or csv, not 'xlsx'"),
                        (["events", "--from-ledger", "99999999999999999999"],
                         "--from-ledger 99999999999999999999 is not a ledger sequence (1 to 4294967295)"),
                        (["events", "--to-ledger", "-3"], "--to-ledger -3 is not a ledger sequence (1 to 4294967295)"),
                        (["events", "--format", "CSV", "--out", str(tmp_path / "x.parquet")],
                         "--out ends in .parquet but --format is csv: give a file name ending in .csv, or leave "
                         "--format out to write parquet"),
                        (["events", "--out", str(tmp_path / "x.txt")],
                         "--out ends in .txt, which names neither format: give --format parquet or csv, or a file "
                         "name ending in .parquet, .pq or .csv"),
                        (["events", "--out", str(tmp_path)], f"{tmp_path} is a directory: give --out a file's path"),
                        (["events", "--out", "."], ". is a directory: give --out a file's path")]:
        if "--out" not in args:
            args += ["--out", str(tmp_path / "x")]
        refused = await asyncio.to_thread(_flowfi, "export", *args, "--database-url", database_url)
        assert refused.returncode == 2
        assert len(refused.stderr.strip().splitlines()) == 1 and words in refused.stderr, refused.stderr
        assert not (tmp_path / "x").exists() and not (tmp_path / "x.txt").exists()
