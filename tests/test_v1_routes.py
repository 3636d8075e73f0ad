"""The /v1 reads over real HTTP, against a database the worker filled from random traffic of the newest
build (every kind of schedule): parameters, shapes, errors, access rules, and claimable amounts checked
against the contract model."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import jwt
import pytest

from api.app import Server, create_app
from api.v1.shapes import EVENT_TYPE, EVENT_TYPES
from devnet import Devnet, Traffic, claimable, running_devnet
from indexer.database import asyncpg_dsn
from tests.conftest import _admin, with_database
from tests.indexing import index_until_caught_up, resumed_after_cancel, worker_settings
from tests.serving import http_client, running_app

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


@pytest.fixture(scope="module")
async def filled(server_url: str, template_database: str) -> AsyncIterator[tuple[Devnet, str]]:
    name = f"flowfi_v1_rest_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    await _admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    url = with_database(server_url, name)
    with running_devnet(seed=17) as devnet:
        devnet.chain.generate_history(2500, traffic=Traffic(seed=17, accounts=10), tx_per_ledger=12)
        from indexer.worker import Worker

        await index_until_caught_up(Worker(worker_settings(devnet, url, page_size=500), url), devnet)
        yield devnet, url
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def served(filled: tuple[Devnet, str]) -> Any:
    """The API with this API's own authentication on: /v1 applies the backend's rules regardless."""
    devnet, url = filled
    settings = worker_settings(devnet, url, auth_jwt_secret=SECRET, admin_address=ADMIN)
    with running_app(create_app(settings, url), server_class=Server) as base_url:
        yield base_url


ADMIN = "GDPMDGEVMG3NDHKMATXNBCVOOLZQEIIM2J6FSWTUXLGXWFNU5UWZDWK6"


@pytest.fixture
async def client(served: str) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(base_url=served, timeout=20) as http:
        yield http


@pytest.fixture
async def conn(filled: tuple[Devnet, str]) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(asyncpg_dsn(filled[1]))
    yield connection
    await connection.close()


def backend_token(sub: str, **claims: Any) -> str:
    """A token as FlowFi's backend issues them, with the secret both share."""
    now = int(time.time())
    return jwt.encode({"sub": sub, "iat": now, "exp": now + 3600, "iss": "flowfi-api", "aud": "flowfi-api", **claims},
                      SECRET, algorithm="HS256")


async def get(client: httpx.AsyncClient, path: str, expect: int = 200, **kwargs: Any) -> Any:
    response = await client.get(path, **kwargs)
    assert response.status_code == expect, response.text
    body = response.json()
    if expect >= 400:
        assert body["error"] and body["message"], body
    return body


async def test_chain_data_is_public_whatever_this_api_requires(client: httpx.AsyncClient,
                                                                conn: asyncpg.Connection) -> None:
    assert (await client.get("/streams")).status_code == 401  # this API's own route, with its auth on
    stream_id, address = await conn.fetchrow("SELECT stream_id, sender FROM streams ORDER BY stream_id LIMIT 1")
    for path in ("/v1/streams", f"/v1/streams/{stream_id}", f"/v1/streams/{stream_id}/events",
                 f"/v1/streams/{stream_id}/claimable", f"/v1/users/{address}/summary",
                 f"/v1/streams/summary/{address}", f"/v1/users/{address}", f"/v1/users/{address}/events",
                 "/v1/events/stats", "/v1/health", "/api-docs.json", "/api-docs"):
        assert (await client.get(path)).status_code == 200, path
    for path in ("/v1/users/me", f"/v1/events?address={address}"):
        assert (await get(client, path, 401))["error"] == "Unauthorized"


