from __future__ import annotations

import asyncio
import socket
import time

import asyncpg
import pytest
from stellar_sdk import Keypair

from api import queries
from api.sse import encode, position_frame, retry_frame
from indexer.store import PageWritten
from indexer.worker import Worker
from tests.indexing import index_until_caught_up, worker_settings
from tests.live import (
    Received,
    add_traffic,
    all_event_ids,
    index_now,
    live_pipeline,
    read_sse,
    subscription,
    wait_for,
)
from tests.serving import http_client


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (encode("0000000012884905984-0000000000", "stream.created", b'{"a":1}'),
         b'id: 0000000012884905984-0000000000\nevent: stream.created\ndata: {"a":1}\n\n'),
        (encode("1-2", "protocol.initialized", b"{}"), b"id: 1-2\nevent: protocol.initialized\ndata: {}\n\n"),
        (retry_frame(2000), b"retry: 2000\n\n"),
        (position_frame("0000000012884905984-0000000000"), b"id: 0000000012884905984-0000000000\n\n"),
    ],
)
def test_frames_are_encoded_exactly(frame: bytes, expected: bytes) -> None:
    assert frame == expected


async def test_replay_then_live_with_every_filter_form(database_url: str, db: asyncpg.Connection) -> None:
    with live_pipeline(database_url, retry_ms=1500) as (devnet, base_url):
        add_traffic(devnet, 400)
        await index_now(devnet, database_url)
        rows = await db.fetch("SELECT id, kind, stream_id FROM events ORDER BY id")
        parties: dict[str, set[str]] = {}
        for r in await db.fetch("SELECT event_id, address FROM event_parties"):
            parties.setdefault(r["event_id"], set()).add(r["address"])
        stream_ids = sorted({int(r["stream_id"]) for r in rows if r["stream_id"] is not None})[:3]
        user = sorted(parties[rows[-1]["id"]])[0]
        expected = {
            "all=true": [r["id"] for r in rows],
            f"streams={stream_ids[0]}": [r["id"] for r in rows if r["stream_id"] == stream_ids[0]],
            f"streams={stream_ids[0]}&streams={stream_ids[1]}": [
                r["id"] for r in rows if r["stream_id"] in stream_ids[:2]],
            f"streams={stream_ids[0]},{stream_ids[1]},{stream_ids[2]}": [
                r["id"] for r in rows if r["stream_id"] in stream_ids],
            f"users={user}": [r["id"] for r in rows if user in parties.get(r["id"], set())],
            "types=stream.created,stream.withdrawn": [
                r["id"] for r in rows if r["kind"] in ("stream.created", "stream.withdrawn")],
            f"types=stream.created&streams={stream_ids[0]}": [
                r["id"] for r in rows if r["kind"] == "stream.created" and r["stream_id"] == stream_ids[0]],
        }
        first = rows[0]["id"]
        for query, matching in expected.items():
            ids = [i for i in matching if i > first]
            assert ids, query
            async with subscription(base_url, f"{query}&lastEventId={first}") as (response, got):
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                assert response.headers["cache-control"].startswith("no-cache")
                assert response.headers["x-accel-buffering"] == "no"
                await read_sse(response, got, stop_after=len(ids))
            assert got.ids == ids, query
            assert got.retry == 1500
        # the payload: the backend's keys, amounts as strings
        async with subscription(base_url, f"types=stream.created&lastEventId={first}") as (response, got):
            await read_sse(response, got, stop_after=1)
        created = got.data[0]
        assert created["type"] == "stream.created" and got.types[0] == "stream.created"
        for key in ("id", "streamId", "sender", "recipient", "tokenAddress", "ratePerSecond", "depositedAmount",
                    "startTime", "transactionHash", "ledger", "ledgerClosedAt", "contractId"):
            assert key in created, key
        assert isinstance(created["depositedAmount"], str) and created["depositedAmount"].isdigit()
        assert created["ledgerClosedAt"].endswith("Z")


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("", None),
        ("streams=abc", "streams"),
        ("streams=0", "streams"),
        ("streams=18446744073709551616", "streams"),
        ("users=GBDK4KAKYLSGPQSZB65NBASVBK7D6X7C6XCNA3EANO3KT7ZBDLGTP72T", "users"),
        ("users=alice", "users"),
        ("users=", "users"),
        ("streams=1,,2", "streams"),
        ("types=stream.exploded", "types"),
        ("all=maybe", "all"),
        ("all=true&colour=blue", "colour"),
        ("all=true&lastEventId=yesterday", "lastEventId"),
        ("all=true&lastEventId=0000000012884905984-0000000000", "lastEventId"),
    ],
)
async def test_bad_subscriptions_are_400s_that_say_why(
    database_url: str, query: str, parameter: str | None
) -> None:
    with live_pipeline(database_url) as (_devnet, base_url):
        async with http_client() as client:
            response = await client.get(f"{base_url}/events/subscribe?{query}")
        assert response.status_code == 400
        body = response.json()
        assert body["parameter"] == parameter
        assert len(body["error"]) > 20


