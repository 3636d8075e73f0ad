"""The REST API over the indexed tables, plus /health, /ready and /openapi.json.

Every list is a keyset page: `{"items": [...], "nextCursor": "..." | null}`, `limit` 1-500 (default 50),
`cursor` the `nextCursor` of the previous page. Streams are ordered by stream id, then contract id (their
cursor is "streamId:contractId"); events and dead letters by event id (their cursor is the last event id
seen, the same id SSE sends). Each page is one index scan whatever its depth.

Errors are JSON `{"error": "<what to do>"}`, with "parameter" when one parameter is at fault: 400 for
a malformed request (`api.filters.BadRequest`), 404 for an unknown stream, 409 for a stream id that
several indexed contracts use (add `contractId`).

Times in stream state are ledger close times: `claimableNow` is computed at the ledger time the index is at
(`asOf`: the chain's newest close time once the worker has caught up; while it catches up, the close time
of the newest event indexed), never the server's clock. `asOfLedger` is the last ledger indexed whole.
`asOfEventId` is the newest stored event when the state was read: subscribing with
`lastEventId=asOfEventId` continues from exactly this state.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from http import HTTPStatus
from typing import Any

import asyncpg
from sqlalchemy import ARRAY, DateTime, Numeric
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from api import filters, outage
from api.auth import AuthError, principal_of, require_admin
from api.filters import BadRequest
from api.payloads import EVENT_COLUMNS, event_payload, iso_time
from api.queries import Args, events_after
from indexer import accrual, ids
from indexer.events import payload_key
from indexer.tables import STREAM_STATUSES, streams
from indexer.unavailable import DATABASE_UNAVAILABLE

log = logging.getLogger(__name__)

STREAM_COLUMNS: tuple[str, ...] = tuple(column.name for column in streams.columns)
_NUMERIC_COLUMNS = frozenset(c.name for c in streams.columns if isinstance(c.type, Numeric))
_TIME_COLUMNS = frozenset(c.name for c in streams.columns if isinstance(c.type, DateTime))
_ARRAY_COLUMNS = frozenset(c.name for c in streams.columns if isinstance(c.type, ARRAY))
# Each stream with its token's symbol and decimals where the tokens table knows them (NULL otherwise).
SELECT_STREAMS = (f"SELECT {', '.join(STREAM_COLUMNS)}, token_symbol, token_decimals FROM streams LEFT JOIN LATERAL "
                  "(SELECT symbol AS token_symbol, decimals AS token_decimals FROM tokens "
                  "WHERE tokens.address = streams.token) AS token_metadata ON true")
# Keyset on (stream_id, contract_id), spelled so that `stream_id >= $a` is an index condition of every
# (x, stream_id) and (stream_id) index.
_AFTER_STREAM = "stream_id >= {a} AND (stream_id > {a} OR contract_id > {b})"
_ORDER_STREAMS = "ORDER BY stream_id, contract_id"
READY_TIMEOUT = 2.0
# Where the indexer is: how far behind the chain its furthest-behind cursor is, and how long ago it last
# polled (server clock: this is about the worker being alive, not about the chain).
CURSOR_HEALTH = ("SELECT max(latest_ledger - last_ledger) AS lag, max(last_ledger) AS last_ledger, "
                 "max(latest_ledger) AS latest_ledger, max(last_event_id) AS last_event_id, "
                 "extract(epoch FROM now() - max(updated_at))::float8 AS age FROM indexer_cursor")


class ApiError(Exception):
    """A 404, 409 or other refusal that is not a malformed request; `extra` joins the JSON body."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


# --- JSON shapes --------------------------------------------------------------------------------------


def stream_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A streams row with the API's keys: amounts and u64 times as decimal strings, times as ISO; and its
    token's symbol and decimals (null while unknown)."""
    body: dict[str, Any] = {}
    for name in STREAM_COLUMNS:
        value = row[name]
        if value is not None and name in _NUMERIC_COLUMNS:
            value = str(int(value))
        elif value is not None and name in _TIME_COLUMNS:
            value = iso_time(value)
        elif name in _ARRAY_COLUMNS:
            value = [str(int(item)) for item in value]
        body[payload_key(name)] = value
        if name == "token":
            body["tokenAddress"] = value  # as the /streams filter and the events name it; `token` is its old name
    body["tokenSymbol"], body["tokenDecimals"] = row["token_symbol"], row["token_decimals"]
    return body


def claimable_at(row: Mapping[str, Any], now: int) -> int:
    """What a streams row's recipient could withdraw at `now` (a ledger time)."""
    return accrual.claimable_in(row["status"], terms_of(row), now)