async def test_the_stream_list_filters_sorts_and_pages_as_the_backend(client: httpx.AsyncClient,
                                                                     conn: asyncpg.Connection) -> None:
    sender, token = await conn.fetchrow("SELECT sender, token FROM streams GROUP BY sender, token "
                                        "ORDER BY count(*) DESC LIMIT 1")
    for query, where, args in (
        ({"sender": sender}, "sender = $1", [sender]),
        ({"token": token, "status": "active"}, "token = $1 AND status = 'active'", [token]),
        ({"status": "paused"}, "status = 'paused'", []),
    ):
        expected = {int(r["stream_id"]) for r in await conn.fetch(f"SELECT stream_id FROM streams WHERE {where}",
                                                                    *args)}
        found = await every_stream(client, {**query, "sandbox": "true"}, len(expected))
        assert set(found) == expected and len(found) == len(expected)
    total = await conn.fetchval("SELECT count(*) FROM streams")
    for sort, column in (("startTime", "start_time"), ("lastUpdateTime", "last_update_time"),
                         ("depositedAmount", "deposited"), ("createdAt", "created_at")):
        seen = await every_stream(client, {"sort": sort, "order": "asc"}, total)
        expected_order = [int(r["stream_id"]) for r in await conn.fetch(
            f"SELECT stream_id FROM streams ORDER BY {column}, stream_id, contract_id")]
        assert seen == expected_order, sort  # numerically for amounts, where the backend compared text
    page2 = await get(client, "/v1/streams", params={"page": 2, "limit": 7})
    assert page2["offset"] == 7 and len(page2["data"]) == 7
    assert (await get(client, "/v1/streams", params={"limit": 0}))["limit"] == 20
    assert (await get(client, "/v1/streams", params={"limit": 5000}))["limit"] == 100


async def every_stream(client: httpx.AsyncClient, params: dict[str, Any], total: int) -> list[Any]:
    """The stream ids of every page, in order, checking each page's envelope."""
    seen: list[Any] = []
    offset = 0
    while True:
        body = await get(client, "/v1/streams", params={**params, "limit": 100, "offset": offset})
        assert (body["total"], body["limit"], body["offset"]) == (total, 100, offset)
        seen += [item["streamId"] for item in body["data"]]
        assert body["hasMore"] is (len(seen) < total)
        if not body["hasMore"]:
            return seen
        offset += 100


async def test_bad_parameters_are_400s_that_name_them(client: httpx.AsyncClient) -> None:
    body = await get(client, "/v1/streams", 400, params={"status": "Active"})
    assert body["error"] == "Invalid status parameter" and "active" in body["message"]
    for params, parameter in (({"sender": "GABC"}, "sender"), ({"sort": "amount"}, "sort"),
                              ({"limit": "ten"}, "limit"), ({"order": "up"}, "order"), ({"page": "0"}, "page"),
                              ({"page": "-131", "offset": "5"}, "page"),  # checked where offset wins too
                              ({"offset": str(2**62 + 1)}, "offset"), ({"page": str(2**63)}, "page")):
        assert (await get(client, "/v1/streams", 400, params=params))["parameter"] == parameter
    assert (await get(client, "/v1/streams/abc", 400))["error"] == "Invalid streamId parameter"
    assert (await get(client, "/v1/streams/1/events", 400, params={"eventType": "created"}))["error"] == (
        "Invalid eventType parameter")
    for at in ("-5", str(2**53)):
        assert (await get(client, "/v1/streams/1/claimable", 400, params={"at": at}))["message"] == (
            "'at' must be a Unix timestamp in seconds, 0 to 2**53 - 1")
    assert (await get(client, "/v1/streams/424242", 404))["error"] == "Stream not found"
    assert (await get(client, "/v1/nothing/here", 404))["error"] == "Not Found"
    assert (await get(client, "/v2/streams", 400))["supportedVersions"] == ["v1"]
    assert (await get(client, "/v2", 400))["supportedVersions"] == ["v1"]
    assert (await get(client, "/v1", 404))["message"] == (
        "there is no '/v1'; the /v1 endpoints are listed at /api-docs.json")


async def test_claimable_follows_the_contract_at_any_time(filled: tuple[Devnet, str], client: httpx.AsyncClient,
                                                          conn: asyncpg.Connection) -> None:
    """Four streams of each schedule and status (the contract's claimable differs by both), each at its
    start, soon after its last update and long after."""
    devnet = filled[0]
    kinds = {r["stream_id"]: (r["schedule"], r["status"]) for r in await conn.fetch("SELECT * FROM streams")}
    taken: dict[tuple[str, str, bool], int] = {}
    for stream_id, stream in devnet.chain.contract.streams.items():
        kind = (*kinds[stream_id], resumed_after_cancel(stream))
        taken[kind] = taken.get(kind, 0) + 1
        if taken[kind] > 4:
            continue
        for at in (stream.start_time, stream.last_update_time + 37, stream.last_update_time + 10**6):
            body = await get(client, f"/v1/streams/{stream_id}/claimable", params={"at": at})
            running = stream.is_active and not resumed_after_cancel(stream)
            assert body["claimableAmount"] == str(claimable(stream, at) if running else 0), (stream_id, at)
            assert body["actionable"] is (body["claimableAmount"] != "0") and body["calculatedAt"] == at
    assert {schedule for schedule, _, _ in taken} == {"linear", "steps", "hybrid"}
    assert {status for _, status, _ in taken} >= {"active", "paused", "cancelled", "completed"}
    latest = devnet.chain.latest.close_time
    stream_id = next(iter(devnet.chain.contract.streams))
    assert (await get(client, f"/v1/streams/{stream_id}/claimable"))["calculatedAt"] == latest


