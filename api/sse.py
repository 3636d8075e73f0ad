"""GET /events/subscribe: replay from the database after a resume id, then live, with no gap.

A connection goes through three steps:
1. its filter and resume point are checked (a bad one is a 400 before any streaming starts);
2. with a resume id (the Last-Event-ID header, or `lastEventId`/`cursor` on a first connect), the
   events after it are replayed from the table in chain order, up to the hub's high-water mark;
3. once the replay has reached the high-water mark it subscribes to the hub, with no await between
   the check and the subscription, so the next event it gets live is the first one it has not seen.

Frames are written by `encode`, a pure function.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from api import filters, queries
from api.auth import principal_of
from api.filters import BadRequest, EventFilter
from api.hub import Hub, Subscriber
from api.payloads import event_payload
from indexer.settings import Settings

REPLAY_PAGE = 2000
MAX_WRITE = 256 * 1024  # bytes handed to the server in one send; bounds what a slow client holds
SUBSCRIBE_PARAMETERS = ("streams", "users", "types", "all", "lastEventId", "cursor", "token")
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),  # nginx: do not buffer
    (b"connection", b"keep-alive"),
]
HEARTBEAT = b": heartbeat\n\n"


def encode(event_id: str, event_name: str, data: str) -> bytes:
    """One SSE message. `data` must be a single line (compact JSON is)."""
    return f"id: {event_id}\nevent: {event_name}\ndata: {data}\n\n".encode()


def encode_row(row: Mapping[str, Any]) -> bytes:
    return encode(row["id"], row["kind"], json.dumps(event_payload(row), separators=(",", ":")))


def position_frame(event_id: str) -> bytes:
    return f"id: {event_id}\n\n".encode()


def retry_frame(milliseconds: int) -> bytes:
    return f"retry: {milliseconds}\n\n".encode()


def error_frame(message: str) -> bytes:
    return f"event: error\ndata: {json.dumps({'error': message})}\n\n".encode()


def resume_point(request: Request) -> str | None:
    """The id to resume after, or None for live only. The Last-Event-ID header (sent by browsers on
    reconnect) wins over the query parameters of the first connect."""
    header = request.headers.get("last-event-id", "").strip()
    if header:
        return filters.event_id(header, "Last-Event-ID")
    given = [(name, v) for name in ("lastEventId", "cursor") for v in request.query_params.getlist(name)]
    if len(given) > 1:
        raise BadRequest(given[1][0], "give one resume point: lastEventId or cursor, once")
    if not given or given[0][1] == "now":
        return None
    name, value = given[0]
    return filters.event_id(value, name)


class ConnectionLimits:
    """Open SSE connections, counted per process, per client IP and per authenticated user."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.total = 0
        self.by_ip: Counter[str] = Counter()
        self.by_user: Counter[str] = Counter()

    def refusal(self, ip: str, user: str | None) -> JSONResponse | None:
        """Why a new connection is refused, or None to admit it."""
        if self.total >= self.settings.max_connections:
            return JSONResponse({"error": "this server is at its connection limit; retry shortly or elsewhere"},
                                503, headers={"Retry-After": "5"})
        if self.by_ip[ip] >= self.settings.max_connections_per_ip:
            return JSONResponse({"error": f"too many open connections from {ip}: close some (one EventSource "
                                 "with several filters serves a whole page)"}, 429, headers={"Retry-After": "10"})
        if user is not None and self.by_user[user] >= self.settings.max_connections_per_user:
            return JSONResponse({"error": "too many open connections for this user: close some"}, 429,
                                headers={"Retry-After": "10"})
        return None

    @contextlib.contextmanager
    def held(self, ip: str, user: str | None) -> Iterator[None]:
        self.total += 1
        self.by_ip[ip] += 1
        if user is not None:
            self.by_user[user] += 1
        try:
            yield
        finally:
            self.total -= 1
            self.by_ip[ip] -= 1
            if not self.by_ip[ip]:
                del self.by_ip[ip]
            if user is not None:
                self.by_user[user] -= 1
                if not self.by_user[user]:
                    del self.by_user[user]


