"""A Python client for `GET /events/subscribe` that resumes by itself.

    async for event in subscribe("http://localhost:8080", streams=[7]):
        print(event.id, event.type, event.data.get("amount", ""))

`subscribe` keeps one Server-Sent Events connection open and, whenever it drops (a connection error,
the server closing the stream, a 5xx or a refused connection while reconnecting), reconnects after a
jittered exponential backoff, sending the id of the last event it yielded as `Last-Event-ID` (and as
the `lastEventId` query parameter), so the server replays exactly what was missed. Event ids sort in
chain order, so an id at or before the last one yielded is dropped: no event is yielded twice.

Errors (all `SubscribeError`):

    SubscribeError
      +-- SubscriptionRejected   a 4xx answer: a bad filter (400), a wrong URL (404)... Retrying
      |                          would give the same answer, so it is raised at once, with the
      |                          server's message.
      +-- ResumeRejected         the server does not know the id to resume from (a 400 naming
      |                          lastEventId): the history was pruned or the id belongs to another
      |                          database; start again without `last_event_id` (or from an older,
      |                          known id).
      +-- TokenExpired           the access token expired while streaming (the server's `error`
                                 frame with status 401): subscribe again with a new token and
                                 `last_event_id=exc.last_event_id`; nothing is lost.

Everything else (transport errors, 5xx, 408, 429, an unexpected content type from a proxy, a clean
close) is retried forever; cancel the iteration (or break out of it) to stop. When the loop's body
raises, the connection is closed in order as the exception leaves (nothing is left for the garbage
collector to close on another task).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import SSEError, aconnect_sse

__all__ = ["Event", "ResumeRejected", "SubscribeError", "Subscription", "SubscriptionRejected", "TokenExpired",
           "subscribe"]

log = logging.getLogger(__name__)

SUBSCRIBE_PATH = "/events/subscribe"
# The server sends a heartbeat comment every 15 s: a silent connection after this long is dead.
DEFAULT_READ_TIMEOUT = 45.0
RETRYABLE_CLIENT_STATUSES = frozenset({408, 425, 429})
RESUME_PARAMETERS = frozenset({"lastEventId", "Last-Event-ID", "cursor"})


@dataclass(frozen=True, slots=True)
class Event:
    """One event as the server sent it: `id` is the chain event id (SSE `id:`), `type` its SSE name
    (e.g. "stream.withdrawn"), `data` the decoded JSON payload (amounts as decimal strings)."""

    id: str
    type: str
    data: dict[str, Any] = field(hash=False, compare=False)


class SubscribeError(Exception):
    """The subscription cannot continue; retrying would not help."""


class SubscriptionRejected(SubscribeError):
    """The server refused the request (4xx), e.g. a bad filter; `status` and `message` say why, and
    `parameter` names the query parameter at fault when the server says which."""

    def __init__(self, status: int, message: str, parameter: str | None = None) -> None:
        super().__init__(f"the server refused the subscription ({status}): {message}")
        self.status = status
        self.message = message
        self.parameter = parameter


class ResumeRejected(SubscribeError):
    """The server cannot resume from `last_event_id` (unknown or no longer kept)."""

    def __init__(self, last_event_id: str | None, message: str) -> None:
        super().__init__(
            f"the server cannot resume after event {last_event_id!r}: {message}; "
            "subscribe again without last_event_id, or from an id the server still has"
        )
        self.last_event_id = last_event_id
        self.message = message


class TokenExpired(SubscribeError):
    """The access token expired; resume with a new one after `last_event_id`."""

    def __init__(self, last_event_id: str | None, message: str) -> None:
        super().__init__(f"{message} (subscribe again with a new token and last_event_id={last_event_id!r})")
        self.last_event_id = last_event_id
        self.message = message


class _Dropped(Exception):
    """The connection ended or failed in a way worth retrying."""


def query_params(
    *, streams: Iterable[int | str] = (), users: Iterable[str] = (), types: Iterable[str] = (), all: bool = False
) -> dict[str, str]:
    """The filter as query parameters, in the comma-separated form."""
    params: dict[str, str] = {}
    for name, chosen in (("streams", streams), ("users", users), ("types", types)):
        joined = ",".join(str(value) for value in chosen)
        if joined:
            params[name] = joined
    if all:
        params["all"] = "true"
    return params


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """The wait before reconnect number `attempt` (1, 2, ...): exponential, capped, with "equal
    jitter" (between half and all of it) so that many clients dropped together do not return
    together."""
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _error_message(response_text: str) -> str:
    try:
        body = json.loads(response_text)
    except ValueError:
        return response_text.strip()[:300] or "no reason given"
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    return response_text.strip()[:300]


def _status_of(frame_data: str) -> int | None:
    try:
        body = json.loads(frame_data)
    except ValueError:
        return None
    status = body.get("status") if isinstance(body, dict) else None
    return status if isinstance(status, int) else None


def _parameter(response_text: str) -> str | None:
    """The query parameter a refusal names (the API's 400 bodies say which), if any."""
    try:
        body = json.loads(response_text)
    except ValueError:
        return None
    parameter = body.get("parameter") if isinstance(body, dict) else None
    return parameter if isinstance(parameter, str) else None


def subscribe(
    base_url: str,
    *,
    streams: Iterable[int | str] = (),
    users: Iterable[str] = (),
    types: Iterable[str] = (),
    all: bool = False,
    last_event_id: str | None = None,
    client: httpx.AsyncClient | None = None,
    retry_delay: float = 1.0,
    max_retry_delay: float = 30.0,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    on_drop: Callable[[str, float], object] | None = None,
    on_connect: Callable[[], object] | None = None,
    token: str | None = None,
) -> Subscription:
    """The events the filter selects, live, forever, resuming by itself after any drop: iterate with
    `async for`; `aclose()` (or leaving `async with subscribe(...) as events:`) ends it.

    base_url       the API's root, e.g. "http://localhost:8080" (the path /events/subscribe is added).
    streams        stream ids; users: G.../C... addresses; types: SSE names such as "stream.created";
                   all: every event. With none of them the server refuses the request (400).
    last_event_id  replay from just after this event id, then go live; None: live events only.
    client         an httpx.AsyncClient to use (left open); by default one is made and closed.
    retry_delay    the first reconnect delay in seconds (the server's `retry:` value replaces it);
                   it doubles on each failed attempt up to `max_retry_delay`, with jitter.
    read_timeout   seconds of silence (no event, no heartbeat) after which the connection is
                   considered dead and replaced; applies when `client` is not given.
    token          an access token, sent as `Authorization: Bearer <token>`, for servers that require one.
    on_drop        called as on_drop(reason, delay_seconds) each time the connection is lost, before
                   waiting to reconnect (to show the state to a user; logging happens anyway).
    on_connect     called each time the server has accepted the subscription (before any event).

    Raises SubscriptionRejected on a 4xx answer (a bad filter), ResumeRejected when the server
    does not know the id to resume from, and TokenExpired when the token runs out; see the module
    docstring.
    """
    return Subscription(_events(
        base_url, params=query_params(streams=streams, users=users, types=types, all=all),
        last_event_id=last_event_id, client=client, retry_delay=retry_delay, max_retry_delay=max_retry_delay,
        read_timeout=read_timeout, on_drop=on_drop, on_connect=on_connect, token=token,
    ))


CANCEL_AGAIN = 0.5  # seconds a closing subscription waits for its connection's task before cancelling again


class Subscription:
    """An async iterator of events whose connection lives in a task of its own.

    The connection (httpx's stream and the SSE parser, themselves async generators) is driven by that
    task, so it is always closed in order on that task: when this is closed, when it is garbage, and
    when the event loop ends (asyncio.run cancels the task) even if the loop over it raised. Closing
    nested async generators from the loop body's task, or leaving them to the garbage collector, gives
    "asynchronous generator is already running" errors and "Task exception was never retrieved"."""

    def __init__(self, events: AsyncIterator[Event]) -> None:
        self._events = events
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=1)
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        if self._closed:
            raise StopAsyncIteration
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(_pump(self._events, self._queue))
            self._task.add_done_callback(_retrieve)
        if self._queue.empty() and self._task.done():
            self._task.result()  # the subscription's error
            raise StopAsyncIteration
        get = asyncio.ensure_future(self._queue.get())
        try:
            await asyncio.wait({get, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not get.done():
                get.cancel()
        if get.done() and not get.cancelled():
            return get.result()
        self._task.result()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """End the subscription and close its connection."""
        self._closed = True
        if self._task is None:
            await self._events.aclose()  # type: ignore[attr-defined]
            return
        # A cancellation can be lost in the HTTP stack (a read whose timeout fires as the task is cancelled
        # is reported as a timeout, which the connection loop takes for a drop): cancel until it ends.
        while not self._task.done():
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=CANCEL_AGAIN)
        await asyncio.gather(self._task, return_exceptions=True)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()


async def _pump(events: AsyncIterator[Event], queue: asyncio.Queue[Event]) -> None:
    async with contextlib.aclosing(events):  # type: ignore[type-var]
        async for event in events:
            await queue.put(event)


def _retrieve(task: asyncio.Task[None]) -> None:
    """Mark the task's outcome as seen: it is raised to whoever iterates, if anyone still does."""
    if not task.cancelled():
        task.exception()


async def _events(
    base_url: str,
    *,
    params: dict[str, str],
    last_event_id: str | None,
    client: httpx.AsyncClient | None,
    retry_delay: float,
    max_retry_delay: float,
    read_timeout: float,
    on_drop: Callable[[str, float], object] | None,
    on_connect: Callable[[], object] | None,
    token: str | None,
) -> AsyncIterator[Event]:
    """The connection loop behind `subscribe` (see there for the arguments)."""
    url = base_url.rstrip("/") + SUBSCRIBE_PATH
    own_client = client is None
    http = client or httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=read_timeout))
    last_id = last_event_id
    base_delay = retry_delay
    attempt = 0
    try:
        while True:
            connect_params = dict(params)
            headers: dict[str, str] = {"Authorization": f"Bearer {token}"} if token else {}
            if last_id is not None:
                connect_params["lastEventId"] = last_id
                headers["Last-Event-ID"] = last_id
            received = 0
            try:
                async with aconnect_sse(http, "GET", url, params=connect_params, headers=headers) as source:
                    response = source.response
                    if 400 <= response.status_code < 500 and response.status_code not in RETRYABLE_CLIENT_STATUSES:
                        await response.aread()
                        parameter = _parameter(response.text)
                        if parameter in RESUME_PARAMETERS:
                            raise ResumeRejected(last_id, _error_message(response.text))
                        raise SubscriptionRejected(response.status_code, _error_message(response.text), parameter)
                    if response.status_code != 200:
                        raise _Dropped(f"HTTP {response.status_code}")
                    if on_connect is not None:
                        on_connect()
                    async with contextlib.aclosing(source.aiter_sse()) as frames:
                        async for sse in frames:
                            if sse.retry is not None:
                                base_delay = sse.retry / 1000
                            if sse.event == "error":  # how the server ends a stream whose token expired
                                if _status_of(sse.data) == 401:
                                    raise TokenExpired(last_id, _error_message(sse.data))
                                raise SubscriptionRejected(_status_of(sse.data) or 400, _error_message(sse.data))
                            if sse.id and not sse.data:
                                # a position marker: nothing to yield, but resume from here after a drop
                                if last_id is None or sse.id > last_id:
                                    last_id = sse.id
                                continue
                            if not sse.id or not sse.data:
                                continue
                            if last_id is not None and sse.id <= last_id:
                                continue  # already yielded (ids sort in chain order)
                            event = Event(id=sse.id, type=sse.event, data=json.loads(sse.data))
                            last_id = event.id
                            received += 1
                            attempt = 0
                            yield event
                    raise _Dropped("the server closed the stream")
            except (_Dropped, httpx.TransportError, SSEError) as exc:
                if (task := asyncio.current_task()) is not None and task.cancelling():
                    raise asyncio.CancelledError from exc  # a drop while being cancelled: the cancellation's
                reason = str(exc) or type(exc).__name__
            attempt += 1
            delay = backoff_delay(attempt, base_delay, max(max_retry_delay, base_delay))
            log.info("event stream dropped (%s) after %d event(s); reconnecting in %.2fs after %s",
                     reason, received, delay, last_id or "now")
            if on_drop is not None:
                on_drop(reason, delay)
            await asyncio.sleep(delay)
    finally:
        if own_client:
            await http.aclose()
