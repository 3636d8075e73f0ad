"""Export a table or view to a Parquet or CSV file, for a notebook or a warehouse (`flowfi export`).

Rows come through a server-side cursor in batches and each batch is written before the next is fetched,
so memory stays the same whatever the size of the table. Every value keeps its exact type: NUMERIC(p,s)
becomes Parquet's decimal (decimal256 beyond 38 digits: i128 amounts need 39, which decimal128 cannot
hold), times stay timestamps (UTC, microseconds), arrays stay lists. NUMERIC without a fixed scale (the
views' `_human` amounts, whose scale is each token's decimals) and JSON travel as their exact text. In
CSV, arrays are JSON arrays (numbers as exact digits).

The file is written next to its path (`PATH.partial`) and renamed when complete: an export that fails
leaves no truncated file behind.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from indexer.events import LEDGER_MAX

LEDGER_COLUMN = "ledger"
# Tables that are the index's own bookkeeping, not data.
NOT_EXPORTED = frozenset({"alembic_version"})
DECIMAL128_DIGITS = 38
DECIMAL256_DIGITS = 76


class Format(enum.StrEnum):
    PARQUET = "parquet"
    CSV = "csv"


class ExportError(Exception):
    """The export cannot be done as asked (an unknown table, a filter it does not have): one line saying
    what to ask instead."""


SUFFIXES = {".parquet": Format.PARQUET, ".pq": Format.PARQUET, ".csv": Format.CSV}


def format_of(out: Path, asked: str | None) -> Format:
    """The format to write `out` in: the one asked (in any case), else the one its suffix names, else
    Parquet for a name without a suffix. A suffix naming the other format, or, unless --format is given,
    another one, is refused: a .csv or a .txt file holding Parquet misleads whoever opens it."""
    suffix = out.suffix or (out.name if out.name.startswith(".") else "")  # pathlib sees none in ".csv"
    named = SUFFIXES.get(suffix.lower())
    if asked is None:
        if named is None and suffix:
            *others, last = SUFFIXES
            raise ExportError(f"--out ends in {suffix}, which names neither format: give --format parquet or "
                              f"csv, or a file name ending in {', '.join(others)} or {last}")
        return named or Format.PARQUET
    try:
        fmt = Format(asked.lower())
    except ValueError:
        raise ExportError(f"--format must be parquet or csv, not {asked!r}") from None
    if named is not None and named is not fmt:
        raise ExportError(f"--out ends in {suffix} but --format is {fmt}: give a file name ending in "
                          f".{fmt}, or leave --format out to write {named}")
    return fmt


@dataclass(frozen=True, slots=True)
class ExportColumn:
    name: str
    type_name: str  # pg_type.typname: numeric, text, timestamptz, ...; an array's element type
    is_array: bool
    typmod: int  # NUMERIC's precision and scale, -1 when unconstrained

    def select(self, fmt: Format) -> str:
        """How the column is selected: as it is, or as exact text where the file has no exact type."""
        quoted = _quoted(self.name)
        if self.is_array and fmt is Format.CSV:
            return f"array_to_json({quoted})::text AS {quoted}"
        if self._as_text():
            return f"{quoted}::text AS {quoted}"
        return quoted

    def arrow_type(self, fmt: Format) -> Any:
        if self.is_array and fmt is Format.CSV:
            return pa.string()
        element = pa.string() if self._as_text() else self._arrow_scalar()
        return pa.list_(element) if self.is_array else element

    def _numeric(self) -> tuple[int, int] | None:
        """NUMERIC's (precision, scale), or None when unconstrained."""
        if self.type_name != "numeric" or self.typmod < 4:
            return None
        return ((self.typmod - 4) >> 16) & 0xFFFF, (self.typmod - 4) & 0xFFFF

    def _as_text(self) -> bool:
        if self.type_name == "numeric":
            numeric = self._numeric()
            return numeric is None or numeric[0] > DECIMAL256_DIGITS
        return self.type_name not in _ARROW_SCALARS

    def _arrow_scalar(self) -> Any:
        numeric = self._numeric()
        if numeric is not None:
            precision, scale = numeric
            return (pa.decimal128 if precision <= DECIMAL128_DIGITS else pa.decimal256)(precision, scale)
        return _ARROW_SCALARS[self.type_name]


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


_ARROW_SCALARS = {
    "text": pa.string(), "varchar": pa.string(), "bpchar": pa.string(), "name": pa.string(),
    "int2": pa.int16(), "int4": pa.int32(), "int8": pa.int64(), "bool": pa.bool_(), "date": pa.date32(),
    "timestamptz": pa.timestamp("us", "UTC"), "timestamp": pa.timestamp("us"),
}  # any other type travels as its text


@dataclass(frozen=True, slots=True)
class Plan:
    """What one export reads: a table or view, its columns, and the ledgers asked for."""

    relation: str
    columns: tuple[ExportColumn, ...]
    order_by: tuple[str, ...]
    from_ledger: int | None = None
    to_ledger: int | None = None

    def query(self, fmt: Format) -> tuple[str, list[int]]:
        where, args = [], []
        if self.from_ledger is not None:
            args.append(self.from_ledger)
            where.append(f"{LEDGER_COLUMN} >= ${len(args)}")
        if self.to_ledger is not None:
            args.append(self.to_ledger)
            where.append(f"{LEDGER_COLUMN} <= ${len(args)}")
        sql = f"SELECT {', '.join(col.select(fmt) for col in self.columns)} FROM {_quoted(self.relation)}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        if self.order_by:
            sql += " ORDER BY " + ", ".join(map(_quoted, self.order_by))
        return sql, args

    def schema(self, fmt: Format) -> Any:
        return pa.schema([pa.field(col.name, col.arrow_type(fmt)) for col in self.columns])


