"""The REST API over real HTTP, against a database the worker filled from local-network traffic."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import asyncpg
import httpx
import pytest
from starlette.routing import Mount, Route

from api.app import create_app
from api.auth import QUERY_CREDENTIALS
from api.payloads import EVENT_COLUMNS, event_payload
from api.rest import claimable_at
from devnet import Traffic, running_devnet
from indexer.database import asyncpg_dsn
from indexer.worker import Worker
from tests.conftest import _admin, with_database
from tests.indexing import index_until_caught_up, worker_settings
from tests.serving import http_client, running_app

EVENTS = 3000
MAX_LAG = 10
OTHER_CONTRACT = "CAAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQC526"


@pytest.fixture(scope="module")
async def filled_url(server_url: str, template_database: str) -> AsyncIterator[str]:
    """One database for the module, filled by the worker from a few thousand events of traffic."""
    name = f"flowfi_rest_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    await _admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    url = with_database(server_url, name)
    with running_devnet(seed=7) as devnet:
        devnet.chain.generate_history(EVENTS, traffic=Traffic(seed=7, accounts=12), tx_per_ledger=15)
        worker = Worker(worker_settings(devnet, url, page_size=500), url)
        await index_until_caught_up(worker, devnet)
    yield url
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
async def conn(filled_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(asyncpg_dsn(filled_url))
    yield connection
    await connection.close()


@pytest.fixture(scope="module")
def app(filled_url: str) -> Any:
    from flowfi.settings import Settings

    # the worker filled the database once and stopped: readiness here is about the lag (its own test
    # below stops a running worker)
    return create_app(Settings(database_url=filled_url, ready_max_lag=MAX_LAG, ready_max_cursor_age=3600),
                      filled_url)


@pytest.fixture(scope="module")
def base_url(app: Any) -> Iterator[str]:
    with running_app(app) as url:
        yield url


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(base_url=base_url, timeout=10) as http:
        yield http


async def get_json(client: httpx.AsyncClient, path: str, expect: int = 200, **params: Any) -> Any:
    response = await client.get(path, params=params)
    assert response.status_code == expect, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


async def every_page(client: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a list endpoint, following nextCursor; checks each page's size."""
    items: list[dict[str, Any]] = []
    cursor = None
    limit = params.get("limit", 50)
    while True:
        body = await get_json(client, path, **params, **({"cursor": cursor} if cursor else {}))
        assert set(body) == {"items", "nextCursor"}
        assert len(body["items"]) <= limit
        items += body["items"]
        cursor = body["nextCursor"]
        if cursor is None:
            return items
        assert len(body["items"]) == limit, "only the last page is short"


def stream_key(item: dict[str, Any]) -> tuple[int, str]:
    return int(item["streamId"]), item["contractId"]


async def expected_streams(conn: asyncpg.Connection, where: str = "TRUE", *args: Any) -> list[tuple[int, str]]:
    rows = await conn.fetch(
        f"SELECT stream_id, contract_id FROM streams WHERE {where} ORDER BY stream_id, contract_id", *args
    )
    return [(int(r["stream_id"]), r["contract_id"]) for r in rows]


# --- streams -----------------------------------------------------------------------------------------