def terms_of(row: Mapping[str, Any]) -> accrual.Terms:
    """The accrual terms a streams row records."""
    paused_at, cliff_time, cliff_amount = row["paused_at"], row["cliff_time"], row["cliff_amount"]
    return accrual.Terms(
        rate=int(row["rate_per_second"]), deposited=int(row["deposited"]), withdrawn=int(row["withdrawn"]),
        last_update_time=int(row["last_update_time"]), paused_at=None if paused_at is None else int(paused_at),
        schedule=row["schedule"], cliff_time=None if cliff_time is None else int(cliff_time),
        cliff_amount=0 if cliff_amount is None else int(cliff_amount),
        steps=tuple(zip(map(int, row["step_times"]), map(int, row["step_amounts"]), strict=True)),
    )


def dead_letter_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "eventId": row["event_id"],
        "event": row["event"],
        "reason": row["reason"],
        "recordedAt": iso_time(row["recorded_at"]),
        "contractId": row["contract_id"],
        "ledger": row["ledger"],
        "ledgerClosedAt": iso_time(row["ledger_closed_at"]),
        "transactionHash": row["tx_hash"],
        "topicXdr": list(row["topic_xdr"]),
        "valueXdr": row["value_xdr"],
    }


def page(items: list[dict[str, Any]], next_cursor: str | None) -> JSONResponse:
    return JSONResponse({"items": items, "nextCursor": next_cursor})


# --- parameters ---------------------------------------------------------------------------------------


def _stream_cursor(params: QueryParams) -> tuple[int, str] | None:
    text = filters.single(params, "cursor")
    if text is None:
        return None
    head, sep, tail = text.partition(":")
    if not sep:
        raise BadRequest(
            "cursor", f"cursor: {filters.shown(text)} is not a stream cursor; pass the nextCursor of the previous page"
        )
    return filters.stream_id(head, "cursor"), filters.contract_id(tail, "cursor")


def _encode_stream_cursor(row: Mapping[str, Any]) -> str:
    return f"{int(row['stream_id'])}:{row['contract_id']}"


def _event_cursor(params: QueryParams) -> str:
    text = filters.single(params, "cursor")
    return "" if text is None else filters.position(text, "cursor")


def _optional(params: QueryParams, name: str, check: Callable[[str, str], Any]) -> Any:
    text = filters.single(params, name)
    return None if text is None else check(text, name)


def _status(text: str, parameter: str) -> str:
    return filters.choice(text, parameter, STREAM_STATUSES)


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


def _keyset_streams(arg: Args, after: tuple[int, str] | None) -> list[str]:
    if after is None:
        return []
    return [_AFTER_STREAM.format(a=arg(after[0]), b=arg(after[1]))]


def _stream_page(rows: Sequence[Mapping[str, Any]], limit: int) -> JSONResponse:
    more = len(rows) > limit
    rows = rows[:limit]
    return page([stream_json(row) for row in rows], _encode_stream_cursor(rows[-1]) if more else None)


def _event_page(rows: Sequence[Mapping[str, Any]], limit: int) -> JSONResponse:
    more = len(rows) > limit
    rows = rows[:limit]
    return page([event_payload(row) for row in rows], rows[-1]["id"] if more else None)


# --- streams ------------------------------------------------------------------------------------------

STREAMS_PARAMS = ("sender", "recipient", "status", "tokenAddress", "token", "contractId", "cursor", "limit")
# The token contract filter was called `token`, which is also the credential's query parameter: with
# authentication on, `token` is the credential here as everywhere, and the filter is `tokenAddress`.
ASSET_FILTER, OLD_ASSET_FILTER = "tokenAddress", "token"


def _asset(request: Request) -> str | None:
    params = request.query_params
    names = [ASSET_FILTER]
    if not request.app.state.settings.authenticating:
        names.append(OLD_ASSET_FILTER)
    given = [name for name in names if name in params]
    if len(given) > 1:
        raise BadRequest(OLD_ASSET_FILTER, "give the token contract once, as tokenAddress (token is its old name)")
    return _optional(params, given[0], filters.contract_id) if given else None


