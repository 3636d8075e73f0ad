"""The data dictionary: every table, view and column of the migrated database says what it is, the events
columns say it as indexer/events.py defines it, and docs/SCHEMA.md is the page the database's comments
make."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import asyncpg

from indexer.dictionary import dictionary_page, functions, relations, uncommented
from indexer.events import EVENT_KINDS, all_fields, field_types, required_fields

SCHEMA_PAGE = Path(__file__).parent.parent / "docs" / "SCHEMA.md"


async def test_every_table_view_column_and_function_has_a_comment(db: asyncpg.Connection) -> None:
    found = await relations(db)
    assert {r.name for r in found if r.kind == "view"} == {"stream_balances", "daily_flows", "positions",
                                                          "protocol_fees"}
    assert {"streams", "events", "tokens", "alembic_version"} <= {r.name for r in found if r.kind == "table"}
    assert uncommented(found) == []
    assert all(func.comment for func in await functions(db))


async def test_a_column_without_a_comment_is_reported(db: asyncpg.Connection) -> None:
    await db.execute("ALTER TABLE tokens ADD COLUMN website TEXT")
    await db.execute("CREATE VIEW token_sites AS SELECT address, website FROM tokens")
    assert uncommented(await relations(db)) == ["token_sites", "token_sites.address", "token_sites.website",
                                                "tokens.website"]


async def test_the_events_columns_name_their_type_and_the_kinds_that_set_them(db: asyncpg.Connection) -> None:
    events = next(r for r in await relations(db) if r.name == "events")
    comments = {col.name: col.comment or "" for col in events.columns}
    for name, sc_type in all_fields().items():
        comment = comments[name]
        assert f"{sc_type.value}, " in comment, name
        for kind in EVENT_KINDS:
            if name in field_types(kind) and "every stream.* kind" not in comment:
                marked = kind.sse_name + ("" if name in required_fields(kind) else "?")
                assert marked in comment.replace(",", " ").replace(";", " ").split(), (name, kind.sse_name)
            elif name not in field_types(kind) and name not in ("sender", "recipient"):
                assert kind.sse_name + "," not in comment and kind.sse_name + ";" not in comment, (name, kind)
    assert "unix seconds, ledger time" in comments["paused_at"]
    assert "the token's smallest unit" in comments["amount"] and "net of the fee" in comments["amount"]


async def test_the_schema_page_is_what_the_database_comments_make(db: asyncpg.Connection) -> None:
    page = await dictionary_page(db)
    assert SCHEMA_PAGE.read_text() == page, "docs/SCHEMA.md is stale: run flowfi dictionary --out docs/SCHEMA.md"
    assert "| `claimable` | numeric(39,0) |" in page
    assert "(no comment)" not in page


async def test_flowfi_dictionary_prints_the_page(database_url: str) -> None:
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "flowfi", "dictionary", "--database-url", database_url],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == SCHEMA_PAGE.read_text()