async def test_an_unknown_resume_id_is_refused_naming_where_it_came_from(database_url: str) -> None:
    unknown = "0000000012884905984-0000000000"
    with live_pipeline(database_url) as (_devnet, base_url):
        async with http_client() as client:
            for query, headers, parameter in (
                (f"all=true&cursor={unknown}", {}, "cursor"),
                ("all=true", {"Last-Event-ID": unknown}, "Last-Event-ID"),
                ("all=true&lastEventId=now", {"Last-Event-ID": unknown}, "Last-Event-ID"),
            ):
                response = await client.get(f"{base_url}/events/subscribe?{query}", headers=headers)
                assert response.status_code == 400
                assert response.json()["parameter"] == parameter
                assert "new EventSource" in response.json()["error"]


async def test_a_refused_last_event_id_is_repeated_as_the_client_sent_it(database_url: str) -> None:
    with live_pipeline(database_url) as (_devnet, base_url):
        async with http_client() as client:
            response = await client.get(f"{base_url}/events/subscribe?all=true",
                                        headers={"Last-Event-ID": "é".encode()})
    assert response.status_code == 400
    assert "'é'" in response.json()["error"], response.json()


async def test_two_last_event_id_headers_are_refused_not_one_picked(
    database_url: str, db: asyncpg.Connection
) -> None:
    with live_pipeline(database_url) as (devnet, base_url):
        add_traffic(devnet, 3)
        await index_now(devnet, database_url)
        stored = await all_event_ids(db)
        async with http_client() as client:
            for second in ("abc", stored[-1]):
                response = await client.get(f"{base_url}/events/subscribe?all=true",
                                            headers=[("Last-Event-ID", stored[0]), ("Last-Event-ID", second)])
                assert response.status_code == 400
                assert response.json()["parameter"] == "Last-Event-ID"
                assert "one resume point" in response.json()["error"]


async def test_a_client_resuming_after_a_drop_gets_every_later_event_once_in_order(
    database_url: str, db: asyncpg.Connection
) -> None:
    with live_pipeline(database_url) as (devnet, base_url):
        add_traffic(devnet, 10)
        await index_now(devnet, database_url)
        start = (await all_event_ids(db))[-1]
        first = Received()
        async with subscription(base_url, f"all=true&cursor={start}") as (response, _):
            reader = asyncio.create_task(read_sse(response, first, stop_after=150))
            add_traffic(devnet, 1500, seed=2)
            await index_now(devnet, database_url, page_size=50)
            await reader  # disconnects mid-burst, after 150 events
        second = Received()
        async with subscription(base_url, "all=true", {"Last-Event-ID": first.ids[-1]}) as (response, _):
            expected = [i for i in await all_event_ids(db) if i > start]
            await read_sse(response, second, stop_after=len(expected) - len(first.ids))
        assert first.ids + second.ids == expected


@pytest.mark.slow
async def test_events_committed_while_a_client_replays_arrive_once(
    database_url: str, db: asyncpg.Connection
) -> None:
    """The seam: the writer keeps committing pages while clients replay and switch to live."""
    with live_pipeline(database_url) as (devnet, base_url):
        add_traffic(devnet, 3000)
        await index_now(devnet, database_url, page_size=500)
        first = (await all_event_ids(db))[0]
        add_traffic(devnet, 3000, seed=3)
        writer = asyncio.create_task(index_now(devnet, database_url, page_size=20))
        clients = [Received() for _ in range(4)]

        async def follow(got: Received, delay: float) -> None:
            await asyncio.sleep(delay)
            async with subscription(base_url, f"all=true&lastEventId={first}") as (response, _):
                await read_sse(response, got, stop_after=devnet.chain.event_count - 1)

        readers = [asyncio.create_task(follow(got, i * 0.15)) for i, got in enumerate(clients)]
        await writer
        await asyncio.wait_for(asyncio.gather(*readers), 60)
        expected = (await all_event_ids(db))[1:]
        for got in clients:
            assert got.ids == expected


