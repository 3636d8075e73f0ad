"""GET /events/subscribe: replay from the database after a resume id, then live, with no gap.

A connection goes through three steps:
1. its filter and resume point are checked (a bad one is a 400 before any streaming starts);
2. with a resume id (the Last-Event-ID header, or `lastEventId`/`cursor` on a first connect), the
   events after it are replayed from the table in chain order, up to the hub's high-water mark;
3. once the replay has reached the high-water mark it subscribes to the hub, with no await between
   the check and the subscription, so the next event it gets live is the first one it has not seen.
   Live, the hub writes a published page's frames straight to the socket of a connection that waits
   idle (`Connection.write_now`); a connection that is busy, or whose client reads slowly, gets them
   through its queue, written by its own task.

A stream ends after its lifetime (with a retry hint: the client resumes by id) or when its access
token expires: nothing is sent after the expiry, and within half a second of it, event or not, the
stream closes with an `error` frame saying so (status 401), for the client to get a new token and
resume from its last id.

Frames are written by `encode`, a pure function.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from api import filters, outage, queries
from api.auth import principal_of
from api.cors import cors_headers
from api.filters import BadRequest, EventFilter
from api.hub import Hub, LiveEvent, Subscriber
from api.payloads import event_payload
from api.settings import ApiSettings
from indexer.unavailable import DATABASE_UNAVAILABLE

SUBSCRIBE_PATH = "/events/subscribe"
REPLAY_PAGE = 2000
FEED_BEHIND_POLL = 0.05  # seconds between looks at a live feed that has not yet published a client's resume id
MAX_WRITE = 256 * 1024  # bytes handed to the server in one send; bounds what a slow client holds
SUBSCRIBE_PARAMETERS = ("streams", "users", "types", "all", "lastEventId", "cursor")
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),  # nginx: do not buffer
    (b"connection", b"keep-alive"),
]
HEARTBEAT = b": heartbeat\n\n"
TOKEN_EXPIRED = b'event: error\ndata: %s\n\n' % orjson.dumps({
    "error": "the access token has expired: get a new one and reconnect with it, resuming after the last "
             "event id received",
    "status": 401,
})


def encode(event_id: str, event_name: str, data: bytes) -> bytes:
    """One SSE message. `data` must be a single line (compact JSON is)."""
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (event_id.encode(), event_name.encode(), data)


def encode_row(row: Mapping[str, Any]) -> bytes:
    # orjson: compact JSON as bytes, about four times faster than json.dumps on replay's hot path
    return encode(row["id"], row["kind"], orjson.dumps(event_payload(row)))


def position_frame(event_id: str) -> bytes:
    return f"id: {event_id}\n\n".encode()


def retry_frame(milliseconds: int) -> bytes:
    return f"retry: {milliseconds}\n\n".encode()


def _resume_given(request: Request) -> list[tuple[str, str]]:
    """The resume ids a request gives, each with the header or parameter giving it. The Last-Event-ID
    header (sent by browsers on reconnect) wins over the query parameters of the first connect."""
    # Starlette reads header bytes as Latin-1: read again as UTF-8, an error repeats what the client sent
    headers = [("Last-Event-ID", value) for header in request.headers.getlist("last-event-id")
               if (value := header.encode("latin-1").decode("utf-8", "replace").strip())]
    if headers:
        return headers
    return [(name, v) for name in ("lastEventId", "cursor") for v in request.query_params.getlist(name)]


def resume_point(request: Request) -> str | None:
    """The id to resume after ("" for the very start: 0 or the all-zero id), or None for live only."""
    given = _resume_given(request)
    if len(given) > 1:
        raise BadRequest(given[1][0], "give one resume point: the Last-Event-ID header, lastEventId or cursor, once")
    if not given or given[0][1] == "now":
        return None
    name, value = given[0]
    return filters.position(value, name)


def resume_parameter(request: Request) -> str:
    """The header or parameter that gave `resume_point`'s id."""
    return _resume_given(request)[0][0]


class Refusal(Exception):
    """A subscription answered with an error instead of a stream."""

    def __init__(self, status: int, message: str, parameter: str | None = None, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.parameter = parameter
        self.headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}

    def response(self, cors: list[tuple[bytes, bytes]], dialect: Dialect) -> JSONResponse:
        body, headers = dialect.refusal(self.status, self.message, self.parameter)
        headers = {**self.headers, **headers, **{name.decode(): value.decode() for name, value in cors}}
        return JSONResponse(body, self.status, headers=headers)


