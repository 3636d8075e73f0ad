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
from indexer import ids


async def events_after(
    conn: asyncpg.Connection | asyncpg.Pool,
    after: str,
    limit: int,
    selected: EventFilter | None = None,
    *,
    up_to: str | None = None,
    from_ledger: int | None = None,
    to_ledger: int | None = None,
) -> list[asyncpg.Record]:
    """Up to `limit` events with `after` < id <= `up_to`, in chain order, that `selected` wants.

    A filter is one ordered index scan per selected stream, address or type (events (stream_id, id),
    event_parties (address, event_id), events (kind, id)), each stopping after `limit` rows, merged:
    the work per page is bounded by the page size times the number of values, however deep the page.
    """
    args: list[Any] = [after]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    conditions = []  # on the events row `e`, besides the lower bound
    if selected is not None and selected.visible_to is not None:
        if selected.selects_all:  # everything a user may see: that user's events
            selected = dataclasses.replace(selected, users=frozenset({selected.visible_to}), everything=False)
        else:
            conditions.append(f"EXISTS (SELECT 1 FROM event_parties AS vp WHERE vp.event_id = e.id "
                              f"AND vp.address = {arg(selected.visible_to)})")
    types = sorted(selected.types) if selected is not None else []
    if up_to is not None:
        conditions.append(f"e.id <= {arg(up_to)}")
    # ledgers as bounds of the id, whose order every scan here follows
    if from_ledger is not None:
        conditions.append(f"e.id > {arg(ids.before_ledger(from_ledger))}")
    if to_ledger is not None:
        conditions.append(f"e.id < {arg(ids.before_ledger(to_ledger + 1))}")
    limit_arg = arg(limit)
    by_kind = selected is None or selected.selects_all
    if types and not by_kind:
        conditions.append(f"e.kind = ANY({arg(types)})")
    rest = "".join(f" AND {c}" for c in conditions)

    if by_kind and not types:
        sql = f"SELECT {EVENT_COLUMNS} FROM events AS e WHERE e.id > $1{rest} ORDER BY e.id LIMIT {limit_arg}"
        return list(await conn.fetch(sql, *args))
    branches = []
    if by_kind:
        branches.append(
            f"SELECT p.id FROM unnest({arg(types)}::text[]) AS v(kind) CROSS JOIN LATERAL ("
            f"SELECT e.id FROM events AS e WHERE e.kind = v.kind AND e.id > $1{rest} "
            f"ORDER BY e.id LIMIT {limit_arg}) AS p"
        )
    else:
        assert selected is not None
        if selected.streams:
            branches.append(
                f"SELECT p.id FROM unnest({arg(sorted(selected.streams))}::numeric[]) AS v(stream_id) "
                f"CROSS JOIN LATERAL (SELECT e.id FROM events AS e WHERE e.stream_id = v.stream_id AND e.id > $1"
                f"{rest} ORDER BY e.id LIMIT {limit_arg}) AS p"
            )
        if selected.users:
            parties = (
                f"SELECT ep.event_id AS id FROM event_parties AS ep WHERE ep.address = v.address "
                f"AND ep.event_id > $1 ORDER BY ep.event_id LIMIT {limit_arg}"
                if not conditions else
                f"SELECT ep.event_id AS id FROM event_parties AS ep JOIN events AS e ON e.id = ep.event_id "
                f"WHERE ep.address = v.address AND ep.event_id > $1{rest} ORDER BY ep.event_id LIMIT {limit_arg}"
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
    return list(await conn.fetch(sql, *args))


async def latest_event_id(conn: asyncpg.Connection | asyncpg.Pool) -> str:
    """The newest indexed event's id, or "" before the first (every id sorts after "")."""
    return await conn.fetchval("SELECT coalesce(max(id), '') FROM events") or ""


async def event_exists(conn: asyncpg.Connection | asyncpg.Pool, event_id: str) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM contract_events WHERE id = $1)", event_id))