class HeldListener:
    """From now on, the API's listener waits before each read until released: an API process whose live
    feed lags behind the database (another process, or a listener reconnecting)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.released = False
        read_events = queries.events_after

        async def held(*args: object, **kwargs: object) -> object:
            if len(args) == 3 and not kwargs:  # the listener's read: (connection, after, batch)
                while not self.released:
                    await asyncio.sleep(0.01)
            return await read_events(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(queries, "events_after", held)

    def release(self) -> None:
        self.released = True


async def test_a_client_resuming_from_an_id_this_process_has_not_published_gets_no_event_twice(
    database_url: str, db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The id came from another API process, or from GET /streams' asOfEventId, while this process's listener
    lags behind the database: the client's position never moves back, and no event it has comes again."""
    with live_pipeline(database_url) as (devnet, base_url):
        add_traffic(devnet, 10)
        await index_now(devnet, database_url)
        listener = HeldListener(monkeypatch)
        add_traffic(devnet, 60, seed=7)
        await index_now(devnet, database_url)
        ids = await all_event_ids(db)
        resume = ids[-20]
        got = Received()
        async with subscription(base_url, f"all=true&lastEventId={resume}") as (response, _):
            reader = asyncio.create_task(read_sse(response, got))
            await asyncio.sleep(0.5)
            listener.release()
            add_traffic(devnet, 10, seed=8)
            await index_now(devnet, database_url)
            expected = [i for i in await all_event_ids(db) if i > resume]
            await wait_for(lambda: len(got.ids) >= len(expected), 20)
            reader.cancel()
        assert got.ids == expected
        assert all(position >= resume for position in got.positions), got.positions


async def test_a_client_that_leaves_while_the_feed_is_behind_its_resume_id_frees_its_slot(
    database_url: str, db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    with live_pipeline(database_url, max_connections_per_ip=1, heartbeat_interval=0.2) as (devnet, base_url):
        add_traffic(devnet, 10)
        await index_now(devnet, database_url)
        listener = HeldListener(monkeypatch)
        add_traffic(devnet, 20, seed=10)
        await index_now(devnet, database_url)
        resume = (await all_event_ids(db))[-1]
        async with subscription(base_url, f"all=true&lastEventId={resume}") as (response, waiting):
            assert response.status_code == 200  # waiting for the feed, with heartbeats meanwhile
            reader = asyncio.create_task(read_sse(response, waiting))
            await wait_for(lambda: waiting.comments >= 2, 5)
            reader.cancel()
        started = time.monotonic()
        async with http_client() as client:
            while True:
                async with client.stream("GET", f"{base_url}/events/subscribe?all=true&lastEventId=now") as again:
                    if again.status_code != 429:
                        break
                assert time.monotonic() - started < 2, "the slot of the client that left is still taken"
                await asyncio.sleep(0.05)
        listener.release()
        assert again.status_code == 200


async def test_a_client_resuming_from_a_dead_letter_after_the_last_event_goes_live_from_there(
    database_url: str, db: asyncpg.Connection
) -> None:
    """The newest contract event is a dead letter: no event reaches it, yet the stream goes live at once
    without moving the client's position back."""
    with live_pipeline(database_url) as (devnet, base_url):
        add_traffic(devnet, 10)
        await index_now(devnet, database_url)
        last = (await all_event_ids(db))[-1]
        dead = last.split("-")[0] + "-9999999999"
        await db.execute(
            "INSERT INTO contract_events (id, ledger, ledger_closed_at, tx_hash, contract_id, topic_xdr, value_xdr) "
            "SELECT $1, ledger, ledger_closed_at, tx_hash, contract_id, topic_xdr, value_xdr FROM contract_events "
            "WHERE id = $2", dead, last)
        await db.execute("INSERT INTO dead_letters (event_id, reason) VALUES ($1, 'test: undecodable')", dead)
        got = Received()
        async with subscription(base_url, f"all=true&lastEventId={dead}") as (response, _):
            reader = asyncio.create_task(read_sse(response, got))
            await wait_for(lambda: bool(got.positions), 5)
            add_traffic(devnet, 10, seed=9)
            await index_now(devnet, database_url)
            expected = [i for i in await all_event_ids(db) if i > dead]
            await wait_for(lambda: len(got.ids) >= len(expected), 20)
            reader.cancel()
        assert got.positions == [dead]
        assert got.ids == expected and expected


async def test_a_killed_listener_connection_loses_nothing(database_url: str, db: asyncpg.Connection) -> None:
    with live_pipeline(database_url) as (devnet, base_url):
        add_traffic(devnet, 10)
        await index_now(devnet, database_url)
        before = await all_event_ids(db)
        got = Received()
        async with subscription(base_url, f"all=true&cursor={before[-1]}") as (response, _):
            add_traffic(devnet, 2000, seed=4)
            reader = asyncio.create_task(read_sse(response, got, stop_after=devnet.chain.event_count - len(before)))
            writer = asyncio.create_task(index_now(devnet, database_url, page_size=25))
            killed = 0
            for _ in range(3):
                await asyncio.sleep(0.3)
                killed += await db.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = 'flowfi-listener'"
                )
            await writer
            await asyncio.wait_for(reader, 60)
        assert killed >= 1
        assert got.ids == [i for i in await all_event_ids(db) if i > before[-1]]
        async with http_client() as client:
            stats = (await client.get(f"{base_url}/events/stats")).json()
        assert stats["listenerReconnects"] >= 1


