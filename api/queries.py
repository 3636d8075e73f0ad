"""Reading events in chain order: the one query behind SSE replay, the live listener and GET /events.

Keyset pagination on the event id (`id > $after ORDER BY id LIMIT $n`) keeps every page an index
scan, however deep; filters merge one such scan per selected value.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import asyncpg

from api.filters import EventFilter
from api.payloads import EVENT_COLUMNS


class Args:
    """A query's numbered arguments: `arg(value)` keeps the value and returns its "$n"."""

    def __init__(self, *values: Any) -> None:
        self.values: list[Any] = list(values)

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


async def events_after(
    conn: asyncpg.Connection | asyncpg.Pool,
    after: str,
    limit: int,
    selected: EventFilter | None = None,
    *,
    up_to: str | None = None,
) -> list[asyncpg.Record]:
    """Up to `limit` events with `after` < id <= `up_to`, in chain order, that `selected` wants.

    A filter is one ordered index scan per selected stream, address or type (events (stream_id, id),
    event_parties (address, event_id), events (kind, id)), each stopping after `limit` rows, merged:
    the work per page is bounded by the page size times the number of values, however deep the page.
    """
    arg = Args(after)
    upper = "" if up_to is None else arg(up_to)

    def bounded(column: str) -> str:
        """The id bounds on the id column a scan follows."""
        return f"{column} > $1" + (f" AND {column} <= {upper}" if upper else "")

    conditions = []  # on the events row `e`, besides the id bounds
    if selected is not None and selected.visible_to is not None:
        if selected.selects_all:  # everything a user may see: that user's events
            selected = dataclasses.replace(selected, users=frozenset({selected.visible_to}), everything=False)
        else:
            conditions.append(f"EXISTS (SELECT 1 FROM event_parties AS vp WHERE vp.event_id = e.id "
                              f"AND vp.address = {arg(selected.visible_to)})")
    types = sorted(selected.types) if selected is not None else []
    limit_arg = arg(limit)
    by_kind = selected is None or selected.selects_all
    if types and not by_kind:
        conditions.append(f"e.kind = ANY({arg(types)})")
    rest = "".join(f" AND {c}" for c in conditions)

    if by_kind and not types:
        sql = f"SELECT {EVENT_COLUMNS} FROM events AS e WHERE {bounded('e.id')}{rest} ORDER BY e.id LIMIT {limit_arg}"
        return list(await conn.fetch(sql, *arg.values))
    branches = []
    if by_kind:
        branches.append(
            f"SELECT p.id FROM unnest({arg(types)}::text[]) AS v(kind) CROSS JOIN LATERAL ("
            f"SELECT e.id FROM events AS e WHERE e.kind = v.kind AND {bounded('e.id')}{rest} "
            f"ORDER BY e.id LIMIT {limit_arg}) AS p"
        )
    else:
        assert selected is not None
        if selected.streams:
            branches.append(
                f"SELECT p.id FROM unnest({arg(sorted(selected.streams))}::numeric[]) AS v(stream_id) "
                f"CROSS JOIN LATERAL (SELECT e.id FROM events AS e WHERE e.stream_id = v.stream_id "
                f"AND {bounded('e.id')}{rest} ORDER BY e.id LIMIT {limit_arg}) AS p"
            )
        if selected.users:
            parties = (
                f"SELECT ep.event_id AS id FROM event_parties AS ep WHERE ep.address = v.address "
                f"AND {bounded('ep.event_id')} ORDER BY ep.event_id LIMIT {limit_arg}"
                if not conditions else
                f"SELECT ep.event_id AS id FROM event_parties AS ep JOIN events AS e ON e.id = ep.event_id "
                f"WHERE ep.address = v.address AND {bounded('ep.event_id')}{rest} "
                f"ORDER BY ep.event_id LIMIT {limit_arg}"
            )
            branches.append(
                f"SELECT p.id FROM unnest({arg(sorted(selected.users))}::text[]) AS v(address) "
                f"CROSS JOIN LATERAL ({parties}) AS p"
            )
    # An event of several selected streams or addresses comes out of several scans: once is enough.
    sql = (
        f"SELECT {EVENT_COLUMNS} FROM events AS e JOIN (SELECT DISTINCT id FROM ({' UNION ALL '.join(branches)}) AS b) "
        f"AS picked USING (id) ORDER BY id LIMIT {limit_arg}"
    )
    return list(await conn.fetch(sql, *arg.values))


async def latest_event_id(conn: asyncpg.Connection | asyncpg.Pool) -> str:
    """The newest indexed event's id, or "" before the first (every id sorts after "")."""
    return await conn.fetchval("SELECT coalesce(max(id), '') FROM events") or ""


async def event_exists(conn: asyncpg.Connection | asyncpg.Pool, event_id: str) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM contract_events WHERE id = $1)", event_id))