async def list_streams(request: Request) -> Response:
    params = request.query_params
    filters.reject_unknown(params, STREAMS_PARAMS)
    equal = {
        "sender": _optional(params, "sender", filters.address),
        "recipient": _optional(params, "recipient", filters.address),
        "status": _optional(params, "status", _status),
        "token": _asset(request),
        "contract_id": _optional(params, "contractId", filters.contract_id),
    }
    after = _stream_cursor(params)
    limit = filters.page_size(params)
    arg = Args()
    where = [f"{column} = {arg(value)}" for column, value in equal.items() if value is not None]
    if (mine := principal_of(request).restricted_to) is not None:
        where.append(f"(sender = {arg(mine)} OR recipient = {arg(mine)})")
    where += _keyset_streams(arg, after)
    sql = f"{SELECT_STREAMS} {_where(where)} {_ORDER_STREAMS} LIMIT {arg(limit + 1)}"
    return _stream_page(await _pool(request).fetch(sql, *arg.values), limit)


USER_STREAMS_PARAMS = ("role", "status", "cursor", "limit")


async def user_streams(request: Request) -> Response:
    user = filters.address(request.path_params["address"], "address")
    if (mine := principal_of(request).restricted_to) is not None and mine != user:
        raise AuthError(403, "a user token lists only its own streams: use /users/<your address>/streams")
    params = request.query_params
    filters.reject_unknown(params, USER_STREAMS_PARAMS)
    role = _optional(params, "role", lambda text, name: filters.choice(text, name, ("sender", "recipient")))
    status = _optional(params, "status", _status)
    after = _stream_cursor(params)
    limit = filters.page_size(params)
    arg = Args()
    user_arg, limit_arg = arg(user), arg(limit + 1)
    common = _keyset_streams(arg, after)
    if status is not None:
        common.append(f"status = {arg(status)}")
    # One index scan per role, each stopping after a page, merged: a stream where the user is both
    # sender and recipient appears once.
    branches = [
        f"({SELECT_STREAMS} {_where([f'{column} = {user_arg}', *common])} {_ORDER_STREAMS} LIMIT {limit_arg})"
        for column in (("sender", "recipient") if role is None else (role,))
    ]
    sql = f"SELECT * FROM ({' UNION '.join(branches)}) AS s {_ORDER_STREAMS} LIMIT {limit_arg}"
    return _stream_page(await _pool(request).fetch(sql, *arg.values), limit)


async def streams_with_id(pool: asyncpg.Pool, stream_id: int, contract: str | None, *,
                          with_position: bool = False) -> list[asyncpg.Record]:
    """The streams rows with this stream id (one per indexed contract that has it), or of one contract. With
    `with_position`, also `as_of_event_id`: the newest stored event when the rows were read (one statement,
    one snapshot), where a subscription continues from this state without a gap."""
    arg = Args()
    where = [f"stream_id = {arg(stream_id)}"]
    if contract is not None:
        where.append(f"contract_id = {arg(contract)}")
    select = SELECT_STREAMS
    if with_position:
        position = ", (SELECT max(id) FROM contract_events) AS as_of_event_id"
        select = select.replace(" FROM streams", f"{position} FROM streams", 1)
    return list(await pool.fetch(f"{select} {_where(where)} ORDER BY contract_id", *arg.values))


async def ledger_time(pool: asyncpg.Pool, row: Mapping[str, Any]) -> tuple[datetime, int | None]:
    """The ledger time the index of a stream's contract is at (never before the stream's last update), and
    the last ledger it has indexed whole (None before the worker has a cursor): see indexer_cursor's columns."""
    cursor = await pool.fetchrow(
        "SELECT max(last_ledger) AS last_ledger, max(last_ledger_closed_at) AS closed_at FROM indexer_cursor "
        "WHERE $1 = ANY(string_to_array(contract_ids, ','))",
        row["contract_id"],
    )
    as_of: datetime = row["updated_at"]
    if cursor["closed_at"] is not None:
        as_of = max(as_of, cursor["closed_at"])
    return as_of, cursor["last_ledger"]


async def _one_stream(request: Request, *, with_position: bool = False) -> asyncpg.Record:
    """The stream the path names, narrowed by ?contractId=; 404 if none, 409 if several contracts."""
    stream_id = filters.stream_id(request.path_params["id"], "id")
    contract = _optional(request.query_params, "contractId", filters.contract_id)
    rows = await streams_with_id(_pool(request), stream_id, contract, with_position=with_position)
    if not rows:
        where_said = f" in contract {contract}" if contract else ""
        raise ApiError(404, f"no stream {stream_id}{where_said} has been indexed; list streams at /streams")
    if len(rows) > 1:
        contracts = [row["contract_id"] for row in rows]
        raise ApiError(
            409, f"stream id {stream_id} exists in {len(rows)} contracts; choose one with contractId=",
            parameter="contractId", contractIds=contracts,
        )
    mine = principal_of(request).restricted_to
    if mine is not None and mine not in (rows[0]["sender"], rows[0]["recipient"]):
        raise AuthError(403, f"stream {stream_id} is not yours: its sender and recipient are other addresses")
    return rows[0]


