"""The data dictionary: what every table, view, column and function of the schema means, read from the
comments the migrations write (COMMENT ON), and rendered as the page docs/SCHEMA.md.

The comments are the one source: indexer/tables.py gives the tables' (the events columns' derive from
indexer/events.py), the migration that defines the views gives theirs. `flowfi dictionary` prints the page
from a migrated database; a test keeps docs/SCHEMA.md equal to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

KINDS = {"r": "table", "p": "table", "v": "view", "m": "view"}


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # as PostgreSQL spells it: numeric(39,0), text[], timestamp with time zone
    not_null: bool
    comment: str | None


@dataclass(frozen=True, slots=True)
class Relation:
    name: str
    kind: str  # table or view
    comment: str | None
    columns: tuple[Column, ...]


@dataclass(frozen=True, slots=True)
class Function:
    signature: str  # name(arguments) returns type
    comment: str | None


async def relations(conn: asyncpg.Connection) -> list[Relation]:
    """Every table and view of the current schema with its columns, by kind then name."""
    rows = await conn.fetch(
        "SELECT c.oid, c.relname, c.relkind::text AS relkind, obj_description(c.oid, 'pg_class') AS comment "
        "FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind::text = ANY($1::text[]) "
        "ORDER BY c.relname",
        list(KINDS),
    )
    columns = await conn.fetch(
        "SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull, "
        "col_description(a.attrelid, a.attnum) AS comment FROM pg_attribute a "
        "WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum",
        [row["oid"] for row in rows],
    )
    by_relation: dict[int, list[Column]] = {}
    for col in columns:
        by_relation.setdefault(col["attrelid"], []).append(
            Column(col["attname"], col["type"], col["attnotnull"], col["comment"]))
    found = [Relation(row["relname"], KINDS[row["relkind"]], row["comment"], tuple(by_relation.get(row["oid"], ())))
             for row in rows]
    return sorted(found, key=lambda relation: (relation.kind != "view", relation.name))


async def functions(conn: asyncpg.Connection) -> list[Function]:
    """The functions of the current schema (those the views use, for analysts' queries too)."""
    rows = await conn.fetch(
        "SELECT p.proname || '(' || pg_get_function_arguments(p.oid) || ') returns ' "
        "|| pg_get_function_result(p.oid) AS signature, obj_description(p.oid, 'pg_proc') AS comment "
        "FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace ORDER BY 1"
    )
    return [Function(row["signature"], row["comment"]) for row in rows]


def uncommented(found: list[Relation]) -> list[str]:
    """The tables, views and columns that have no comment, as `table` or `table.column`."""
    missing = []
    for relation in found:
        if not relation.comment:
            missing.append(relation.name)
        missing.extend(f"{relation.name}.{col.name}" for col in relation.columns if not col.comment)
    return missing


def markdown(found: list[Relation], funcs: list[Function]) -> str:
    """The data dictionary as a Markdown page: views, then tables, then functions."""
    lines = [
        "# The database, column by column",
        "",
        "Generated from the comments in a migrated database by `flowfi dictionary --out docs/SCHEMA.md`; a test "
        "keeps this page equal to them. In psql the same text is at `\\d+ NAME` (a table or view) and "
        "`\\dv+` / `\\dt+` (all of them).",
        "",
        "Amounts are i128 in the token's smallest unit (`numeric(39,0)`) and `_human` columns in whole tokens; "
        "times are ledger close times (`timestamp with time zone`) or u64 unix seconds of ledger time.",
    ]
    for kind, title in (("view", "Views"), ("table", "Tables")):
        lines += ["", f"## {title}"]
        for relation in (r for r in found if r.kind == kind):
            lines += ["", f"### {relation.name}", "", _cell(relation.comment), "", "| column | type | meaning |",
                      "|---|---|---|"]
            for col in relation.columns:
                kind_of = f"{col.type}, not null" if col.not_null else col.type
                lines.append(f"| `{col.name}` | {kind_of} | {_cell(col.comment)} |")
    if funcs:
        lines += ["", "## Functions"]
        for func in funcs:
            lines += ["", f"### `{func.signature}`", "", _cell(func.comment)]
    return "\n".join(lines) + "\n"


def _cell(text: str | None) -> str:
    return "(no comment)" if not text else text.replace("|", "\\|").replace("\n", " ")


async def dictionary_page(conn: asyncpg.Connection) -> str:
    """The page for the database `conn` is connected to."""
    return markdown(await relations(conn), await functions(conn))
