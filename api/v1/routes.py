"""The reads of FlowFi's backend under /v1: streams, their events, claimable amounts, summaries, users,
an address's event history, health and SSE statistics, with its parameters and shapes (api.v1.shapes).

Its access rules, whatever FLOWFI_AUTH_* says of this API's own routes: chain data is public (streams,
their events, claimable, summaries, users); `/v1/users/me` and `/v1/events` need a token, and
`/v1/events` shows only the token's own address (admins: any). Unknown query parameters are ignored,
as the backend did; a malformed value is a 400 naming the parameter, where the backend fell back to a
default or answered 500. Lists are offset pages, as the backend's were (`limit`, `offset` or `page`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api import filters, rest
from api.auth import Authenticator, AuthError, Principal
from api.filters import BadRequest
from api.payloads import EVENT_COLUMNS, iso_time
from api.queries import Args
from api.v1 import shapes
from api.v1.errors import V1Error, refused
from indexer.events import U64_MAX
from indexer.tables import STREAM_STATUSES

DIGITS = re.compile(r"[0-9]{1,20}")
STREAM_SORTS = {"createdAt": "created_at", "startTime": "start_time", "lastUpdateTime": "last_update_time",
                "depositedAmount": "deposited", "endTime": "end_time"}
STREAM_PAGE = (20, 100)  # default and largest page of /v1/streams
EVENT_PAGE = (50, 200)  # of the event lists
STREAM_EVENTS_SHOWN = 100  # GET /v1/streams/:id carries its newest events, up to this many
USER_STREAMS_SHOWN = 10
OFFSET_MAX = 2**62


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


def caller(request: Request) -> Principal:
    """The token's owner; 401 without a valid token."""
    authenticator: Authenticator = request.app.state.authenticator
    try:
        return authenticator.principal(request)
    except AuthError as exc:
        raise refused(exc) from None


# --- parameters ---------------------------------------------------------------------------------------


def _whole(params: QueryParams, name: str) -> int | None:
    text = filters.single(params, name)
    if text is None:
        return None
    if not DIGITS.fullmatch(text.strip()):
        raise BadRequest(name, f"{name}: {filters.shown(text, name)} is not a whole number")
    return int(text)


def _page(params: QueryParams, sizes: tuple[int, int]) -> tuple[int, int]:
    """(limit, offset): `limit` (0 or absent: the default; at most the largest), then `offset`, else
    `page` (from 1)."""
    default, largest = sizes
    limit = min(_whole(params, "limit") or default, largest)
    offset = _whole(params, "offset")
    page = _whole(params, "page")  # checked even where offset wins: a bad parameter is a 400
    if page == 0:
        raise BadRequest("page", "page: pages are numbered from 1")
    given = "offset" if offset is not None else "page"
    if offset is None:
        offset = ((page or 1) - 1) * limit
    if offset > OFFSET_MAX:  # PostgreSQL's OFFSET is a bigint; answering another offset than asked misleads
        raise BadRequest(given, f"{given}: at most an offset of {OFFSET_MAX}")
    return limit, offset


def _choice(params: QueryParams, name: str, allowed: Sequence[str], default: str) -> str:
    text = filters.single(params, name)
    return default if text is None else filters.choice(text, name, allowed)


def stream_id_of(text: str) -> int:
    """A path's stream id, as the backend took it: digits, surrounding spaces allowed (0 is its system
    stream, the protocol's events)."""
    if not DIGITS.fullmatch(text.strip()) or int(text) > U64_MAX:
        raise V1Error(400, "Invalid streamId parameter", f"{filters.shown(text)} is not a stream id (a whole number)",
                      parameter="streamId")
    return int(text)


def _contract(params: QueryParams) -> str | None:
    text = filters.single(params, "contractId")
    return None if text is None else filters.contract_id(text, "contractId")


def _address(text: str, parameter: str) -> str:
    return filters.address(text.strip(), parameter)


# --- streams ------------------------------------------------------------------------------------------