async def test_paging_through_streams_visits_every_stream_once_in_order(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    expected = await expected_streams(conn)
    assert len(expected) > 50, "enough streams to need several pages"
    for limit in (7, 500):
        items = await every_page(client, "/streams", limit=limit)
        assert [stream_key(item) for item in items] == expected
    default = await get_json(client, "/streams")
    assert len(default["items"]) == 50


async def test_stream_filters_match_sql(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    row = await conn.fetchrow(
        "SELECT sender, recipient, token, contract_id FROM streams GROUP BY 1, 2, 3, 4 ORDER BY count(*) DESC LIMIT 1"
    )
    for status in ("active", "paused", "cancelled", "completed"):
        items = await every_page(client, "/streams", status=status, limit=9)
        assert [stream_key(i) for i in items] == await expected_streams(conn, "status = $1", status)
        assert {i["status"] for i in items} <= {status}
    statuses = await conn.fetchval("SELECT count(DISTINCT status) FROM streams")
    assert statuses >= 3, "the traffic leaves streams in most statuses"
    for column, key in (("sender", "sender"), ("recipient", "recipient"), ("token", "tokenAddress"),
                        ("token", "token"), ("contract_id", "contractId")):  # `token`: the old name, no auth here
        items = await every_page(client, "/streams", limit=5, **{key: row[column]})
        expected = await expected_streams(conn, f"{column} = $1", row[column])
        assert expected and [stream_key(i) for i in items] == expected
    both = await every_page(client, "/streams", sender=row["sender"], status="active", limit=4)
    assert [stream_key(i) for i in both] == await expected_streams(
        conn, "sender = $1 AND status = 'active'", row["sender"])


async def test_user_streams_are_those_sent_or_received(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    user = await conn.fetchval("SELECT sender FROM streams GROUP BY sender ORDER BY count(*) DESC LIMIT 1")
    items = await every_page(client, f"/users/{user}/streams", limit=3)
    expected = await expected_streams(conn, "sender = $1 OR recipient = $1", user)
    assert [stream_key(i) for i in items] == expected
    assert await expected_streams(conn, "sender = $1", user) and await expected_streams(conn, "recipient = $1", user)
    for role in ("sender", "recipient"):
        items = await every_page(client, f"/users/{user}/streams", role=role, limit=4)
        assert [stream_key(i) for i in items] == await expected_streams(conn, f"{role} = $1", user)
    items = await every_page(client, f"/users/{user}/streams", status="completed", limit=2)
    assert [stream_key(i) for i in items] == await expected_streams(
        conn, "(sender = $1 OR recipient = $1) AND status = 'completed'", user)
    nobody = "GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7"
    assert await get_json(client, f"/users/{nobody}/streams") == {"items": [], "nextCursor": None}


async def test_while_the_worker_catches_up_claimable_is_at_a_ledger_indexed_not_the_chains_newest(
    database_url: str, db: asyncpg.Connection
) -> None:
    """With the index behind the chain, a stream is as the ledgers indexed leave it (one the chain has since
    cancelled still active): its claimable, in REST and in stream_balances, is computed at a ledger time
    the index has reached, not at the chain's newest time over events not indexed yet."""
    from flowfi.settings import Settings

    with running_devnet(seed=5) as devnet:
        devnet.chain.generate_history(3000, traffic=Traffic(seed=5, accounts=8), tx_per_ledger=4,
                                      seconds_per_ledger=600)
        worker = Worker(worker_settings(devnet, database_url, page_size=10), database_url)
        await index_until_caught_up(worker, devnet, until=devnet.chain.oldest.sequence + 30)
        cursor = await db.fetchrow("SELECT * FROM indexer_cursor")
        assert cursor["last_ledger"] < cursor["latest_ledger"] == devnet.chain.latest.sequence
        # a page ends within a ledger: its cursor has covered the ledger before the last event's
        reached = datetime.fromtimestamp(devnet.chain.ledger(cursor["last_ledger"] + 1).close_time, UTC)
    newest_event = await db.fetchval("SELECT max(ledger_closed_at) FROM contract_events")
    assert newest_event <= reached < cursor["latest_ledger_closed_at"]
    assert cursor["last_ledger_closed_at"] == newest_event

    balances = await db.fetch("SELECT * FROM stream_balances WHERE status = 'active' ORDER BY stream_id")
    assert len(balances) >= 5
    assert {row["as_of"] for row in balances} == {newest_event}
    streams = {row["stream_id"]: row for row in await db.fetch("SELECT * FROM streams")}
    with running_app(create_app(Settings(database_url=database_url), database_url)) as base_url:
        async with http_client(base_url=base_url, timeout=10) as client:
            for row in balances:
                body = await get_json(client, f"/streams/{row['stream_id']}")
                assert (body["asOf"], body["asOfLedger"]) == (newest_event.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                                              cursor["last_ledger"])
                expected = claimable_at(streams[row["stream_id"]], int(newest_event.timestamp()))
                assert body["claimableNow"] == str(row["claimable"]) == str(expected)


async def test_stream_state_has_every_column_and_claimable_at_the_index_ledger_time(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    cursor = await conn.fetchrow("SELECT last_ledger, last_ledger_closed_at FROM indexer_cursor")
    as_of: datetime = cursor["last_ledger_closed_at"]
    checked = 0
    rows = await conn.fetch(
        "SELECT DISTINCT ON (status) * FROM streams ORDER BY status, deposited - withdrawn DESC"
    )
    for row in rows:
        body = await get_json(client, f"/streams/{row['stream_id']}")
        assert body["asOf"] == as_of.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert body["asOfLedger"] == cursor["last_ledger"]
        assert body["asOfEventId"] == await conn.fetchval("SELECT max(id) FROM contract_events")
        expected_claimable = claimable_at(row, int(as_of.timestamp()))
        assert body["claimableNow"] == str(expected_claimable)
        assert body["streamId"] == str(row["stream_id"])
        for key in ("ratePerSecond", "deposited", "withdrawn", "refunded", "feesPaid", "startTime",
                    "lastUpdateTime", "claimableNow"):
            assert isinstance(body[key], str) and body[key].isdigit(), key
        assert body["deposited"] == str(row["deposited"]) and body["feesPaid"] == str(row["fees_paid"])
        assert body["endTime"] == (None if row["end_time"] is None else str(row["end_time"]))
        assert body["status"] == row["status"]
        assert body["createdAt"] == row["created_at"].strftime("%Y-%m-%dT%H:%M:%SZ")
        assert (body["firstEventId"], body["lastEventId"]) == (row["first_event_id"], row["last_event_id"])
        assert {"streamId", "contractId", "sender", "recipient", "pausedAt", "updatedAt"} <= set(body)
        # tokenAddress, as the filter and the events name it; token, its old name, stays alike for a while
        assert body["tokenAddress"] == body["token"] == row["token"]
        balance = await conn.fetchrow("SELECT claimable, locked, remaining, as_of FROM stream_balances "
                                      "WHERE contract_id = $1 AND stream_id = $2", row["contract_id"], row["stream_id"])
        assert balance["as_of"] == as_of
        assert ((body["claimableNow"], body["lockedNow"], body["remainingNow"])
                == (str(balance["claimable"]), str(balance["locked"]), str(balance["remaining"])))
        checked += 1
    assert checked >= 3
    active = [row for row in rows if row["status"] == "active"]
    assert active and claimable_at(active[0], int(as_of.timestamp())) > 0, "a non-trivial claimable"


async def test_stream_events_are_its_events_in_order(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    stream_id = await conn.fetchval(
        "SELECT stream_id FROM events WHERE stream_id IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    )
    rows = await conn.fetch(f"SELECT {EVENT_COLUMNS} FROM events AS e WHERE stream_id = $1 ORDER BY id", stream_id)
    assert len(rows) >= 3
    items = await every_page(client, f"/streams/{stream_id}/events", limit=2)
    assert items == [event_payload(row) for row in rows]
    withdrawals = await every_page(client, f"/streams/{stream_id}/events", types="stream.withdrawn,stream.created")
    assert withdrawals == [event_payload(r) for r in rows if r["kind"] in ("stream.withdrawn", "stream.created")]


async def test_unknown_streams_are_404_and_bad_ids_400(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    missing = int(await conn.fetchval("SELECT max(stream_id) FROM streams")) + 1
    for path in (f"/streams/{missing}", f"/streams/{missing}/events"):
        body = await get_json(client, path, 404)
        assert str(missing) in body["error"]
    for bad in ("0", "-1", "abc", str(2**64), "1.5", "²"):
        for path in (f"/streams/{bad}", f"/streams/{bad}/events"):
            body = await get_json(client, path, 400)
            assert body["parameter"] == "id" and "stream id" in body["error"]
    body = await get_json(client, "/streams/1", 404, contractId=OTHER_CONTRACT)
    assert "contract" in body["error"]


async def test_a_stream_id_in_two_contracts_is_409_unless_a_contract_is_named(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    other = OTHER_CONTRACT
    row = await conn.fetchrow("SELECT * FROM streams ORDER BY stream_id LIMIT 1")
    copy = dict(row) | {"contract_id": other}
    await conn.execute(
        f"INSERT INTO streams ({', '.join(copy)}) VALUES ({', '.join(f'${i}' for i in range(1, len(copy) + 1))})",
        *copy.values(),
    )
    try:
        body = await get_json(client, f"/streams/{row['stream_id']}", 409)
        assert body["parameter"] == "contractId" and set(body["contractIds"]) == {other, row["contract_id"]}
        await get_json(client, f"/streams/{row['stream_id']}/events", 409)
        chosen = await get_json(client, f"/streams/{row['stream_id']}", contractId=other)
        assert chosen["contractId"] == other
        events = await get_json(client, f"/streams/{row['stream_id']}/events", contractId=row["contract_id"])
        assert events["items"] and {e["contractId"] for e in events["items"]} == {row["contract_id"]}
        # both rows list, ordered by contract id within the stream id
        first = await get_json(client, "/streams", limit=2)
        assert [stream_key(i) for i in first["items"]] == sorted([(int(row["stream_id"]), other),
                                                                   (int(row["stream_id"]), row["contract_id"])])
    finally:
        await conn.execute("DELETE FROM streams WHERE contract_id = $1", other)


# --- events ------------------------------------------------------------------------------------------


async def test_paging_through_events_gives_every_payload_once(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    rows = await conn.fetch(f"SELECT {EVENT_COLUMNS} FROM events AS e ORDER BY id")
    assert len(rows) >= EVENTS
    items = await every_page(client, "/events", limit=500)
    assert items == [event_payload(row) for row in rows]
    for item in items[:200]:
        for key in ("ratePerSecond", "depositedAmount", "amount", "feeAmount", "streamId"):
            if key in item:
                assert isinstance(item[key], str)


async def test_event_filters_in_every_form(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    ids = [int(v) for v in await conn.fetch(
        "SELECT stream_id FROM streams ORDER BY stream_id LIMIT 3") for v in v.values()]
    rows = await conn.fetch(f"SELECT {EVENT_COLUMNS} FROM events AS e WHERE stream_id = ANY($1::numeric[]) ORDER BY id",
                            ids[:2])
    expected = [event_payload(r) for r in rows]
    one_each = f"/events?streams={ids[0]}&streams={ids[1]}&limit=3"
    for url in (f"/events?streams={ids[0]},{ids[1]}&limit=3", one_each, f"/events?streams={ids[0]}, {ids[1]}"):
        got: list[dict[str, Any]] = []
        cursor = ""
        while True:
            body = (await client.get(url + (f"&cursor={cursor}" if cursor else ""))).json()
            got += body["items"]
            if not (cursor := body["nextCursor"]):
                break
        assert got == expected
    single = await every_page(client, "/events", streams=str(ids[0]))
    assert single == [e for e in expected if e["streamId"] == str(ids[0])]

    user = await conn.fetchval("SELECT address FROM event_parties GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
    rows = await conn.fetch(
        f"SELECT {EVENT_COLUMNS} FROM events AS e WHERE id IN (SELECT event_id FROM event_parties WHERE address = $1) "
        "ORDER BY id", user)
    assert await every_page(client, "/events", users=user, limit=40) == [event_payload(r) for r in rows]

    kinds = ["stream.paused", "stream.resumed"]
    rows = await conn.fetch(f"SELECT {EVENT_COLUMNS} FROM events AS e WHERE kind = ANY($1) ORDER BY id", kinds)
    assert rows
    assert await every_page(client, "/events", types=",".join(kinds), limit=25) == [event_payload(r) for r in rows]
    both = await every_page(client, "/events", types="stream.created", users=user)
    assert both == [event_payload(r) for r in await conn.fetch(
        f"SELECT {EVENT_COLUMNS} FROM events AS e WHERE kind = 'stream.created' AND id IN "
        "(SELECT event_id FROM event_parties WHERE address = $1) ORDER BY id", user)]


async def test_ledger_ranges(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    low, high = await conn.fetchrow("SELECT min(ledger), max(ledger) FROM events")
    start, end = low + (high - low) // 3, low + 2 * (high - low) // 3
    rows = await conn.fetch(f"SELECT {EVENT_COLUMNS} FROM events AS e WHERE ledger BETWEEN $1 AND $2 ORDER BY id",
                            start, end)
    assert rows
    items = await every_page(client, "/events", fromLedger=start, toLedger=end, limit=100)
    assert items == [event_payload(r) for r in rows]
    assert [e["id"] for e in await every_page(client, "/events", toLedger=start, limit=500)] == [
        r["id"] for r in await conn.fetch("SELECT id FROM events WHERE ledger <= $1 ORDER BY id", start)]
    only = await every_page(client, "/events", fromLedger=end, toLedger=end)
    assert {e["ledger"] for e in only} <= {end}
    last = 2**32 - 1  # the largest ledger a client may name: beyond any id
    assert await every_page(client, "/events", fromLedger=start, toLedger=last, limit=500) == await every_page(
        client, "/events", fromLedger=start, limit=500)
    assert await every_page(client, "/events", fromLedger=last) == []
    body = await get_json(client, "/events", 400, fromLedger=end, toLedger=start)
    assert body["parameter"] == "toLedger"


async def test_bad_parameters_are_400_naming_them(client: httpx.AsyncClient) -> None:
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/events", {"types": "stream.nope"}, "types"),
        ("/events", {"streams": "0"}, "streams"),
        ("/events", {"users": "GABC"}, "users"),
        ("/events", {"users": "GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN8"}, "users"),  # checksum
        ("/events", {"cursor": "12"}, "cursor"),
        ("/events", {"limit": "0"}, "limit"),
        ("/events", {"limit": "501"}, "limit"),
        ("/events", {"limit": "ten"}, "limit"),
        ("/events", {"fromLedger": "-3"}, "fromLedger"),
        ("/events", {"colour": "red"}, "colour"),
        ("/streams", {"status": "running"}, "status"),
        ("/streams", {"sender": "nobody"}, "sender"),
        ("/streams", {"token": "GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7"}, "token"),
        ("/streams", {"cursor": "nonsense"}, "cursor"),
        ("/streams", {"cursor": "5:CNOTACONTRACT"}, "cursor"),
        ("/streams", {"limit": ["5", "6"]}, "limit"),
        ("/streams", {"streamId": "1"}, "streamId"),
        ("/streams/1", {"verbose": "1"}, "verbose"),
        ("/streams/1/events", {"cursor": "x"}, "cursor"),
        ("/users/GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7/streams", {"role": "admin"}, "role"),
        ("/users/nobody/streams", {}, "address"),
        ("/dead-letters", {"cursor": "z"}, "cursor"),
    ]
    for path, params, parameter in cases:
        response = await client.get(path, params=params)
        assert response.status_code == 400, (path, params, response.text)
        body = response.json()
        assert body["parameter"] == parameter, (path, params, body)
        assert parameter in body["error"] and len(body["error"]) > 20
    body = await get_json(client, "/nowhere", 404)
    assert "/openapi.json" in body["error"]


async def test_no_error_repeats_more_than_a_short_part_of_what_was_sent(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    """20,000 characters in every parameter of every endpoint, in the path, as a parameter's name and
    as an unknown path: each error quotes at most a few dozen characters of it."""
    document = await get_json(client, "/openapi.json")
    stream_id = await conn.fetchval("SELECT min(stream_id)::text FROM streams")
    address = await conn.fetchval("SELECT min(sender) FROM streams")
    huge = {"digits": "9" * 20_000, "letters": "G" * 20_000, "commas": "x," * 6_000}
    requests: list[tuple[str, dict[str, str]]] = []
    for path, operations in document["paths"].items():
        concrete = path.replace("{id}", stream_id).replace("{address}", address)
        for parameter in operations["get"]["parameters"]:
            for value in huge.values():
                if parameter["in"] == "query":
                    requests.append((concrete, {parameter["name"]: value}))
                elif parameter["in"] == "path":
                    requests.append((path.replace("{" + parameter["name"] + "}", value).replace(
                        "{id}", stream_id).replace("{address}", address), {}))
        requests.append((concrete, {huge["letters"]: "1"}))
    requests += [("/" + huge["letters"], {}), ("/streams/" + huge["digits"], {})]
    checked = 0
    for path, params in requests:
        response = await client.get(path, params=params)
        if response.status_code == 200:
            continue  # a value the endpoint accepts (the page ignores its parameters)
        assert response.status_code in (400, 404), (path[:50], list(params)[:1], response.status_code)
        assert len(response.content) < 1000, (path[:50], list(params)[:1], response.text[:300])
        checked += 1
    assert checked > 60
    response = await client.request("DELETE", "/" + huge["letters"])
    assert response.status_code in (404, 405) and len(response.content) < 1000


async def test_a_credential_given_as_the_old_asset_filter_is_not_repeated(client: httpx.AsyncClient) -> None:
    jwt_like = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJHQUFBIiwiZXhwIjo5OTk5OTk5OTk5fQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    for params in ({"token": jwt_like}, {"tokenAddress": jwt_like}, {"token": OTHER_CONTRACT,
                                                                       "tokenAddress": OTHER_CONTRACT}):
        body = await get_json(client, "/streams", 400, **params)
        assert "eyJ" not in body["error"]
    body = await get_json(client, "/streams", 400, token=jwt_like)
    assert body["parameter"] == "token" and "contract id" in body["error"]


async def test_dead_letters_page(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    ids = await conn.fetch("SELECT id, topic ->> 0 AS name FROM contract_events ORDER BY id LIMIT 5")
    async with conn.transaction():
        await conn.executemany("INSERT INTO dead_letters (event_id, reason) VALUES ($1, 'test: undecodable')",
                               [(r["id"],) for r in ids])
    try:
        items = await every_page(client, "/dead-letters", limit=2)
        assert [i["eventId"] for i in items] == [r["id"] for r in ids]
        assert all(i["reason"] == "test: undecodable" and i["topicXdr"] for i in items)
        assert [i["event"] for i in items] == [r["name"] for r in ids]  # e.g. "stream_created"
        assert all(i["event"] for i in items)
    finally:
        await conn.execute("DELETE FROM dead_letters")


# --- operations --------------------------------------------------------------------------------------


async def test_health_and_readiness(client: httpx.AsyncClient, conn: asyncpg.Connection, app: Any) -> None:
    assert await get_json(client, "/health") == {"status": "ok"}
    deadline = time.monotonic() + 10
    while (response := await client.get("/ready")).status_code != 200:
        assert time.monotonic() < deadline, response.text
        await asyncio.sleep(0.05)
    assert response.json()["checks"] == {"database": "ok", "listener": "ok", "indexer": "ok"}
    last = await conn.fetchval("SELECT last_ledger FROM indexer_cursor")
    latest = await conn.fetchval("SELECT latest_ledger FROM indexer_cursor")
    try:
        await conn.execute("UPDATE indexer_cursor SET latest_ledger = $1", last + MAX_LAG)
        assert (await get_json(client, "/ready"))["lag"] == MAX_LAG
        await conn.execute("UPDATE indexer_cursor SET latest_ledger = $1", last + MAX_LAG + 1)
        body = await get_json(client, "/ready", 503)
        assert body["checks"]["indexer"] != "ok" and "behind" in body["error"]
        assert body["checks"]["database"] == "ok"
    finally:
        await conn.execute("UPDATE indexer_cursor SET latest_ledger = $1", latest)
    live = app.state.live
    try:
        app.state.live = SimpleNamespace(connected=False)
        body = await get_json(client, "/ready", 503)
        assert body["checks"]["listener"] != "ok" and body["checks"]["indexer"] == "ok"
        del app.state.live
        await get_json(client, "/ready", 503)
    finally:
        app.state.live = live
    await get_json(client, "/ready")


async def test_ready_and_stats_name_the_same_lag_with_several_cursors(client: httpx.AsyncClient,
                                                                     conn: asyncpg.Connection) -> None:
    """A second indexer (other contracts) at the chain's head beside one behind: the lag is the one behind."""
    last, latest = await conn.fetchrow("SELECT last_ledger, latest_ledger FROM indexer_cursor")
    try:
        await conn.execute("UPDATE indexer_cursor SET latest_ledger = $1", last + 3)
        await conn.execute(
            "INSERT INTO indexer_cursor (contract_ids, rpc_cursor, last_ledger, latest_ledger) VALUES ($1, '', $2, $2)",
            "C" + "B" * 55, last + 10,
        )
        assert (await get_json(client, "/ready"))["lag"] == 3
        assert (await get_json(client, "/events/stats"))["indexerLagLedgers"] == 3
    finally:
        await conn.execute("DELETE FROM indexer_cursor WHERE contract_ids = $1", "C" + "B" * 55)
        await conn.execute("UPDATE indexer_cursor SET latest_ledger = $1", latest)


PROBES = ("/health", "/ready", "/metrics")


async def test_probes_ignore_a_monitors_query_parameters(client: httpx.AsyncClient) -> None:
    buster = {"_": "1733300000", "probe": "lb"}
    health = await client.get("/health", params=buster)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    ready = await client.get("/ready", params=buster)
    assert ready.json()["checks"]["database"] == "ok" and "_=1733300000" in str(ready.url)
    metrics = await client.get("/metrics", params=buster)
    assert metrics.status_code == 200 and "flowfi_sse_connections" in metrics.text
    refused = await client.get("/streams", params=buster)  # the API's own endpoints still name unknown ones
    assert refused.status_code == 400 and "unknown parameter" in refused.json()["error"]


async def test_ready_turns_unavailable_when_the_worker_stops_while_the_chain_moves_on(database_url: str) -> None:
    """The lag alone stays at its last value when the worker stops: readiness also asks when it last polled."""
    with running_devnet(seed=2, ledger_interval=0.1) as devnet:
        settings = worker_settings(devnet, database_url, ready_max_cursor_age=1.5)
        worker = Worker(settings, database_url)
        running = asyncio.create_task(worker.run())
        with running_app(create_app(settings, database_url)) as base_url:
            async with http_client(base_url=base_url, timeout=10) as http:
                deadline = time.monotonic() + 10
                while (response := await http.get("/ready")).status_code != 200:
                    assert time.monotonic() < deadline, response.text
                    await asyncio.sleep(0.05)
                worker.stop()
                await asyncio.wait_for(running, 10)
                stopped = time.monotonic()
                while (response := await http.get("/ready")).status_code == 200:
                    assert time.monotonic() - stopped < 5, "still ready 5 s after the worker stopped"
                    await asyncio.sleep(0.05)
                body = response.json()
                assert response.status_code == 503 and "last polled" in body["checks"]["indexer"]
                assert body["checks"]["indexer"].endswith(
                    "no worker is writing, or it cannot reach the RPC server or write to the database; its log "
                    "says which")
                assert body["cursorAge"] > body["maxCursorAge"] == 1.5
                assert (await get_json(http, "/events/stats"))["indexerCursorAgeSeconds"] > 1.5


async def test_openapi_describes_every_route(client: httpx.AsyncClient, app: Any) -> None:
    document = await get_json(client, "/openapi.json")
    assert document["openapi"].startswith("3.1")
    served: set[tuple[str, str]] = set()
    for route in app.routes:
        if isinstance(route, Route):
            served |= {(route.path, method.lower()) for method in route.methods or () if method != "HEAD"}
        elif isinstance(route, Mount):
            served.add((route.path or "/", "get"))
        else:
            raise AssertionError(f"a route of unknown kind: {route!r}")
    described = {(path, method) for path, operations in document["paths"].items() for method in operations}
    assert described == served
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert "200" in operation["responses"], (path, method)
            names = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert names == set(path.replace("}", "{").split("{")[1::2]), path


async def test_openapi_documents_exactly_the_query_parameters_each_endpoint_accepts(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    """Every endpoint names what it accepts when refused an unknown parameter; that is what the
    document must list (the credential's query parameters are accepted everywhere and described with
    security)."""
    document = await get_json(client, "/openapi.json")
    stream_id = await conn.fetchval("SELECT min(stream_id)::text FROM streams")
    address = await conn.fetchval("SELECT min(sender) FROM streams")
    for path, operations in document["paths"].items():
        documented = {p["name"] for p in operations["get"]["parameters"] if p["in"] == "query"}
        concrete = path.replace("{id}", stream_id).replace("{address}", address)
        response = await client.get(concrete, params={"no_such_parameter": "1"})
        if path in PROBES or path == "/":
            assert response.status_code != 400, path  # they take no parameters and ignore any
            continue
        assert response.status_code == 400, (path, response.text)
        accepted = response.json()["error"].split("accepted: ")[1].split(", ")
        credential = set(QUERY_CREDENTIALS) - documented  # on /streams `token` is also the old asset filter
        assert documented == set(accepted) - credential, path


async def test_all_with_streams_or_users_is_a_400_not_a_widening(client: httpx.AsyncClient) -> None:
    """all=true with a narrower selection is contradictory; taken as "everything", a user token's
    visibility was narrowed to its address only where no stream was named."""
    from stellar_sdk import Keypair

    for query in ("all=true&streams=2", f"all=true&users={Keypair.random().public_key}"):
        for path in ("/events", "/events/subscribe"):
            refused = await client.get(f"{path}?{query}")
            assert refused.status_code == 400, (path, query, refused.text)
            assert refused.json()["parameter"] == "all"
