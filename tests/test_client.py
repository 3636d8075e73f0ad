"""The Python client resumes by itself, against a real SSE server on loopback that misbehaves on purpose:
it closes connections mid-burst (sometimes mid-frame), answers 503, goes away and comes back on the
same port, and replays more than it was asked to."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from api.client import (
    Event,
    ResumeRejected,
    Subscription,
    SubscriptionRejected,
    backoff_delay,
    query_params,
    subscribe,
)


def event_id(n: int) -> str:
    """Ids shaped like the chain's ("%019d-%010d"), in order."""
    return f"{(n // 3 + 2) << 32:019d}-{n % 3:010d}"


def frame(n: int) -> bytes:
    data = {"id": event_id(n), "type": "stream.withdrawn", "streamId": str(n % 5 + 1), "amount": str(10**20 + n)}
    return f"id: {event_id(n)}\nevent: stream.withdrawn\ndata: {json.dumps(data)}\n\n".encode()


@dataclass
class Connection:
    path: str
    query: dict[str, list[str]]
    last_event_id: str | None
    authorization: str | None = None


@dataclass
class FlakyServer:
    """Serves events 0..count-1 over SSE from just after the requested id.

    `plan(n)` decides what connection number n (from 0) gets: ("events", k) sends k events then a
    partial frame and closes; ("status", code) answers with that status; ("unknown-id", 0) answers
    400 naming lastEventId, as the API does for an id it does not know; ("replay", k) first re-sends
    the two events before the requested id (a server replaying too much), then k events.
    """

    count: int
    plan: Callable[[int], tuple[str, int]]
    connections: list[Connection] = field(default_factory=list)
    server: asyncio.Server | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", self.port, reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = (await reader.readuntil(b"\r\n\r\n")).decode()
            request_line, *header_lines = request.split("\r\n")
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in header_lines if line)
            }
            target = urlsplit(request_line.split(" ")[1])
            query = parse_qs(target.query)
            resume = headers.get("last-event-id") or next(iter(query.get("lastEventId", [])), None)
            self.connections.append(Connection(target.path, query, resume, headers.get("authorization")))
            what, k = self.plan(len(self.connections) - 1)
            if what in ("status", "unknown-id"):
                message = {"error": f"status {k} on purpose"} if what == "status" else {
                    "error": "unknown event id", "parameter": "lastEventId"}
                body = json.dumps(message).encode()
                k = 400 if what == "unknown-id" else k
                writer.write(
                    f"HTTP/1.1 {k} Whatever\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
                    "connection: close\r\n\r\n".encode() + body
                )
                return
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
                         b"connection: close\r\n\r\nretry: 10\n\n: heartbeat\n\n")
            first = 0 if resume is None else [event_id(n) for n in range(self.count)].index(resume) + 1
            if what == "replay":
                first = max(0, first - 2)
                k += 2
            for n in range(first, min(first + k, self.count)):
                writer.write(frame(n))
                await writer.drain()
            if first + k < self.count:
                writer.write(frame(first + k)[:25])  # cut mid-frame: must not be taken as an event
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def flaky_server(count: int, plan: Callable[[int], tuple[str, int]]) -> AsyncIterator[FlakyServer]:
    server = FlakyServer(count, plan)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def collect(events: AsyncIterator[Event], count: int) -> list[Event]:
    got: list[Event] = []
    async with asyncio.timeout(30):
        async for event in events:
            got.append(event)
            if len(got) == count:
                break
    return got


async def test_resumes_after_drops_mid_burst_and_yields_each_event_once_in_order() -> None:
    def plan(n: int) -> tuple[str, int]:
        if n % 4 == 3:
            return ("status", 503)
        return ("events", 1 + (n * 7) % 9)

    async with flaky_server(200, plan) as server:
        received = await collect(subscribe(server.url, streams=[1, 2], retry_delay=0.01), 200)
    assert [e.id for e in received] == [event_id(n) for n in range(200)]
    assert received[5].data["amount"] == str(10**20 + 5)
    assert received[5].type == "stream.withdrawn"
    assert len(server.connections) > 30
    # each reconnect asks for exactly what follows the last event received
    ids = [e.id for e in received]
    resumed = [c.last_event_id for c in server.connections[1:]]
    assert all(r in ids for r in resumed)
    assert server.connections[0].last_event_id is None
    assert all(c.query["streams"] == ["1,2"] and c.path == "/events/subscribe" for c in server.connections)


async def test_never_yields_an_id_twice_when_the_server_replays_too_much() -> None:
    async with flaky_server(60, lambda n: ("replay", 5)) as server:
        received = await collect(subscribe(server.url, all=True, retry_delay=0.01), 60)
    assert [e.id for e in received] == [event_id(n) for n in range(60)]