class Subscribe:
    """The ASGI endpoint. Reads `app.state.hub`, `app.state.pool`, `app.state.listener`,
    `app.state.settings`, `app.state.limits`."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        state = request.app.state
        principal = principal_of(request)
        try:
            filters.reject_unknown(request.query_params, SUBSCRIBE_PARAMETERS)
            selected = filters.event_filter(request.query_params, require_selection=True)
            selected = dataclasses.replace(selected, visible_to=principal.restricted_to)
            resume = resume_point(request)
        except BadRequest as exc:
            await JSONResponse({"error": exc.message, "parameter": exc.parameter}, 400)(scope, receive, send)
            return
        if not state.listener.ready:
            await JSONResponse({"error": "the live feed is starting; retry shortly"}, 503,
                               headers={"Retry-After": "2"})(scope, receive, send)
            return
        ip = request.client.host if request.client else "unknown"
        limits: ConnectionLimits = state.limits
        if (refusal := limits.refusal(ip, principal.restricted_to)) is not None:
            await refusal(scope, receive, send)
            return
        with limits.held(ip, principal.restricted_to):
            if resume is not None and not await queries.event_exists(state.pool, resume):
                await JSONResponse(
                    {"error": f"unknown event id {resume}: this server has no such event. Reconnect without a "
                     "resume id (cursor=now) or with an id from this server's events", "parameter": "lastEventId"},
                    400,
                )(scope, receive, send)
                return
            await Connection(state.hub, state.pool, state.settings, _abort_handle(receive)).run(
                selected, resume, receive, send
            )


def _abort_handle(receive: Receive) -> Callable[[], None] | None:
    """A way to close this connection at once, so that a client that stopped reading is cut off
    even while a write to it is blocked. uvicorn's `receive` belongs to the request cycle that holds
    the transport; under another server (or a middleware that wraps `receive`) there is none, and a
    dropped client's connection ends at its next completed write instead."""
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)
    return abort if callable(abort) else None


class Connection:
    def __init__(self, hub: Hub, pool: Any, settings: Settings, abort: Callable[[], None] | None) -> None:
        self.hub = hub
        self.pool = pool
        self.retry_ms = settings.retry_ms
        self.send_timeout = settings.send_timeout
        # Connections end after their lifetime, spread by ±10% so that reconnects do not come in waves.
        self.lifetime = settings.max_connection_lifetime * random.uniform(0.9, 1.1)
        self.abort = abort
        self.subscriber: Subscriber | None = None
        self.gone = False  # the client left, or was cut off
        self.ending = False  # the connection reached its lifetime

    async def run(self, selected: EventFilter, resume: str | None, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": retry_frame(self.retry_ms), "more_body": True})
        watcher = asyncio.ensure_future(self._watch_disconnect(receive))
        expiry = asyncio.get_running_loop().call_later(self.lifetime, self._expire)
        try:
            if resume is not None:
                await self._replay(selected, resume, send)
            else:
                self._go_live(selected)
            await self._live(send)
            if not self.gone:  # end the response with a retry hint: the client resumes by id
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self.send_timeout):
                        await send({"type": "http.response.body", "body": retry_frame(self.retry_ms),
                                    "more_body": False})
        finally:
            expiry.cancel()
            watcher.cancel()
            if self.subscriber is not None:
                self.hub.unsubscribe(self.subscriber)

    async def _replay(self, selected: EventFilter, position: str, send: Send) -> None:
        """Send the stored events after `position` until caught up with the hub, then go live."""
        while not (self.gone or self.ending):
            target = self.hub.high_water
            while not (self.gone or self.ending):
                rows = await queries.events_after(self.pool, position, REPLAY_PAGE, selected, up_to=target)
                if rows:
                    await self._write(send, [encode_row(row) for row in rows])
                    position = rows[-1]["id"]
                if len(rows) < REPLAY_PAGE:
                    break
            if self.hub.high_water == target:
                self._go_live(selected)  # no await since the check: no event can fall in between
                return
            position = max(position, target)

    def _go_live(self, selected: EventFilter) -> None:
        if not (self.gone or self.ending):
            self.subscriber = self.hub.subscribe(selected)
            self.subscriber.abort = self.abort
            if self.hub.high_water:
                # An id without data moves the client's Last-Event-ID to where live delivery starts, so
                # a connection that drops before its first event still resumes without a gap.
                self.subscriber.offer(position_frame(self.hub.high_water))

    async def _live(self, send: Send) -> None:
        subscriber = self.subscriber
        while subscriber is not None:
            await subscriber.wakeup.wait()
            frames = subscriber.take()
            if frames:
                await self._write(send, frames)
            if subscriber.closed_reason is not None or self.gone:
                return

    async def _write(self, send: Send, frames: list[bytes]) -> None:
        chunk: list[bytes] = []
        size = 0
        for frame in frames:
            chunk.append(frame)
            size += len(frame)
            if size >= MAX_WRITE:
                await self._send(send, b"".join(chunk))
                chunk, size = [], 0
        if chunk:
            await self._send(send, b"".join(chunk))

    async def _send(self, send: Send, body: bytes) -> None:
        try:
            async with asyncio.timeout(self.send_timeout):
                await send({"type": "http.response.body", "body": body, "more_body": True})
        except TimeoutError:
            # The client has not taken a write in send_timeout seconds: cut it off; it resumes by id.
            self.gone = True
            if self.subscriber is not None:
                self.hub.drop(self.subscriber, "a write to the client timed out")
            elif self.abort is not None:
                self.abort()

    def _expire(self) -> None:
        self.ending = True
        if self.subscriber is not None:
            self.subscriber.close("the connection reached its lifetime; reconnect to resume")

    async def _watch_disconnect(self, receive: Callable[[], Awaitable[Any]]) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        if self.subscriber is not None:
            self.hub.unsubscribe(self.subscriber)
            self.subscriber.close("the client disconnected")