async def test_a_listener_failure_of_any_kind_is_followed_by_a_reconnect_and_loses_nothing(
    database_url: str, db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection killed mid-query can leave asyncpg's protocol broken (InternalClientError, which is
    neither an OSError nor a PostgresError), and a bug can raise anything: the listener reconnects and
    publishes what was committed meanwhile."""
    failures: list[Exception] = [asyncpg.InternalClientError("unexpected state of the protocol"),
                                 RuntimeError("a failure nobody foresaw")]
    read_events = queries.events_after

    async def failing_once_each(*args: object, **kwargs: object) -> object:
        if failures:
            raise failures.pop(0)
        return await read_events(*args, **kwargs)  # type: ignore[arg-type]

    with live_pipeline(database_url) as (devnet, base_url):
        add_traffic(devnet, 10)
        await index_now(devnet, database_url)
        before = await all_event_ids(db)
        got = Received()
        async with subscription(base_url, "all=true&cursor=now") as (response, _):
            monkeypatch.setattr(queries, "events_after", failing_once_each)  # the listener's next read fails
            add_traffic(devnet, 50, seed=6)
            reader = asyncio.create_task(read_sse(response, got, stop_after=devnet.chain.event_count - len(before)))
            await index_now(devnet, database_url)
            await asyncio.wait_for(reader, 20)
        assert not failures
        assert got.ids == [i for i in await all_event_ids(db) if i > before[-1]]
        async with http_client() as client:
            stats = (await client.get(f"{base_url}/events/stats")).json()
        assert stats["listenerReconnects"] == 2


async def test_a_client_that_never_reads_is_dropped_and_others_keep_receiving(
    database_url: str, db: asyncpg.Connection
) -> None:
    with live_pipeline(database_url, client_buffer=100) as (devnet, base_url):
        host, port = base_url.removeprefix("http://").split(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)  # before connecting: a small window
        sock.connect((host, int(port)))
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(b"GET /events/subscribe?all=true HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        writer.transport.pause_reading()  # type: ignore[attr-defined]  # the client stops reading
        got = Received()
        dropped = 0
        async with subscription(base_url, "all=true") as (response, _), http_client() as client:
            reading = asyncio.create_task(read_sse(response, got))
            # kernel and transport buffers take a few MB before the server's writes block: send until
            # the silent client overflows its queue
            for seed in range(10, 30):
                add_traffic(devnet, 3000, seed=seed)
                await index_now(devnet, database_url, page_size=500)
                dropped = (await client.get(f"{base_url}/events/stats")).json()["clientsDropped"]
                if dropped:
                    break
            expected = await all_event_ids(db)
            await wait_for(lambda: len(got.ids) >= len(expected), 60)
            reading.cancel()
        assert dropped == 1
        assert got.ids == expected
        writer.close()


async def test_a_stream_created_after_connecting_reaches_its_senders_connection(
    database_url: str,
) -> None:
    sender, recipient = Keypair.random().public_key, Keypair.random().public_key
    with live_pipeline(database_url, heartbeat_interval=0.2) as (devnet, base_url):
        devnet.chain.execute("initialize", {"admin": recipient, "treasury": recipient, "fee_rate_bps": 0})
        await index_now(devnet, database_url)
        got = Received()
        async with subscription(base_url, f"users={sender}") as (response, _):
            reading = asyncio.create_task(read_sse(response, got, stop_after=1))
            await asyncio.sleep(0.5)  # heartbeats flow while nothing concerns the user
            receipt = devnet.chain.execute("create_stream", {
                "sender": sender, "recipient": recipient, "token_address": devnet.traffic.token,
                "amount": 10_000, "duration": 100})
            assert receipt.error is None
            await index_now(devnet, database_url)
            await asyncio.wait_for(reading, 20)
        assert got.types == ["stream.created"]
        assert got.data[0]["sender"] == sender
        assert got.comments >= 1


async def test_a_live_connection_learns_its_position_before_any_event(
    database_url: str, db: asyncpg.Connection
) -> None:
    with live_pipeline(database_url) as (devnet, base_url):
        add_traffic(devnet, 20)
        await index_now(devnet, database_url)
        latest = (await all_event_ids(db))[-1]
        async with subscription(base_url, "all=true") as (response, _):
            lines = []
            async for line in response.aiter_lines():
                lines.append(line)
                if len(lines) == 4:
                    break
        # resuming from here after a drop replays exactly what this connection would have seen live
        assert lines == ["retry: 2000", "", f"id: {latest}", ""]


async def test_the_python_client_says_when_the_server_cannot_resume(database_url: str) -> None:
    from api.client import ResumeRejected, subscribe

    with live_pipeline(database_url) as (_devnet, base_url):
        unknown = "0000000012884905984-0000000000"
        with pytest.raises(ResumeRejected, match="cannot resume after event"):
            async for _event in subscribe(base_url, all=True, last_event_id=unknown):
                pass


async def test_live_equals_replay_for_a_users_subscriber_when_pages_split_transactions(
    database_url: str, db: asyncpg.Connection
) -> None:
    """The contract publishes a creation fee just before stream_created in the same transaction; read one
    event per page, the fee must still go out live with its stream's parties, as replay serves it."""
    sender, recipient, treasury = (Keypair.random().public_key for _ in range(3))
    with live_pipeline(database_url) as (devnet, base_url):
        devnet.chain.execute("initialize", {"admin": treasury, "treasury": treasury, "fee_rate_bps": 100})
        await index_now(devnet, database_url)
        live = Received()
        async with subscription(base_url, f"users={sender}") as (response, _):
            reading = asyncio.create_task(read_sse(response, live, stop_after=6))
            await asyncio.sleep(0.3)
            for amount in (10_000, 20_000, 30_000):
                devnet.chain.execute("create_stream", {"sender": sender, "recipient": recipient, "amount": amount,
                                                       "token_address": devnet.traffic.token, "duration": 100})
            await index_now(devnet, database_url, page_size=1)
            await asyncio.wait_for(reading, 20)
        replayed = Received()
        async with subscription(base_url, f"users={sender}&lastEventId=0") as (response, _):
            await read_sse(response, replayed, stop_after=6)
    assert live.types == ["stream.fee_collected", "stream.created"] * 3
    assert live.ids == replayed.ids
    assert all(data["sender"] == sender for data in live.data)