async def streams_json(pool: asyncpg.Pool, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    pauses = await shapes.pauses_of(pool, (row["stream_id"] for row in rows))
    return [shapes.stream_json(row, pauses) for row in rows]


async def _endings(pool: asyncpg.Pool, rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, int], list[Any]]:
    """Each finished stream's cancel or completion event, by (contract, stream id)."""
    finished = sorted({int(row["stream_id"]) for row in rows if row["status"] not in shapes.RUNNING})
    if not finished:
        return {}
    found = await pool.fetch(f"SELECT {EVENT_COLUMNS} FROM events AS e WHERE stream_id = ANY($1::numeric[]) "
                             "AND kind = ANY($2::text[]) ORDER BY id", finished, list(shapes.ENDINGS))
    endings: dict[tuple[str, int], list[Any]] = {}
    for row in found:
        endings.setdefault((row["contract_id"], int(row["stream_id"])), []).append(row)
    return endings


async def list_streams(request: Request) -> Response:
    """GET /v1/streams: filters sender, recipient, status, token (and contractId); sort, order, limit,
    offset or page. Each item carries `events`: its cancel or completion event, if any (the backend's
    dashboard tells a cancelled stream from a completed one by them)."""
    params = request.query_params
    status = filters.single(params, "status")
    if status is not None and status not in STREAM_STATUSES:
        raise V1Error(400, "Invalid status parameter", f"status must be one of: {', '.join(STREAM_STATUSES)}",
                      parameter="status")
    equal = {
        "sender": None if (v := filters.single(params, "sender")) is None else _address(v, "sender"),
        "recipient": None if (v := filters.single(params, "recipient")) is None else _address(v, "recipient"),
        "status": status,
        "token": None if (v := filters.single(params, "token")) is None else filters.contract_id(v.strip(), "token"),
        "contract_id": _contract(params),
    }
    sort = STREAM_SORTS[_choice(params, "sort", tuple(STREAM_SORTS), "createdAt")]
    order = _choice(params, "order", ("asc", "desc"), "desc")
    limit, offset = _page(params, STREAM_PAGE)
    given = {column: value for column, value in equal.items() if value is not None}
    values = list(given.values())
    where = " AND ".join(f"{column} = ${n}" for n, column in enumerate(given, start=1)) or "TRUE"
    pool = _pool(request)
    total = await pool.fetchval(f"SELECT count(*) FROM streams WHERE {where}", *values)
    rows = await pool.fetch(
        f"{rest.SELECT_STREAMS} WHERE {where} ORDER BY {sort} {order}, stream_id {order}, contract_id {order} "
        f"LIMIT ${len(values) + 1} OFFSET ${len(values) + 2}", *values, limit, offset)
    items = await streams_json(pool, rows)
    endings = await _endings(pool, rows)
    for item, row in zip(items, rows, strict=True):
        ending = endings.get((row["contract_id"], int(row["stream_id"])), [])
        item["events"] = [shapes.event_json(event, shapes.Pauses()) for event in ending]
    return JSONResponse({"data": items, "total": total, "hasMore": offset + len(items) < total,
                         "limit": limit, "offset": offset})


async def one_stream(request: Request) -> asyncpg.Record:
    """The stream the path names (`contractId` chooses among contracts that share the id)."""
    stream_id = stream_id_of(request.path_params["streamId"])
    rows = await rest.streams_with_id(_pool(request), stream_id, _contract(request.query_params))
    if not rows:
        raise V1Error(404, "Stream not found", f"no stream {stream_id} has been indexed")
    if len(rows) > 1:
        raise V1Error(409, "Conflict", f"stream id {stream_id} exists in {len(rows)} contracts; choose one with "
                      "contractId=", parameter="contractId", contractIds=[row["contract_id"] for row in rows])
    return rows[0]


async def get_stream(request: Request) -> Response:
    """GET /v1/streams/:streamId: the stream, with its newest events (page through the rest at
    /v1/streams/:streamId/events)."""
    row = await one_stream(request)
    pool = _pool(request)
    (body,) = await streams_json(pool, [row])
    events = await pool.fetch(f"SELECT {EVENT_COLUMNS} FROM events AS e WHERE stream_id = $1 AND contract_id = $2 "
                              "ORDER BY id DESC LIMIT $3", row["stream_id"], row["contract_id"], STREAM_EVENTS_SHOWN)
    pauses = await shapes.pauses_of(pool, [row["stream_id"]])
    body["events"] = [shapes.event_json(event, pauses) for event in events]
    return JSONResponse(body)