async def test_summaries_add_up_the_streams_of_an_address(client: httpx.AsyncClient, conn: asyncpg.Connection,
                                                          filled: tuple[Devnet, str]) -> None:
    contract = filled[0].chain.contract
    now = filled[0].chain.latest.close_time
    for address in [r["sender"] for r in await conn.fetch("SELECT DISTINCT sender FROM streams LIMIT 4")]:
        rows = await conn.fetch("SELECT * FROM streams WHERE sender = $1 OR recipient = $1", address)
        outgoing = [r for r in rows if r["sender"] == address]
        incoming = [r for r in rows if r["recipient"] == address]
        running = ("active", "paused")
        expected_claimable = sum(claimable(contract.streams[int(r["stream_id"])], now) for r in incoming
                                 if r["status"] in running)
        expected = {
            "address": address, "totalStreamsCreated": len(outgoing),
            "totalStreamedOut": str(sum((r["withdrawn"] for r in outgoing), Decimal(0))),
            "totalStreamedIn": str(sum((r["withdrawn"] for r in incoming), Decimal(0))),
            "currentClaimable": str(expected_claimable),
            "activeOutgoingCount": sum(r["status"] in running for r in outgoing),
            "activeIncomingCount": sum(r["status"] in running for r in incoming),
        }
        assert await get(client, f"/v1/users/{address}/summary") == expected
        assert await get(client, f"/v1/streams/summary/{address}") == expected
    assert (await get(client, "/v1/users/GNOTANADDRESS/summary", 400))["parameter"] == "address"


async def test_stream_events_page_by_offset_cursor_and_type(client: httpx.AsyncClient,
                                                            conn: asyncpg.Connection) -> None:
    stream_id = await conn.fetchval("SELECT stream_id FROM events WHERE stream_id IS NOT NULL GROUP BY stream_id "
                                    "ORDER BY count(*) DESC LIMIT 1")
    ids = [r["id"] for r in await conn.fetch("SELECT id FROM events WHERE stream_id = $1 ORDER BY id", stream_id)]
    assert len(ids) > 4
    body = await get(client, f"/v1/streams/{stream_id}/events", params={"order": "asc", "limit": 3})
    assert [e["id"] for e in body["data"]] == ids[:3] and body["events"] == body["data"]
    assert body["total"] == len(ids) and body["hasMore"] is True
    after = await get(client, f"/v1/streams/{stream_id}/events", params={"order": "asc", "cursor": ids[2]})
    assert [e["id"] for e in after["data"]] == ids[3:]
    newest = await get(client, f"/v1/streams/{stream_id}/events", params={"page": 2, "limit": 2})
    assert [e["id"] for e in newest["data"]] == ids[::-1][2:4]
    kinds = {r["kind"] for r in await conn.fetch("SELECT kind FROM events WHERE stream_id = $1", stream_id)}
    for event_types in ("CREATED", "WITHDRAWN", "CREATED,TOPPED_UP"):
        body = await get(client, f"/v1/streams/{stream_id}/events", params={"eventType": event_types, "limit": 200})
        rows = await conn.fetch("SELECT id, kind FROM events WHERE stream_id = $1 ORDER BY id DESC", stream_id)
        expected = [i for i, kind in rows if EVENT_TYPE[kind] in event_types.split(",")]
        assert [e["id"] for e in body["data"]] == expected, event_types
    assert "stream.created" in kinds or kinds & {"stream.step_vesting_created", "stream.hybrid_cliff_created"}
    assert await get(client, "/v1/streams/99999/events") == {"data": [], "events": [], "total": 0, "hasMore": False}
    protocol = await get(client, "/v1/streams/0/events", params={"limit": 200})
    kinds = {r["kind"] for r in await conn.fetch("SELECT kind FROM events WHERE stream_id IS NULL")}
    assert protocol["total"] == await conn.fetchval("SELECT count(*) FROM events WHERE stream_id IS NULL") > 0
    assert all(e["streamId"] == 0 for e in protocol["data"]) and len(kinds) > 1