async def test_an_event_of_several_selected_addresses_or_streams_comes_once(
    database_url: str, db: asyncpg.Connection
) -> None:
    sender, recipient = Keypair.random().public_key, Keypair.random().public_key
    with live_pipeline(database_url) as (devnet, base_url):
        for amount in (10_000, 20_000):
            devnet.chain.execute("create_stream", {"sender": sender, "recipient": recipient, "amount": amount,
                                                   "token_address": devnet.traffic.token, "duration": 100})
        devnet.chain.execute("withdraw", {"recipient": recipient, "stream_id": 1})
        await index_now(devnet, database_url)
        expected = await all_event_ids(db)
        assert len(expected) == 3
        for query in (f"users={sender},{recipient}", f"users={sender}&streams=1,2",
                      f"users={recipient}&streams=1&types=stream.created,stream.withdrawn"):
            got = Received()
            async with subscription(base_url, f"{query}&lastEventId=0") as (response, _):
                await read_sse(response, got, stop_after=3)
            assert got.ids == expected, query
            async with http_client() as client:
                page = (await client.get(f"{base_url}/events?{query}&cursor=0")).json()
            assert [item["id"] for item in page["items"]] == expected, query


async def test_zero_or_the_all_zero_id_replays_from_the_first_event(
    database_url: str, db: asyncpg.Connection
) -> None:
    with live_pipeline(database_url) as (devnet, base_url):
        add_traffic(devnet, 30)
        await index_now(devnet, database_url)
        expected = await all_event_ids(db)
        for headers, query in (({}, "all=true&lastEventId=0"), ({}, "all=true&cursor=0"),
                               ({"Last-Event-ID": "0000000000000000000-0000000000"}, "all=true")):
            got = Received()
            async with subscription(base_url, query, headers) as (response, _):
                await read_sse(response, got, stop_after=len(expected))
            assert got.ids == expected, (headers, query)