async def stream_events(request: Request) -> Response:
    """GET /v1/streams/:streamId/events: newest first (order=asc: oldest), eventType (one, as the backend
    took it, or several, comma-separated), limit, offset or page, or cursor (an event id: the events after
    it). The page is under `data` (the backend's key) and `events` (its stream page's)."""
    params = request.query_params
    stream_id = stream_id_of(request.path_params["streamId"])
    contract = _contract(params)
    given = filters.single(params, "eventType")
    event_types = None if given is None else given.split(",")
    if event_types is not None and not set(event_types) <= set(shapes.KINDS_OF_TYPE):
        raise V1Error(400, "Invalid eventType parameter", f"eventType must be one of: {', '.join(shapes.EVENT_TYPES)}"
                      " (or several, comma-separated)", parameter="eventType")
    order = _choice(params, "order", ("asc", "desc"), "desc")
    cursor = filters.single(params, "cursor")
    limit, offset = _page(params, EVENT_PAGE)
    if stream_id and contract is None:
        contracts = {row["contract_id"] for row in await rest.streams_with_id(_pool(request), stream_id, None)}
        if len(contracts) > 1:
            raise V1Error(409, "Conflict", f"stream id {stream_id} exists in {len(contracts)} contracts; choose one "
                          "with contractId=", parameter="contractId", contractIds=sorted(contracts))
    arg = Args()
    where = [f"stream_id = {arg(stream_id)}" if stream_id else "stream_id IS NULL"]
    if contract is not None:
        where.append(f"contract_id = {arg(contract)}")
    if event_types is not None:
        kinds = sorted(kind for event_type in event_types for kind in shapes.KINDS_OF_TYPE[event_type])
        where.append(f"kind = ANY({arg(kinds)}::text[])")
    pool = _pool(request)
    total = await pool.fetchval(f"SELECT count(*) FROM events WHERE {' AND '.join(where)}", *arg.values)
    if cursor is not None:
        where.append(f"id {'>' if order == 'asc' else '<'} {arg(filters.event_id(cursor, 'cursor'))}")
        offset = 0
    rows = await pool.fetch(f"SELECT {EVENT_COLUMNS} FROM events AS e WHERE {' AND '.join(where)} ORDER BY id {order} "
                            f"LIMIT {arg(limit)} OFFSET {arg(offset)}", *arg.values)
    pauses = await shapes.pauses_of(pool, [stream_id] if stream_id else [])
    events = [shapes.event_json(row, pauses) for row in rows]
    more = len(events) == limit if cursor is not None else offset + len(events) < total
    return JSONResponse({"data": events, "events": events, "total": total, "hasMore": more})


async def ledger_now(pool: asyncpg.Pool, row: Mapping[str, Any]) -> int:
    """Now, as the chain tells it: the ledger time the index is at (see rest.ledger_time)."""
    moment, _ledger = await rest.ledger_time(pool, row)
    return shapes.seconds(moment)


async def claimable(request: Request) -> Response:
    """GET /v1/streams/:streamId/claimable?at=: what the recipient could withdraw at `at` (Unix seconds;
    default: the ledger time the index is at), by the contract's formula for the stream's schedule."""
    text = filters.single(request.query_params, "at")
    # calculatedAt is a JSON number: past 2**53 JavaScript reads another one
    if text is not None and (not DIGITS.fullmatch(text.strip()) or int(text) >= shapes.SAFE_INTEGER):
        raise V1Error(400, "Invalid query parameter", "'at' must be a Unix timestamp in seconds, 0 to 2**53 - 1",
                      parameter="at")
    row = await one_stream(request)
    at = int(text) if text is not None else await ledger_now(_pool(request), row)
    amount = rest.claimable_at(row, at)
    return JSONResponse({"streamId": shapes.u64(row["stream_id"]), "claimableAmount": str(amount),
                         "actionable": amount > 0, "calculatedAt": at, "cached": False})


# --- users --------------------------------------------------------------------------------------------


