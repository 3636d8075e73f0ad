"""Reading events in chain order: the one query behind SSE replay, the live listener and GET /events.

Keyset pagination on the event id (`id > $after ORDER BY id LIMIT $n`) keeps every page an index
scan, however deep.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from api.filters import EventFilter
from api.payloads import EVENT_COLUMNS


async def events_after(
    conn: asyncpg.Connection | asyncpg.Pool,
    after: str,
    limit: int,
    selected: EventFilter | None = None,
    *,
    from_ledger: int | None = None,
    to_ledger: int | None = None,
) -> list[asyncpg.Record]:
    """Up to `limit` events with id > `after`, in chain order, that `selected` wants."""
    where = ["id > $1"]
    args: list[Any] = [after]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if selected is not None and not selected.selects_all:
        chosen = []
        if selected.streams:
            chosen.append(f"stream_id = ANY({arg(sorted(selected.streams))}::numeric[])")
        if selected.users:
            chosen.append(
                f"id IN (SELECT event_id FROM event_parties WHERE address = ANY({arg(sorted(selected.users))}) "
                "AND event_id > $1)"
            )
        where.append("(" + " OR ".join(chosen) + ")")
    if selected is not None and selected.types:
        where.append(f"kind = ANY({arg(sorted(selected.types))})")
    if from_ledger is not None:
        where.append(f"ledger >= {arg(from_ledger)}")
    if to_ledger is not None:
        where.append(f"ledger <= {arg(to_ledger)}")
    sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY id LIMIT {arg(limit)}"
    return list(await conn.fetch(sql, *args))


async def latest_event_id(conn: asyncpg.Connection | asyncpg.Pool) -> str:
    """The newest indexed event's id, or "" before the first (every id sorts after "")."""
    return await conn.fetchval("SELECT coalesce(max(id), '') FROM events") or ""


async def event_exists(conn: asyncpg.Connection | asyncpg.Pool, event_id: str) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM contract_events WHERE id = $1)", event_id))