async def test_events_carry_the_backends_amount_and_metadata(client: httpx.AsyncClient,
                                                              conn: asyncpg.Connection) -> None:
    """The backend's StreamEvent table: what `amount` holds and which keys `metadata` has, per type."""
    amounts = {"stream.created": "deposited_amount", "stream.topped_up": "amount", "stream.withdrawn": "amount",
               "stream.cancelled": "refunded_amount", "stream.completed": "total_withdrawn",
               "stream.fee_collected": "fee_amount", "stream.paused": None, "stream.resumed": None,
               "protocol.fee_config_updated": None, "protocol.admin_transferred": None}
    keys = {"stream.created": {"tokenAddress", "ratePerSecond"}, "stream.topped_up": {"newDepositedAmount"},
            "stream.withdrawn": {"recipient"}, "stream.cancelled": {"amountWithdrawn", "refundedAmount"},
            "stream.completed": {"recipient"}, "stream.fee_collected": {"treasury", "token"},
            "stream.paused": {"sender", "pausedAt"},
            "stream.resumed": {"sender", "newEndTime", "pausedDuration", "totalPausedDuration"},
            "protocol.fee_config_updated": {"admin", "old_treasury", "new_treasury", "old_fee_rate_bps",
                                            "new_fee_rate_bps"},
            "protocol.admin_transferred": {"previous_admin", "new_admin", "transactionHash"}}
    for kind, column in amounts.items():
        row = await conn.fetchrow(f"SELECT id, stream_id, {column or 'NULL'}::text AS amount FROM events "
                                  "WHERE kind = $1 ORDER BY id LIMIT 1", kind)
        assert row is not None, kind
        stream = row["stream_id"] or 0
        body = await get(client, f"/v1/streams/{stream}/events", params={"limit": 200})
        event = next(e for e in body["data"] if e["id"] == row["id"]) if stream else None
        if event is None:  # protocol events, and streams with more than a page of events
            event = next(e for e in (await get(client, f"/v1/streams/{stream}/events",
                                               params={"cursor": _after(row["id"]), "limit": 1}))["data"])
        assert event["id"] == row["id"] and event["amount"] == row["amount"], kind
        metadata = json.loads(event["metadata"])
        assert set(metadata) == keys[kind], kind
        if kind == "stream.paused":
            assert isinstance(metadata["pausedAt"], int)
        if kind == "stream.resumed":
            assert isinstance(metadata["newEndTime"], str) and isinstance(metadata["pausedDuration"], int)
        if kind == "protocol.fee_config_updated":
            assert isinstance(metadata["new_fee_rate_bps"], int)


def _after(event_id: str) -> str:
    """An id just after `event_id` (a newest-first page from there starts with it)."""
    head, tail = event_id.split("-")
    return f"{head}-{int(tail) + 1:010d}"


async def test_total_paused_duration_adds_up_the_pauses_resumed(client: httpx.AsyncClient,
                                                                conn: asyncpg.Connection) -> None:
    stream_id = await conn.fetchval("SELECT stream_id FROM events WHERE kind = 'stream.resumed' GROUP BY stream_id "
                                    "ORDER BY count(*) DESC LIMIT 1")
    rows = await conn.fetch("SELECT kind, paused_at, ledger_closed_at FROM events WHERE stream_id = $1 AND kind IN "
                            "('stream.paused', 'stream.resumed') ORDER BY id", stream_id)
    expected, paused_at = 0, None
    for row in rows:
        if row["kind"] == "stream.paused":
            paused_at = int(row["paused_at"])
        elif paused_at is not None:
            expected += int(row["ledger_closed_at"].timestamp()) - paused_at
            paused_at = None
    assert expected > 0
    assert (await get(client, f"/v1/streams/{stream_id}"))["totalPausedDuration"] == expected
    resumed = await get(client, f"/v1/streams/{stream_id}/events", params={"eventType": "RESUMED", "limit": 1})
    assert json.loads(resumed["data"][0]["metadata"])["totalPausedDuration"] == expected