async def get_stream(request: Request) -> Response:
    filters.reject_unknown(request.query_params, ("contractId",))
    row = await _one_stream(request, with_position=True)
    as_of, as_of_ledger = await ledger_time(_pool(request), row)
    body = stream_json(row)
    claimable = claimable_at(row, int(as_of.timestamp()))
    remaining = accrual.remaining_in(row["status"], terms_of(row))
    body["claimableNow"] = str(claimable)
    body["lockedNow"] = str(remaining - claimable)
    body["remainingNow"] = str(remaining)
    body["asOf"] = iso_time(as_of)
    body["asOfLedger"] = as_of_ledger
    body["asOfEventId"] = row["as_of_event_id"]
    return JSONResponse(body)


STREAM_EVENTS_PARAMS = ("contractId", "types", "cursor", "limit")


async def stream_events(request: Request) -> Response:
    params = request.query_params
    filters.reject_unknown(params, STREAM_EVENTS_PARAMS)
    types = sorted(filters.event_type(v) for v in filters.values(params, "types"))
    after = _event_cursor(params)
    limit = filters.page_size(params)
    row = await _one_stream(request)
    arg = Args()
    where = [f"stream_id = {arg(row['stream_id'])}", f"contract_id = {arg(row['contract_id'])}", f"id > {arg(after)}"]
    if types:
        where.append(f"kind = ANY({arg(types)})")
    sql = f"SELECT {EVENT_COLUMNS} FROM events AS e {_where(where)} ORDER BY id LIMIT {arg(limit + 1)}"
    return _event_page(await _pool(request).fetch(sql, *arg.values), limit)


# --- events and dead letters --------------------------------------------------------------------------

EVENTS_PARAMS = ("types", "streams", "users", "all", "fromLedger", "toLedger", "cursor", "limit")


async def list_events(request: Request) -> Response:
    params = request.query_params
    filters.reject_unknown(params, EVENTS_PARAMS)
    selected = filters.event_filter(params, require_selection=False)
    selected = dataclasses.replace(selected, visible_to=principal_of(request).restricted_to)
    from_ledger = _optional(params, "fromLedger", filters.ledger)
    to_ledger = _optional(params, "toLedger", filters.ledger)
    if from_ledger is not None and to_ledger is not None and to_ledger < from_ledger:
        raise BadRequest("toLedger", f"toLedger ({to_ledger}) is before fromLedger ({from_ledger})")
    after = _event_cursor(params)
    limit = filters.page_size(params)
    if from_ledger is not None:
        after = max(after, ids.before_ledger(from_ledger))
    # ids of later ledgers sort after this key, those of `to_ledger` before it: the scan stops there
    up_to = None if to_ledger is None else ids.before_ledger(to_ledger + 1)
    rows = await events_after(_pool(request), after, limit + 1, selected, up_to=up_to)
    return _event_page(rows, limit)