class ConnectionLimits:
    """Open SSE connections, counted per process, per client IP and per authenticated user."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.total = 0
        self.by_ip: Counter[str] = Counter()
        self.by_user: Counter[str] = Counter()
        self.peak_per_ip = 0  # the most connections one address has held since the process started

    def check(self, ip: str, user: str | None) -> None:
        """Refuse a new connection past a limit."""
        if self.total >= self.settings.max_connections:
            raise Refusal(503, "this server is at its connection limit; retry shortly or elsewhere", retry_after=5)
        if self.by_ip[ip] >= self.settings.max_connections_per_ip:
            raise Refusal(429, f"too many open connections from {ip}: close some (one EventSource with several "
                          "filters serves a whole page)", retry_after=10)
        if user is not None and self.by_user[user] >= self.settings.max_connections_per_user:
            raise Refusal(429, "too many open connections for this user: close some", retry_after=10)

    def take(self, ip: str, user: str | None) -> None:
        self.total += 1
        self.by_ip[ip] += 1
        self.peak_per_ip = max(self.peak_per_ip, self.by_ip[ip])
        if user is not None:
            self.by_user[user] += 1

    def give_back(self, ip: str, user: str | None) -> None:
        self.total -= 1
        self.by_ip[ip] -= 1
        if not self.by_ip[ip]:
            del self.by_ip[ip]
        if user is not None:
            self.by_user[user] -= 1
            if not self.by_user[user]:
                del self.by_user[user]


@dataclass(frozen=True, slots=True)
class Selection:
    """What a subscription asks for, once its parameters and credentials are checked."""

    selected: EventFilter
    resume: str | None
    user: str | None  # the address the connection counts against (per-user limit)
    expires_at: float | None  # the token's expiry, Unix time: the stream ends then
    opening: bytes = b""  # frames sent right after the retry hint
    headers: tuple[tuple[bytes, bytes], ...] = ()  # response headers besides HEADERS and CORS


class Dialect:
    """How a subscription is asked for and what its frames look like: this API's (this class), or
    FlowFi's backend's under /v1 (api.v1.subscribe), which shares everything else of the connection."""

    render: Callable[[LiveEvent], bytes | None] | None = None  # live frames; None: the hub's own

    def refusal(self, status: int, message: str, parameter: str | None) -> tuple[dict[str, Any], dict[str, str]]:
        """A refused subscription's body, and headers it needs."""
        return {"error": message, "parameter": parameter}, {}

    def select(self, request: Request) -> Selection:
        """The subscription a request asks for; BadRequest or Refusal when it cannot have it."""
        principal = principal_of(request)
        filters.reject_unknown(request.query_params, SUBSCRIBE_PARAMETERS)
        selected = filters.event_filter(request.query_params, require_selection=True)
        resume = resume_point(request)
        visible_to = principal.restricted_to
        return Selection(dataclasses.replace(selected, visible_to=visible_to), resume, visible_to,
                         principal.expires_at)

    def encode_row(self, row: Mapping[str, Any]) -> bytes | None:
        """A replayed row's frame (None: not sent)."""
        return encode_row(row)


class Subscribe:
    """The ASGI endpoint. A plain callable handing over the connection's one coroutine: nothing of
    its own stays on the call stack of a stream that may live for hours."""

    def __init__(self, dialect: Dialect | None = None) -> None:
        self.dialect = dialect or Dialect()

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        return Connection(scope["app"].state, request_cycle(receive), self.dialect).serve(scope, receive, send)


def request_cycle(receive: Receive) -> Any:
    """uvicorn's request cycle behind `receive`, or None under another server (or a middleware that
    wraps `receive`). It offers what ASGI does not: its `transport`, to cut off a client that stopped
    reading even while a write to it is blocked, and to write a live frame to an idle connection
    without waking its task; its flow control, which says whether the client's buffer has room; and
    its `disconnected` flag, which saves each connection a task waiting for the disconnect message."""
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    has_all = (hasattr(cycle, "disconnected") and hasattr(getattr(cycle, "flow", None), "write_paused")
               and callable(getattr(transport, "abort", None)) and callable(getattr(transport, "write", None)))
    return cycle if has_all else None