async def summary(request: Request) -> Response:
    """GET /v1/users/:address/summary and /v1/streams/summary/:address: streams created, what their
    recipients withdrew (streamed out), what the address withdrew (streamed in), what it could claim now,
    and its running (active or paused) streams each way."""
    address = _address(request.path_params["address"], "address")
    pool = _pool(request)
    totals = await pool.fetchrow(
        "SELECT count(*) FILTER (WHERE sender = $1) AS created, "
        "coalesce(sum(withdrawn) FILTER (WHERE sender = $1), 0)::text AS streamed_out, "
        "coalesce(sum(withdrawn) FILTER (WHERE recipient = $1), 0)::text AS streamed_in, "
        "count(*) FILTER (WHERE sender = $1 AND status = ANY($2::text[])) AS active_out, "
        "count(*) FILTER (WHERE recipient = $1 AND status = ANY($2::text[])) AS active_in "
        "FROM streams WHERE sender = $1 OR recipient = $1", address, sorted(shapes.RUNNING))
    incoming = await pool.fetch(f"{rest.SELECT_STREAMS} WHERE recipient = $1 AND status = ANY($2::text[])",
                                address, sorted(shapes.RUNNING))
    claimable_now = 0
    now: dict[str, int] = {}  # by contract
    for row in incoming:
        if row["contract_id"] not in now:
            now[row["contract_id"]] = await ledger_now(pool, row)
        claimable_now += rest.claimable_at(row, now[row["contract_id"]])
    return JSONResponse({
        "address": address,
        "totalStreamsCreated": totals["created"],
        "totalStreamedOut": totals["streamed_out"],
        "totalStreamedIn": totals["streamed_in"],
        "currentClaimable": str(claimable_now),
        "activeOutgoingCount": totals["active_out"],
        "activeIncomingCount": totals["active_in"],
    })


async def _user(pool: asyncpg.Pool, address: str) -> dict[str, Any]:
    body: dict[str, Any] = {"publicKey": address}
    for key, column in (("sentStreams", "sender"), ("receivedStreams", "recipient")):
        rows = await pool.fetch(f"{rest.SELECT_STREAMS} WHERE {column} = $1 ORDER BY created_at DESC, stream_id DESC "
                                "LIMIT $2", address, USER_STREAMS_SHOWN)
        body[key] = await streams_json(pool, rows)
    return body


async def me(request: Request) -> Response:
    """GET /v1/users/me: the token's address and its newest streams each way."""
    principal = caller(request)
    if principal.address is None:
        raise V1Error(403, "Forbidden", "the token names no address (its sub claim)")
    return JSONResponse(await _user(_pool(request), principal.address))


ACCOUNT = re.compile(r"G[A-Z2-7]{55}")


def _account(request: Request) -> str:
    text = request.path_params["publicKey"]
    if not ACCOUNT.fullmatch(text):
        raise V1Error(400, "Invalid Stellar public key format", f"{filters.shown(text)} is not an account address "
                      "(G... of 56 characters)", parameter="publicKey")
    return filters.address(text, "publicKey")


async def user(request: Request) -> Response:
    """GET /v1/users/:publicKey: an address with streams, and its newest streams each way; 404 for an
    address no indexed stream names (there is no registration: an address is a user once a stream names it)."""
    address = _account(request)
    body = await _user(_pool(request), address)
    if not body["sentStreams"] and not body["receivedStreams"]:
        raise V1Error(404, "User not found", f"no indexed stream names {address}")
    return JSONResponse(body)


async def _address_events(pool: asyncpg.Pool, address: str, kinds: Sequence[str] | None, limit: int,
                          offset: int) -> tuple[int, list[asyncpg.Record]]:
    arg = Args()
    condition = f"p.address = {arg(address)}"
    if kinds is not None:
        condition += f" AND e.kind = ANY({arg(list(kinds))}::text[])"
    source = f"FROM event_parties AS p JOIN events AS e ON e.id = p.event_id WHERE {condition}"
    total = await pool.fetchval(f"SELECT count(*) {source}", *arg.values)
    rows = await pool.fetch(
        f"SELECT {EVENT_COLUMNS} FROM events AS e JOIN (SELECT p.event_id AS id {source} ORDER BY p.event_id DESC "
        f"LIMIT {arg(limit)} OFFSET {arg(offset)}) AS picked USING (id) ORDER BY id DESC", *arg.values)
    return total, list(rows)


async def user_events(request: Request) -> Response:
    """GET /v1/users/:publicKey/events: the events concerning an address, newest first, each with its stream."""
    address = _account(request)
    limit, offset = _page(request.query_params, EVENT_PAGE)
    pool = _pool(request)
    total, rows = await _address_events(pool, address, None, limit, offset)
    keys = {(row["contract_id"], int(row["stream_id"])) for row in rows if row["stream_id"] is not None}
    streams = await pool.fetch(f"{rest.SELECT_STREAMS} WHERE stream_id = ANY($1::numeric[])",
                               sorted({stream_id for _, stream_id in keys}))
    pauses = await shapes.pauses_of(pool, (stream_id for _, stream_id in keys))
    by_key = {(row["contract_id"], int(row["stream_id"])): shapes.stream_json(row, pauses) for row in streams}
    data = []
    for row in rows:
        event = shapes.event_json(row, pauses)
        key = None if row["stream_id"] is None else (row["contract_id"], int(row["stream_id"]))
        event["stream"] = by_key.get(key) if key is not None else None
        data.append(event)
    return JSONResponse({"data": data, "total": total, "hasMore": offset + len(data) < total, "limit": limit,
                         "offset": offset})