async def list_dead_letters(request: Request) -> Response:
    require_admin(request)
    params = request.query_params
    filters.reject_unknown(params, ("cursor", "limit"))
    after = _event_cursor(params)
    limit = filters.page_size(params)
    rows = await _pool(request).fetch(
        "SELECT d.event_id, d.reason, d.recorded_at, c.contract_id, c.ledger, c.ledger_closed_at, c.tx_hash, "
        "c.topic_xdr, c.value_xdr, CASE WHEN jsonb_typeof(c.topic -> 0) = 'string' THEN c.topic ->> 0 END AS event "
        "FROM dead_letters AS d JOIN contract_events AS c ON c.id = d.event_id "
        "WHERE d.event_id > $1 ORDER BY d.event_id LIMIT $2",
        after, limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return page([dead_letter_json(row) for row in rows], rows[-1]["event_id"] if more else None)


# --- operations ---------------------------------------------------------------------------------------


# /health, /ready and /metrics take no parameters and ignore any they are given: monitors and load
# balancers add their own (a cache-buster such as ?_=1733300000), and a probe must not fail on them.


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> Response:
    """200 when the database answers, the live listener is connected, and the worker polled within
    `ready_max_cursor_age` seconds and is at most `ready_max_lag` ledgers behind the chain; else 503
    naming the failed checks. (The lag alone would stay at its last value when the worker stops.)"""
    settings = request.app.state.settings
    max_lag: int = settings.ready_max_lag
    max_age: float = settings.ready_max_cursor_age
    checks, lag, age = await readiness(request)
    failed = [name for name, result in checks.items() if result != "ok"]
    body: dict[str, Any] = {"status": "ok" if not failed else "unavailable", "checks": checks,
                            "lag": lag, "maxLag": max_lag,
                            "cursorAge": None if age is None else round(age, 3), "maxCursorAge": max_age}
    if failed:
        body["error"] = "not ready: " + "; ".join(checks[name] for name in failed)
    return JSONResponse(body, status_code=503 if failed else 200)


async def readiness(request: Request) -> tuple[dict[str, str], int | None, float | None]:
    """The checks of /ready ("ok" or what failed: database, listener, indexer), the indexer's lag in
    ledgers and the age of its last poll in seconds."""
    settings = request.app.state.settings
    max_lag: int = settings.ready_max_lag
    max_age: float = settings.ready_max_cursor_age
    checks: dict[str, str] = {}
    lag: int | None = None
    age: float | None = None
    try:
        pool: asyncpg.Pool = request.app.state.pool
        async with asyncio.timeout(READY_TIMEOUT):
            row = await pool.fetchrow(CURSOR_HEALTH)
        checks["database"] = "ok"
        lag, age = row["lag"], row["age"]
    except (OSError, TimeoutError, AttributeError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("readiness: the database did not answer: %r", exc)
        checks["database"] = f"the database did not answer ({type(exc).__name__}); check the database server"
    live = getattr(request.app.state, "live", None)
    checks["listener"] = "ok" if getattr(live, "connected", False) is True else (
        "the live listener is not connected to the database; it reconnects by itself, check the logs"
    )
    if checks["database"] != "ok":
        checks["indexer"] = "unknown: the database did not answer"
    elif lag is None or age is None:
        checks["indexer"] = "the indexer has not recorded a poll yet; is the worker running?"
    elif age > max_age:
        checks["indexer"] = (f"the indexer last polled {age:.0f} s ago (at most {max_age:.0f} s allowed): no "
                             "worker is writing, or it cannot reach the RPC server or write to the database; "
                             "its log says which")
    elif lag > max_lag:
        checks["indexer"] = f"the indexer is {lag} ledgers behind the chain (at most {max_lag} allowed)"
    else:
        checks["indexer"] = "ok"
    return checks, lag, age


async def openapi_json(request: Request) -> Response:
    from api.openapi import openapi_document

    filters.reject_unknown(request.query_params, ())
    return JSONResponse(openapi_document())


def _where(conditions: Sequence[str]) -> str:
    return f"WHERE {' AND '.join(conditions)}" if conditions else ""


# --- errors -------------------------------------------------------------------------------------------


async def _bad_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BadRequest)
    body: dict[str, Any] = {"error": exc.message}
    if exc.parameter is not None:
        body["parameter"] = exc.parameter
    return JSONResponse(body, status_code=400)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse({"error": exc.message, **exc.extra}, status_code=exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"there is no {filters.shown(request.url.path)}; the endpoints are listed at /openapi.json"
    elif exc.status_code == 405:
        message = f"{filters.shown(request.method)} is not allowed on {filters.shown(request.url.path)}; the API " \
                  "answers GET"
    else:
        message = f"the request was refused ({exc.status_code} {HTTPStatus(exc.status_code).phrase})"
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    outage.note(exc)
    return JSONResponse({"error": outage.MESSAGE}, status_code=503, headers=outage.HEADERS)


ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]

exception_handlers: dict[Any, ExceptionHandler] = {
    BadRequest: _bad_request,
    ApiError: _api_error,
    HTTPException: _http_error,
    **{error: _database_unavailable for error in DATABASE_UNAVAILABLE},
}

routes: list[BaseRoute] = [
    Route("/streams", list_streams, methods=["GET"], name="streams"),
    Route("/streams/{id}", get_stream, methods=["GET"], name="stream"),
    Route("/streams/{id}/events", stream_events, methods=["GET"], name="stream_events"),
    Route("/users/{address}/streams", user_streams, methods=["GET"], name="user_streams"),
    Route("/events", list_events, methods=["GET"], name="events"),
    Route("/dead-letters", list_dead_letters, methods=["GET"], name="dead_letters"),
    Route("/health", health, methods=["GET"], name="health"),
    Route("/ready", ready, methods=["GET"], name="ready"),
    Route("/openapi.json", openapi_json, methods=["GET"], name="openapi"),
]