class Connection:
    """One subscriber's stream. Reads the app's state: hub, pool, listener, settings, limits."""

    __slots__ = ("hub", "pool", "listener", "limits", "settings", "deadline", "expires", "cycle", "subscriber",
                 "gone", "dialect", "chunked")

    def __init__(self, state: Any, cycle: Any, dialect: Dialect) -> None:
        self.dialect = dialect
        self.hub: Hub = state.hub
        self.pool = state.pool
        self.listener = state.listener
        self.limits: ConnectionLimits = state.limits
        self.settings: ApiSettings = state.settings
        # Streams end after their lifetime, spread by ±10% so that reconnects do not come in waves;
        # checked whenever the stream wakes, and by the hub's sweep of streams that are over (api.app).
        self.deadline = asyncio.get_running_loop().time() + (
            self.settings.max_connection_lifetime * random.uniform(0.9, 1.1)
        )
        self.expires = math.inf  # when the access token expires, on the loop's clock
        self.cycle = cycle
        self.subscriber: Subscriber | None = None
        self.gone = False  # the client left, or was cut off
        self.chunked = False  # the response's body goes out in HTTP/1.1 chunks (see write_now)

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Admit, replay, then stream live until the client leaves, is dropped, or the stream ends. One
        coroutine on purpose: every frame on this stack lives as long as the connection."""
        cors = cors_headers(Headers(scope=scope).get("origin"), self.settings.cors_origins)
        try:
            admission, ip = self._admit(scope)
            self.limits.take(ip, admission.user)
        except Refusal as refusal:
            await refusal.response(cors, self.dialect)(scope, receive, send)
            return
        if admission.expires_at is not None:
            self.expires = asyncio.get_running_loop().time() + (admission.expires_at - time.time())
            self.deadline = min(self.deadline, self.expires)
        # Without uvicorn's flag a task waits for the disconnect message; with it, a live client that left
        # is noticed by the hub's sweep (within a second), a replaying one at its next write.
        watcher = None if self.cycle is not None else asyncio.ensure_future(self._watch_disconnect(receive))
        self.chunked = scope.get("http_version") == "1.1"
        try:
            resume = admission.resume
            try:
                known = not resume or await queries.event_exists(self.pool, resume)
            except DATABASE_UNAVAILABLE as exc:
                outage.note(exc)
                await Refusal(503, outage.MESSAGE, retry_after=int(outage.HEADERS["Retry-After"])).response(
                    cors, self.dialect)(scope, receive, send)
                return
            if not known:
                await Refusal(400, f"unknown event id {resume}: this server has no such event. Resume from an id of "
                              "this server's events, or take live events only: a new EventSource sends no "
                              "Last-Event-ID, and lastEventId=now asks for none", resume_parameter(Request(scope))
                              ).response(cors, self.dialect)(scope, receive, send)
                return
            await send({"type": "http.response.start", "status": 200,
                        "headers": HEADERS + cors + list(admission.headers)})
            await send({"type": "http.response.body", "body": retry_frame(self.settings.retry_ms) + admission.opening,
                        "more_body": True})
            if resume is not None:
                try:
                    await self._replay(admission.selected, resume, send)
                except DATABASE_UNAVAILABLE as exc:  # the stream ends; the client resumes by id
                    outage.note(exc)
            else:
                self._go_live(admission.selected, self.hub.high_water)
            loop = asyncio.get_running_loop()
            subscriber = self.subscriber
            while subscriber is not None and not self.gone:
                await subscriber.wakeup()
                if loop.time() >= self.expires:
                    break  # before sending anything more
                frames = subscriber.take()
                if frames:
                    await self._write(send, frames)
                if subscriber.closed_reason is not None or loop.time() >= self.deadline:
                    break
            if not self.gone:  # end the response with a retry hint (the client resumes by id) or why not
                last = TOKEN_EXPIRED if loop.time() >= self.expires else retry_frame(self.settings.retry_ms)
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self.settings.send_timeout):
                        await send({"type": "http.response.body", "body": last, "more_body": False})
        finally:
            if watcher is not None:
                watcher.cancel()
            if self.subscriber is not None:
                self.hub.unsubscribe(self.subscriber)
            self.limits.give_back(ip, admission.user)

    def _admit(self, scope: Scope) -> tuple[Selection, str]:
        """The subscription a request asks for and the client's address, or a Refusal saying why it
        cannot have it."""
        request = Request(scope)
        try:
            selection = self.dialect.select(request)
        except BadRequest as exc:
            raise Refusal(400, exc.message, exc.parameter) from exc
        if not self.listener.ready:
            raise Refusal(503, "the live feed is starting; retry shortly", retry_after=2)
        ip = request.client.host if request.client else "unknown"
        self.limits.check(ip, selection.user)
        return selection, ip

    async def _replay(self, selected: EventFilter, position: str, send: Send) -> None:
        """Send the stored events after `position` until caught up with the hub, then go live."""
        loop = asyncio.get_running_loop()
        quiet_since = loop.time()
        while not self.gone and loop.time() < self.deadline:
            target = self.hub.high_water
            if position > target:  # the client has events this process has not published yet
                if await queries.events_after(self.pool, target, 1, up_to=position):
                    quiet_since = await self._wait_for_feed(send, quiet_since)  # then replayed from `position`
                    continue
                if self.hub.high_water == target:  # none is stored there (the id is a dead letter's)
                    self._go_live(selected, position)
                    return
                continue
            rows = await queries.events_after(self.pool, position, REPLAY_PAGE, selected, up_to=target)
            while rows and not self.gone:
                if loop.time() >= self.expires:
                    return
                position = rows[-1]["id"]
                # While this page is encoded and sent, the database reads the next.
                following = (asyncio.ensure_future(
                    queries.events_after(self.pool, position, REPLAY_PAGE, selected, up_to=target))
                    if len(rows) == REPLAY_PAGE else None)
                try:
                    encode = self.dialect.encode_row
                    frames = [frame for row in rows if (frame := encode(row)) is not None]
                    self.hub.stats.events_replayed += await self._write(send, frames)
                except BaseException:
                    if following is not None:
                        following.cancel()
                    raise
                rows = await following if following is not None else []
            if self.hub.high_water == target:
                self._go_live(selected, target)  # no await since the check: no event can fall in between
                return
            position = max(position, target)

    async def _wait_for_feed(self, send: Send, quiet_since: float) -> float:
        """A pause while the live feed is behind the client's position: the client may leave meanwhile (the
        sweep sees only live subscribers), and a stream quiet since `quiet_since` gets the heartbeat a live
        one would. When the stream was last written to."""
        await asyncio.sleep(FEED_BEHIND_POLL)
        if self.cycle is not None and self.cycle.disconnected:
            self.gone = True
            return quiet_since
        now = asyncio.get_running_loop().time()
        if now < quiet_since + self.settings.heartbeat_interval:
            return quiet_since
        await self._write(send, [HEARTBEAT])
        return now

    def _go_live(self, selected: EventFilter, position: str) -> None:
        """Deliver what the hub publishes from now on, the client's stream being at `position`."""
        if not self.gone:
            self.subscriber = self.hub.subscribe(selected, self.dialect.render)
            if self.cycle is not None:
                self.subscriber.link = self
            if position:
                # An id without data moves the client's Last-Event-ID to where live delivery starts, so
                # a connection that drops before its first event still resumes without a gap.
                self.subscriber.offer(position_frame(position))

    # The hub's link to a live connection (api.hub.Link), where uvicorn's request cycle is at hand.

    def abort(self) -> None:
        self.cycle.transport.abort()

    def over(self, now: float) -> bool:
        return bool(self.cycle.disconnected) or now >= self.deadline

    def write_now(self, data: bytes) -> bool:
        """Write live frames to the socket directly, as the server would (an HTTP/1.1 chunk; h11 keeps no
        count of a chunked body), when the client's buffer has room and the stream is not over; else
        False, and the frames go through the connection's queue and `send`, which wait for the client."""
        cycle = self.cycle
        if (not self.chunked or cycle.flow.write_paused or cycle.disconnected
                or asyncio.get_running_loop().time() >= self.deadline):
            return False
        cycle.transport.write(b"%x\r\n%b\r\n" % (len(data), data))
        return True

    async def _write(self, send: Send, frames: list[bytes]) -> int:
        """Send `frames` in writes of about MAX_WRITE bytes; how many went out (none after a write that did
        not, see _send)."""
        chunk: list[bytes] = []
        size = sent = 0
        for frame in frames:
            chunk.append(frame)
            size += len(frame)
            if size >= MAX_WRITE:
                if not await self._send(send, b"".join(chunk)):
                    return sent
                sent += len(chunk)
                chunk, size = [], 0
        if chunk and await self._send(send, b"".join(chunk)):
            sent += len(chunk)
        return sent

    async def _send(self, send: Send, body: bytes) -> bool:
        """Whether `body` went out to a client still there: not after the access token's expiry, nor when
        the client took no write in send_timeout seconds (it is then cut off) or has left."""
        if asyncio.get_running_loop().time() >= self.expires:
            return False  # nothing goes out after the access token's expiry, not even the rest of a replayed page
        try:
            async with asyncio.timeout(self.settings.send_timeout):
                await send({"type": "http.response.body", "body": body, "more_body": True})
        except TimeoutError:
            # The client has not taken a write in send_timeout seconds: cut it off; it resumes by id.
            self.gone = True
            if self.subscriber is not None:
                self.hub.drop(self.subscriber, "a write to the client timed out")
            elif self.cycle is not None:
                self.cycle.transport.abort()
        if self.cycle is not None and self.cycle.disconnected:
            self._left()
        return not self.gone

    async def _watch_disconnect(self, receive: Callable[[], Awaitable[Any]]) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self._left()

    def _left(self) -> None:
        self.gone = True
        if self.subscriber is not None:
            self.hub.unsubscribe(self.subscriber)
            self.subscriber.close("the client disconnected")