async def exportable(conn: asyncpg.Connection) -> dict[str, int]:
    """The tables and views that can be exported, by name, with their oids."""
    rows = await conn.fetch(
        "SELECT c.relname, c.oid FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace "
        "AND c.relkind IN ('r', 'p', 'v', 'm') ORDER BY c.relname"
    )
    return {row["relname"]: row["oid"] for row in rows if row["relname"] not in NOT_EXPORTED}


async def plan(conn: asyncpg.Connection, name: str, from_ledger: int | None = None,
               to_ledger: int | None = None) -> Plan:
    """The export of table or view `name`, between two ledgers (inclusive) where it has a ledger column."""
    relations = await exportable(conn)
    if name not in relations:
        raise ExportError(f"no table or view {name!r}; export one of: {', '.join(relations)}")
    oid = relations[name]
    rows = await conn.fetch(
        "SELECT a.attname, coalesce(element.typname, t.typname) AS type_name, element.oid IS NOT NULL AS is_array, "
        "a.atttypmod FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "LEFT JOIN pg_type element ON element.oid = t.typelem AND t.typcategory = 'A' "
        "WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        oid,
    )
    columns = tuple(ExportColumn(r["attname"], r["type_name"], r["is_array"], r["atttypmod"]) for r in rows)
    if from_ledger is not None or to_ledger is not None:
        for flag, ledger in (("--from-ledger", from_ledger), ("--to-ledger", to_ledger)):
            if ledger is not None and not 1 <= ledger <= LEDGER_MAX:
                raise ExportError(f"{flag} {ledger} is not a ledger sequence (1 to {LEDGER_MAX})")
        if not any(col.name == LEDGER_COLUMN for col in columns):
            with_ledger = [other for other, other_oid in relations.items() if await _has_ledger(conn, other_oid)]
            raise ExportError(f"{name} has no {LEDGER_COLUMN} column, so --from-ledger/--to-ledger do not apply to "
                              f"it; they do to: {', '.join(with_ledger)}")
        if from_ledger is not None and to_ledger is not None and from_ledger > to_ledger:
            raise ExportError(f"--from-ledger {from_ledger} is after --to-ledger {to_ledger}")
    key = await conn.fetch(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = $1 AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
        oid,
    )
    return Plan(name, columns, tuple(row["attname"] for row in key), from_ledger, to_ledger)


async def beyond_the_index(conn: asyncpg.Connection, chosen: Plan) -> str | None:
    """The ledgers the export's bounds ask for that the index does not hold whole, in words; None when
    they are within the ledgers indexed whole, or no worker has written a cursor."""
    last = await conn.fetchval("SELECT max(last_ledger) FROM indexer_cursor")
    if last is None:
        return None
    first = max(chosen.from_ledger or 0, last + 1)
    if chosen.to_ledger is not None:
        if chosen.to_ledger <= last:
            return None
        span = f"ledger {first} is" if first == chosen.to_ledger else f"ledgers {first}-{chosen.to_ledger} are"
    elif chosen.from_ledger is not None and chosen.from_ledger > last:
        span = f"ledger {first} and later are"
    else:
        return None
    return f"the index holds ledgers up to {last} whole; {span} not indexed yet, or only in part"


async def _has_ledger(conn: asyncpg.Connection, oid: int) -> bool:
    return bool(await conn.fetchval(
        "SELECT true FROM pg_attribute WHERE attrelid = $1 AND attname = $2 AND NOT attisdropped", oid, LEDGER_COLUMN))


def check_destination(out: Path) -> None:
    """Refuse an --out that cannot become a file: a directory, or a path in a directory that does not exist."""
    if out.is_dir():
        raise ExportError(f"{out} is a directory: give --out a file's path")
    if not out.parent.is_dir():
        raise ExportError(f"{out.parent} is not a directory: give --out a path in an existing directory")


async def count(conn: asyncpg.Connection, chosen: Plan) -> int:
    """How many rows the export will write (for a progress bar)."""
    sql, args = chosen.query(Format.CSV)
    return int(await conn.fetchval(f"SELECT count(*) FROM ({sql}) AS exported", *args))


@dataclass(frozen=True, slots=True)
class Written:
    rows: int
    missing: str | None  # the ledgers asked for that the index did not hold whole (beyond_the_index)


async def write(conn: asyncpg.Connection, chosen: Plan, fmt: Format, out: Path, batch_size: int = 10_000,
                on_batch: Callable[[int], None] | None = None) -> Written:
    """Write the rows of `chosen` to `out` as `fmt`, `batch_size` rows at a time, from one snapshot of the
    database. `on_batch` is told each batch's row count once it is written."""
    check_destination(out)
    schema = chosen.schema(fmt)
    sql, args = chosen.query(fmt)
    partial = out.with_name(out.name + ".partial")
    written = 0
    try:
        with _writer(fmt, partial, schema) as sink:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                missing = await beyond_the_index(conn, chosen)
                cursor = await conn.cursor(sql, *args)
                while rows := await cursor.fetch(batch_size):
                    columns = list(zip(*rows, strict=True))
                    batch = pa.record_batch(
                        [pa.array(values, type=field.type) for values, field in zip(columns, schema, strict=True)],
                        schema=schema,
                    )
                    sink.write_batch(batch)
                    written += len(rows)
                    if on_batch is not None:
                        on_batch(len(rows))
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return Written(written, missing)


@contextlib.contextmanager
def _writer(fmt: Format, path: Path, schema: Any) -> Any:
    if fmt is Format.PARQUET:
        writer = pq.ParquetWriter(path, schema, compression="zstd")
    else:
        writer = pcsv.CSVWriter(path, schema)
    try:
        yield writer
    finally:
        writer.close()