async def test_an_address_sees_its_own_events_and_an_admin_any(client: httpx.AsyncClient,
                                                                conn: asyncpg.Connection) -> None:
    mine, theirs = [r["sender"] for r in await conn.fetch("SELECT DISTINCT sender FROM streams LIMIT 2")]
    own = {"Authorization": f"Bearer {backend_token(mine)}"}
    body = await get(client, "/v1/events", params={"address": mine, "limit": 200}, headers=own)
    count = await conn.fetchval("SELECT count(*) FROM event_parties WHERE address = $1", mine)
    assert body["total"] == count and body["limit"] == 200 and len(body["events"]) == min(count, 200)
    refused = await get(client, "/v1/events", 403, params={"address": theirs}, headers=own)
    assert refused["message"] == "You can only view your own event history"
    for admin in (backend_token(ADMIN), backend_token(mine, admin=True)):
        body = await get(client, "/v1/events", params={"address": theirs, "type": "created,withdrawn, bogus"},
                         headers={"Authorization": f"Bearer {admin}"})
        assert body["events"] and {e["eventType"] for e in body["events"]} <= {"CREATED", "WITHDRAWN"}
    assert (await get(client, "/v1/events", 400, params={"address": mine, "type": "bogus"},
                      headers=own))["error"] == "No valid event types in `type` filter"
    assert (await get(client, "/v1/events", 400, headers=own))["error"] == "address query parameter is required"
    me = await get(client, "/v1/users/me", headers=own)
    assert me["publicKey"] == mine and all(s["sender"] == mine for s in me["sentStreams"])
    assert all(s["recipient"] == mine for s in me["receivedStreams"]) and len(me["sentStreams"]) <= 10
    assert (await get(client, "/v1/users/me", 401, headers={"Authorization": "Bearer nonsense"}))["error"] == (
        "Unauthorized")
    # the same token on this API's own routes, where authentication is on: the user sees its own streams
    items = (await get(client, "/streams", headers=own))["items"]
    assert items and all(mine in (s["sender"], s["recipient"]) for s in items)
    assert (await client.get("/events/stats", headers={"Authorization": f"Bearer {backend_token(ADMIN)}"})
            ).status_code == 200