async def events(request: Request) -> Response:
    """GET /v1/events?address=: the events concerning the token's own address (admins: any), newest
    first; `type` a comma-separated list of eventTypes (unknown ones are dropped)."""
    principal = caller(request)
    params = request.query_params
    text = filters.single(params, "address")
    if text is None or not text.strip():
        raise V1Error(400, "address query parameter is required", "give address=<your G... address>",
                      parameter="address")
    address = _address(text, "address")
    if not principal.admin and address != principal.address:
        raise V1Error(403, "Forbidden", "You can only view your own event history")
    kinds = None
    if (given := filters.single(params, "type")) is not None:
        types = {part.strip().upper() for part in given.split(",")} & set(shapes.KINDS_OF_TYPE)
        if not types:
            raise V1Error(400, "No valid event types in `type` filter",
                          f"type: give one or more of {', '.join(shapes.EVENT_TYPES)}, comma-separated",
                          parameter="type")
        kinds = sorted(kind for event_type in types for kind in shapes.KINDS_OF_TYPE[event_type])
    limit, offset = _page(params, EVENT_PAGE)
    pool = _pool(request)
    total, rows = await _address_events(pool, address, kinds, limit, offset)
    pauses = await shapes.pauses_of(pool, (row["stream_id"] for row in rows if row["stream_id"] is not None))
    items = [shapes.event_json(row, pauses) for row in rows]
    return JSONResponse({"events": items, "total": total, "limit": limit, "offset": offset,
                         "hasMore": offset + len(items) < total})


# --- operations ---------------------------------------------------------------------------------------


async def health(request: Request) -> Response:
    """GET /v1/health: the backend's health body, from this server's readiness checks, with `ledger`
    (the last indexed ledger, which its settings page shows); 503 when not ready."""
    checks, lag, age = await rest.readiness(request)
    pool = _pool(request)
    cursor = None
    failures = {"count": 0, "last": None}
    if checks["database"] == "ok":
        cursor = await pool.fetchrow("SELECT max(last_ledger) AS ledger, "
                                     "coalesce(sum(events_indexed), 0)::bigint AS events FROM indexer_cursor")
        found = await pool.fetchrow("SELECT count(*) AS count, max(recorded_at) AS last FROM dead_letters")
        failures = {"count": found["count"], "last": found["last"]}
    ready = all(result == "ok" for result in checks.values())
    indexer_ok = checks["indexer"] == "ok"
    body = {
        "status": "ok" if ready else "degraded",
        "db": "connected" if checks["database"] == "ok" else "disconnected",
        "indexerEnabled": True,
        "indexerLag": None if age is None else round(age, 3),
        "indexerLagLedgers": lag,
        "eventsProcessed": 0 if cursor is None else cursor["events"],
        "eventsFailed": failures["count"],
        "lastErrorAt": None if failures["last"] is None else iso_time(failures["last"]),
        "indexerDegraded": not indexer_ok,
        "uptime": round(time.monotonic() - request.app.state.started, 3),
        "ledger": None if cursor is None else cursor["ledger"],
        "checks": {
            "database": {"status": "ok" if checks["database"] == "ok" else "down"},
            "indexer": {"status": "ok" if indexer_ok else "degraded", "enabled": True, "lagSeconds": age,
                        "detail": checks["indexer"]},
            "redis": {"status": "not_configured"},
            "listener": {"status": "ok" if checks["listener"] == "ok" else "down"},
        },
    }
    return JSONResponse(body, 200 if ready else 503)


async def stats(request: Request) -> Response:
    """GET /v1/events/stats: open SSE connections (this API's and /v1's), the addresses holding them, the
    most one address has held, and the limit."""
    limits = request.app.state.limits
    return JSONResponse({
        "activeConnections": limits.total,
        "activeIps": len(limits.by_ip),
        "perIpPeakConnections": limits.peak_per_ip,
        "maxConnections": request.app.state.settings.max_connections,
        "timestamp": shapes.iso_ms(datetime.now(UTC)),  # when these figures were read
    })