async def test_resumes_from_a_given_id_on_the_first_connect() -> None:
    async with flaky_server(30, lambda n: ("events", 8)) as server:
        received = await collect(subscribe(server.url, all=True, last_event_id=event_id(9), retry_delay=0.01), 20)
    assert [e.id for e in received] == [event_id(n) for n in range(10, 30)]
    assert server.connections[0].query["lastEventId"] == [event_id(9)]


async def test_survives_the_server_going_away_and_coming_back_on_the_same_port() -> None:
    async with flaky_server(40, lambda n: ("events", 15)) as server:
        events = subscribe(server.url, types=["stream.withdrawn"], retry_delay=0.02, max_retry_delay=0.2)
        first = await collect(events, 15)
        await server.stop()  # connections are now refused
        restarted = asyncio.create_task(collect(events, 25))
        await asyncio.sleep(0.5)
        assert not restarted.done()
        await server.start()
        rest = await restarted
        await events.aclose()
    assert [e.id for e in first + rest] == [event_id(n) for n in range(40)]


async def test_a_bad_filter_raises_at_once_with_the_servers_message() -> None:
    async with flaky_server(10, lambda n: ("status", 400)) as server:
        with pytest.raises(SubscriptionRejected, match="status 400 on purpose") as caught:
            await collect(subscribe(server.url, types=["nope"], retry_delay=0.01), 1)
    assert caught.value.status == 400
    assert len(server.connections) == 1


async def test_an_unknown_resume_id_raises_instead_of_retrying() -> None:
    async with flaky_server(10, lambda n: ("unknown-id", 0)) as server:
        with pytest.raises(ResumeRejected, match="unknown event id"):
            await collect(subscribe(server.url, all=True, last_event_id=event_id(3), retry_delay=0.01), 1)
    assert len(server.connections) == 1


async def test_a_token_is_sent_as_a_bearer_header_on_every_connection() -> None:
    async with flaky_server(10, lambda n: ("events", 4)) as server:
        await collect(subscribe(server.url, all=True, token="t0k", retry_delay=0.01), 10)
    assert len(server.connections) >= 3
    assert all(c.authorization == "Bearer t0k" for c in server.connections)


def test_query_params_use_the_comma_separated_form() -> None:
    assert query_params(streams=[1, 2], users=["GA", "CB"], types=["stream.created"], all=True) == {
        "streams": "1,2", "users": "GA,CB", "types": "stream.created", "all": "true",
    }
    assert query_params() == {}


@pytest.mark.parametrize("attempt", [1, 2, 5, 20])
def test_backoff_grows_with_jitter_and_is_capped(attempt: int) -> None:
    ceiling = min(8.0, 0.5 * 2 ** (attempt - 1))
    delays = [backoff_delay(attempt, 0.5, 8.0) for _ in range(200)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1


def test_a_loop_body_that_raises_leaves_only_its_own_error() -> None:
    """The loop over subscribe() raises (as the README's snippet once did, on a missing key): the
    program ends with that error alone, the connection closed in order."""
    code = (
        "import asyncio\n"
        "from api.client import subscribe\n"
        "from tests.test_client import flaky_server\n"
        "async def main():\n"
        "    async with flaky_server(10, lambda n: ('events', 5)) as server:\n"
        "        async for event in subscribe(server.url, streams=[1]):\n"
        "            print(event.data['no such key'])\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).parent.parent)
    assert result.returncode == 1
    assert result.stderr.count("Traceback") == 1, result.stderr
    assert result.stderr.rstrip().endswith("KeyError: 'no such key'"), result.stderr
    assert "never retrieved" not in result.stderr and "Exception ignored" not in result.stderr


async def test_closing_a_subscription_closes_its_connection() -> None:
    async with flaky_server(10, lambda n: ("events", 10)) as server:
        async with subscribe(server.url, all=True) as events:
            first = await anext(events)
        assert first.id == event_id(0)
        with pytest.raises(StopAsyncIteration):
            await anext(events)
        assert len(server.connections) == 1


async def test_closing_ends_a_connection_that_lost_the_first_cancellation() -> None:
    """A cancellation can be lost inside the HTTP stack (a read whose timeout fires as the task is
    cancelled is reported as a timeout, which the reconnect loop takes for a drop): closing cancels again
    until the connection's task ends, rather than waiting on it for ever (a Ctrl-C that did not stop
    `flowfi tail`)."""
    started = asyncio.Event()

    async def swallows_one_cancel() -> AsyncIterator[Event]:
        try:
            started.set()
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            asyncio.current_task().uncancel()  # type: ignore[union-attr]  # as a scope that thinks it its own
        await asyncio.sleep(60)  # the reconnect's wait: a second cancellation ends it
        yield Event(id="x", type="t", data={})

    subscription = Subscription(swallows_one_cancel())
    waiting = asyncio.ensure_future(anext(subscription))
    await started.wait()
    waiting.cancel()
    async with asyncio.timeout(5):
        await subscription.aclose()