async def test_users_and_their_events(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    address = await conn.fetchval("SELECT recipient FROM streams LIMIT 1")
    user = await get(client, f"/v1/users/{address}")
    assert user["publicKey"] == address and user["receivedStreams"]
    events = await get(client, f"/v1/users/{address}/events", params={"limit": 5})
    assert len(events["data"]) == 5 and events["hasMore"] is True
    for event in events["data"]:
        assert event["stream"] is None or address in (event["stream"]["sender"], event["stream"]["recipient"])
    assert (await get(client, f"/v1/users/{ADMIN}", 404))["error"] == "User not found"
    assert (await get(client, "/v1/users/CABC", 400))["error"] == "Invalid Stellar public key format"


async def test_writes_are_refused_with_what_to_do_instead(client: httpx.AsyncClient) -> None:
    for path, function in (("/v1/streams", "create_stream"), ("/v1/streams/1/pause", "pause_stream"),
                           ("/v1/streams/1/resume", "resume_stream"), ("/v1/streams/1/withdraw", "withdraw"),
                           ("/v1/streams/1/top-up", "top_up_stream"), ("/v1/streams/1/cancel", "cancel_stream")):
        response = await client.post(path, json={})
        assert response.status_code == 405
        assert function in response.json()["message"] and "sign and submit" in response.json()["message"]
    assert "registration" in (await client.post("/v1/users", json={"publicKey": ADMIN})).json()["message"]


async def test_the_api_docs_describe_every_v1_route_and_work_offline(client: httpx.AsyncClient) -> None:
    from api.v1 import WRITES, _routes

    document = await get(client, "/api-docs.json")
    assert document["openapi"].startswith("3.0") and document["servers"] == [{"url": "/v1"}]
    served = {(route.path, method.lower()) for route in _routes for method in route.methods - {"HEAD"}}
    refused = {(path, "post") for path in [*WRITES, "/users"]}
    described = {(path, method) for path, operations in document["paths"].items() for method in operations}
    assert described == served - refused
    assert all(function in document["info"]["description"] for function in WRITES.values())
    assert set(EVENT_TYPES) >= set(document["components"]["schemas"]["StreamEvent"]["properties"]["eventType"]["enum"])
    subscribe = document["paths"]["/events/subscribe"]["get"]["parameters"]
    assert {p["name"] for p in subscribe} == {"streams", "users", "all", "types", "token", "access_token",
                                              "lastEventId", "cursor", "Last-Event-ID"}  # how to resume, too
    page = (await client.get("/api-docs")).text
    for asset in ("swagger-ui.css", "swagger-ui-bundle.js"):
        assert f"/api-docs/static/{asset}" in page
        response = await client.get(f"/api-docs/static/{asset}")
        assert response.status_code == 200 and len(response.content) > 10_000
    assert "/api-docs.json" in page and "http" not in page.replace("<!DOCTYPE html>", "")


async def test_stats_count_the_open_streams(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    stream_id = await conn.fetchval("SELECT min(stream_id) FROM streams")
    before = await get(client, "/v1/events/stats")
    async with client.stream("GET", f"/v1/events/subscribe?streams={stream_id}&sandbox=true") as response:
        assert response.status_code == 200
        during = await get(client, "/v1/events/stats")
    assert during["activeConnections"] == before["activeConnections"] + 1
    assert during["activeIps"] >= 1 and during["perIpPeakConnections"] >= 1
    assert set(during) == {"activeConnections", "activeIps", "perIpPeakConnections", "maxConnections", "timestamp"}


async def first_frame(client: httpx.AsyncClient, query: str, **headers: str) -> tuple[int, Any]:
    """The status of a subscription, and its refusal's body or its first message."""
    async with client.stream("GET", f"/v1/events/subscribe?{query}", headers=headers) as response:
        if response.status_code != 200:
            return response.status_code, json.loads(await response.aread())
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                return 200, json.loads(line[6:])
    raise AssertionError("the stream ended")


async def test_who_may_subscribe_to_what(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    mine, theirs = [r["sender"] for r in await conn.fetch("SELECT DISTINCT sender FROM streams LIMIT 2")]
    stream_id = await conn.fetchval("SELECT min(stream_id) FROM streams")
    own = backend_token(mine)
    refusals = {
        "": (400, "token"), "all=true": (400, "token"), f"users={mine}": (401, "token"),
        f"users={theirs}&token={own}": (403, "own address"), f"streams={stream_id}&token=forged": (401, "JWT"),
    }
    titles = {400: "Invalid request", 401: "Unauthorized", 403: "Forbidden"}
    for query, (status, words) in refusals.items():
        refused = await client.get(f"/v1/events/subscribe?{query}")
        body = refused.json()
        assert refused.status_code == status and words in body["message"], query
        assert body["error"] == titles[status], query  # the backend's shape: a title, then what to do
        assert (refused.headers.get("www-authenticate") == "Bearer") == (status == 401), query
    for query in (f"streams={stream_id}", f"token={own}", f"users={mine}&token={own}",
                  f"all=true&token={backend_token(ADMIN)}", f"users={theirs}&token={backend_token(ADMIN)}"):
        code, body = await first_frame(client, query, **{"X-Request-ID": "req-1"})
        assert code == 200 and body == {"type": "connected", "clientId": body["clientId"], "requestId": "req-1"}


async def test_an_admin_may_follow_everything(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    """An admin's all=true replays every event, the fee and admin events under the backend's names; a
    user's all=true, only its own events."""
    user = await conn.fetchval("SELECT sender FROM streams LIMIT 1")
    kinds = dict(await conn.fetch("SELECT id, kind FROM events"))
    renamed = {"protocol.fee_config_updated": "stream.fee_config_updated",
               "protocol.admin_transferred": "stream.admin_transferred"}
    for follower, where, args in ((ADMIN, "TRUE", []),
                                  (user, "id IN (SELECT event_id FROM event_parties WHERE address = $1)", [user])):
        expected = [r["id"] for r in await conn.fetch(f"SELECT id FROM events WHERE {where} ORDER BY id", *args)]
        names = await replayed(client, f"all=true&lastEventId=0&token={backend_token(follower)}", len(expected))
        assert list(names) == expected
        assert all(name == renamed.get(kinds[i], name) for i, name in names.items())
        if follower == ADMIN:
            assert {names[i] for i in names if kinds[i] in renamed} == set(renamed.values())


async def replayed(client: httpx.AsyncClient, query: str, count: int) -> dict[str, str]:
    """The first `count` events a subscription sends: their ids and names, in order."""
    names: dict[str, str] = {}
    last = None
    async with client.stream("GET", f"/v1/events/subscribe?{query}") as response:
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                last = line[4:]
            elif line.startswith("event: ") and last is not None:
                names[last] = line[7:]
                if len(names) == count:
                    return names
    raise AssertionError("the stream ended")