async def test_a_client_that_leaves_is_noticed_within_a_second_and_its_slot_freed(database_url: str) -> None:
    """Not at the next heartbeat (a minute here) or the next event: the slot is free for the next client."""
    with live_pipeline(database_url, heartbeat_interval=60, max_connections_per_ip=3) as (devnet, base_url):
        add_traffic(devnet, 5)
        await index_now(devnet, database_url)
        host, port = base_url.removeprefix("http://").split(":")

        async def connect() -> tuple[bytes, asyncio.StreamWriter]:
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"GET /events/subscribe?all=true HTTP/1.1\r\nHost: x\r\n\r\n")
            return await reader.readline(), writer

        async with http_client() as client:
            async def active() -> int:
                return int((await client.get(f"{base_url}/events/stats")).json()["activeConnections"])

            opened = [await connect() for _ in range(3)]
            assert [status for status, _ in opened] == [b"HTTP/1.1 200 OK\r\n"] * 3
            assert await active() == 3
            refused, extra = await connect()
            assert refused.startswith(b"HTTP/1.1 429")
            extra.close()
            for _, writer in opened:
                writer.close()
            left = asyncio.get_running_loop().time()
            while await active():
                assert asyncio.get_running_loop().time() - left < 1.0, "the departures were not noticed"
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.1)  # the connections' own ends, after the hub let go of them
            again = [await connect() for _ in range(3)]
            assert [status for status, _ in again] == [b"HTTP/1.1 200 OK\r\n"] * 3
            for _, writer in again:
                writer.close()


async def test_while_the_worker_catches_up_each_page_reaches_a_live_client_within_a_second(database_url: str) -> None:
    """Catch-up does not starve the live path: pages of 1,000 events committed back to back each reach
    a subscribed client within a second of their commit."""
    with live_pipeline(database_url) as (devnet, base_url):
        add_traffic(devnet, 8_000)
        committed: dict[str, float] = {}  # a page's last event id: when the page committed
        worker = Worker(worker_settings(devnet, database_url, page_size=1_000), database_url)
        def page_written(_: object, written: PageWritten) -> None:
            if written.last_event_id is not None:  # not a page of nothing new
                committed[written.last_event_id] = time.monotonic()

        worker.page_written = page_written
        async with subscription(base_url, "all=true") as (response, got):
            assert response.status_code == 200
            reading = asyncio.ensure_future(read_sse(response, got))
            await index_until_caught_up(worker, devnet)
            await wait_for(lambda: set(committed) <= set(got.ids))
            reading.cancel()
        assert len(committed) >= 6
        received = dict(zip(got.ids, got.received_at, strict=True))
        late = {event_id: round(received[event_id] - at, 3) for event_id, at in committed.items()
                if received[event_id] - at >= 1.0}
        assert not late, f"pages delivered a second or more after their commit: {late}"
