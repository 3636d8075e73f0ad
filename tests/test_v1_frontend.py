"""FlowFi's web app against this server: every request its frontend sends, and every field it reads, checked
over real HTTP against a server whose index a worker filled from a local network.

What the frontend sends (LabsCrypt/flowfi at 8723543, frontend/src; none sends a body, a cookie or a
custom header; all are GETs; EventSource is opened without withCredentials):
  R1/R2  GET <candidate>/streams?sender=G… / ?recipient=G…          lib/dashboard.ts:98-108
         candidates (lib/api/_shared.ts:50-65): with the default base (no /v1) `/api/v1/streams` first,
         then `/v1/streams`, moving on after a 404; with a base ending in /v1, `<base>/streams`
  R3     GET <candidate>/streams?recipient=G…&sort=lastUpdateTime&order=desc&limit=100   lib/api/streams.ts:75-89
  R4     GET /v1/streams?sender=G… (not URL-encoded), reads [0].streamId   StreamCreationWizard.tsx:357-359
  R5/R7  GET /v1/streams/<id>                        app/streams/[id]/stream-details-content.tsx:97,
                                                     components/TransactionTracker.tsx:94,122
  R6     GET /v1/streams/<id>/events?page=<n>&limit=10                   stream-details-content.tsx:110-117
  R8     GET /v1/events?address=G…&page=<n>&limit=10[&type=CREATED|…|PAUSED%2CRESUMED]
                                                                 app/activity/activity-content.tsx:40-62
  R9     GET /v1/health                                  app/settings/settings-content.tsx:19,110-128
  S1/S2  EventSource <base>/v1/events/subscribe?  (the bell, NotificationDropdown.tsx:28; the dashboard,
         dashboard-view.tsx:525), `token=<jwt>` appended when the hook is given one (useStreamEvents.ts:55-69)
  S3     EventSource <base>/v1/events/subscribe?streams=<id>           stream-details-content.tsx:89
The base is NEXT_PUBLIC_API_URL, documented both as http://localhost:3001 and as http://localhost:3001/v1
(.env.example), which makes the app ask for /v1/v1/…; the dev server's origin is http://localhost:3000.

What it reads:
  stream lists: a bare array or `data`; per item streamId (.toString()), tokenAddress, depositedAmount,
    withdrawnAmount, ratePerSecond (parseFloat), startTime and lastUpdateTime (Unix seconds, numbers),
    isActive, isPaused, pausedAt, totalPausedDuration, sender, recipient, createdAt (ISO), id, and
    events[].eventType (CANCELLED tells a cancelled stream from a completed one)
  a stream: depositedAmount, withdrawnAmount, ratePerSecond as BigInt (integer strings), lastUpdateTime,
    isActive, isPaused, status (lower-cased: active/completed/cancelled; required unless paused),
    streamId, sender, recipient, tokenAddress, startTime
  stream events: `events` and `total`; per event id, eventType, timestamp (seconds), amount (BigInt or null)
  activity: `events`, `hasMore`; per event streamId, eventType, amount, timestamp, transactionHash,
    ledgerSequence, id, metadata (JSON text: old/new_fee_rate_bps, new_admin)
  health: `ledger`
  SSE: the named events stream.created/topped_up/withdrawn/cancelled/completed/paused/resumed, their data
    JSON with streamId, amount (BigInt), tokenSymbol (absent: the bell falls back)
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest
from stellar_sdk import Account, Keypair, TransactionBuilder

from api.app import Server, create_app
from devnet import Devnet, running_devnet
from indexer.database import asyncpg_dsn
from tests.conftest import _admin, with_database
from tests.indexing import worker_settings
from tests.live import index_now
from tests.serving import http_client, running_app

ORIGIN = "http://localhost:3000"
ALICE, BOB, CAROL, ADMIN = (Keypair.random() for _ in range(4))
TREASURY = Keypair.random().public_key
AMOUNT = 3_600_000_000
FEE_BPS = 25
STREAM_KEYS = {"id", "streamId", "sender", "recipient", "tokenAddress", "ratePerSecond", "depositedAmount",
               "withdrawnAmount", "startTime", "lastUpdateTime", "endTime", "pausedAt", "isActive", "isPaused",
               "totalPausedDuration", "status", "createdAt", "updatedAt"}
LIVE_NAMES = ("stream.created", "stream.topped_up", "stream.withdrawn", "stream.cancelled", "stream.completed",
              "stream.paused", "stream.resumed")


class Scenario:
    """Streams with every state the app shows, made by hand at known ledger times."""

    def __init__(self, devnet: Devnet) -> None:
        self.chain = devnet.chain
        self.t0 = self.chain.latest.close_time + 10
        self.token = self.chain.contract.tokens.defaults[0].contract_id
        self.ids: dict[str, int] = {}

    def call(self, function: str, at: int, **args: Any) -> Any:
        receipt = self.chain.execute(function, args, close_time=self.t0 + at)
        assert receipt.error is None, (function, receipt.error)
        return receipt

    def create(self, name: str, at: int, sender: Keypair, recipient: Keypair, duration: int) -> None:
        receipt = self.call("create_stream", at, sender=sender.public_key, recipient=recipient.public_key,
                            token_address=self.token, amount=AMOUNT, duration=duration)
        self.ids[name] = int(receipt.result)

    def build(self) -> None:
        self.call("initialize", 0, admin=ADMIN.public_key, treasury=TREASURY, fee_rate_bps=FEE_BPS)
        self.create("running", 1, ALICE, BOB, 3600)
        self.create("paused twice", 2, ALICE, BOB, 3600)
        self.create("cancelled", 3, CAROL, ALICE, 3600)
        self.create("completed", 4, ALICE, BOB, 20)
        self.create("paused now", 5, ALICE, CAROL, 3600)
        self.call("pause_stream", 20, sender=ALICE.public_key, stream_id=self.ids["paused twice"])
        self.call("resume_stream", 50, sender=ALICE.public_key, stream_id=self.ids["paused twice"])
        self.call("withdraw", 60, recipient=BOB.public_key, stream_id=self.ids["running"])
        self.call("pause_stream", 70, sender=ALICE.public_key, stream_id=self.ids["paused twice"])
        self.call("resume_stream", 80, sender=ALICE.public_key, stream_id=self.ids["paused twice"])
        self.call("top_up_stream", 90, sender=ALICE.public_key, stream_id=self.ids["running"], amount=1_000_000)
        self.call("cancel_stream", 100, sender=CAROL.public_key, stream_id=self.ids["cancelled"])
        self.call("pause_stream", 110, sender=ALICE.public_key, stream_id=self.ids["paused now"])
        self.call("withdraw", 200, recipient=BOB.public_key, stream_id=self.ids["completed"])
        self.call("update_fee_config", 210, admin=ADMIN.public_key, treasury=TREASURY, fee_rate_bps=50)
        self.call("transfer_admin", 220, current_admin=ADMIN.public_key, new_admin=ALICE.public_key)


@pytest.fixture(scope="module")
async def pipeline(server_url: str, template_database: str) -> AsyncIterator[tuple[Devnet, Scenario, str, str]]:
    name = f"flowfi_v1_app_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    await _admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    url = with_database(server_url, name)
    with running_devnet(build="8723543") as devnet:
        scenario = Scenario(devnet)
        scenario.build()
        await index_now(devnet, url)
        with running_app(create_app(worker_settings(devnet, url), url), server_class=Server) as base_url:
            yield devnet, scenario, base_url, url
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def app(pipeline: Any) -> AsyncIterator[tuple[Scenario, httpx.AsyncClient]]:
    _devnet, scenario, base_url, _url = pipeline
    async with http_client(base_url=base_url, headers={"Origin": ORIGIN}, timeout=20) as client:
        yield scenario, client


@pytest.fixture
async def conn(pipeline: Any) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(asyncpg_dsn(pipeline[3]))
    yield connection
    await connection.close()


async def login(client: httpx.AsyncClient, keypair: Keypair, passphrase: str) -> str:
    """What a wallet does to get a token: sign the challenge's nonce into a manageData transaction."""
    challenge = (await client.post("/v1/auth/challenge", json={"publicKey": keypair.public_key})).json()
    transaction = (TransactionBuilder(Account(keypair.public_key, 0), passphrase, base_fee=100)
                   .append_manage_data_op("auth", bytes.fromhex(challenge["nonce"]))
                   .set_timeout(60).build())
    transaction.sign(keypair)
    response = await client.post("/v1/auth/verify", json={"publicKey": keypair.public_key,
                                                          "signedTransaction": transaction.to_xdr()})
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def candidates(base: str) -> Iterator[str]:
    """The stream-list URLs the app tries, in order (lib/api/_shared.ts getStreamsEndpointCandidates)."""
    base = base.rstrip("/")
    if base.endswith("/v1") or base.endswith("/api/v1"):
        yield f"{base}/streams"
    elif base.endswith("/api"):
        yield f"{base}/v1/streams"
        yield f"{base.removesuffix('/api')}/v1/streams"
    else:
        yield f"{base}/api/v1/streams"
        yield f"{base}/v1/streams"


async def stream_list(client: httpx.AsyncClient, base: str, query: str) -> list[dict[str, Any]]:
    """The app's fetchStreams: each candidate in turn until one answers OK; a bare array or `data`."""
    for url in candidates(base):
        response = await client.get(f"{url}?{query}")
        if response.is_success:
            assert response.headers["access-control-allow-origin"] == ORIGIN
            payload = response.json()
            return payload if isinstance(payload, list) else payload.get("data", [])
        assert response.status_code == 404, (url, response.status_code)
    raise AssertionError("no candidate answered")


def is_integer_string(value: Any) -> bool:
    return isinstance(value, str) and value.isdigit()


def dashboard_status(item: dict[str, Any]) -> str:
    """lib/dashboard.ts mapStreamStatus."""
    if item["isPaused"]:
        return "Paused"
    if item["isActive"]:
        return "Active"
    return "Cancelled" if any(e["eventType"] == "CANCELLED" for e in item.get("events") or []) else "Completed"


def check_list_item(item: dict[str, Any]) -> None:
    """What the dashboard and the incoming page read of each stream, as they read it."""
    assert set(item) >= STREAM_KEYS
    assert item["streamId"] is not None and str(item["streamId"]).isdigit()
    for key in ("depositedAmount", "withdrawnAmount", "ratePerSecond"):
        assert is_integer_string(item[key]), key
        assert math.isfinite(float(item[key]) / 1e7)
    for key in ("startTime", "lastUpdateTime", "totalPausedDuration"):
        assert isinstance(item[key], int) and not isinstance(item[key], bool), key
    datetime.fromtimestamp(item["startTime"])  # new Date(s * 1000).toISOString() must not throw
    assert item["pausedAt"] is None or isinstance(item["pausedAt"], int)
    assert isinstance(item["isActive"], bool) and isinstance(item["isPaused"], bool)
    assert isinstance(item["sender"], str) and isinstance(item["recipient"], str) and item["tokenAddress"]
    datetime.fromisoformat(item["createdAt"])
    assert isinstance(item["id"], str)


@pytest.mark.parametrize("base", ["", "/v1"])
async def test_the_dashboard_lists_each_role_with_the_status_it_derives(app: Any, base: str) -> None:
    scenario, client = app
    sent = await stream_list(client, base, f"sender={ALICE.public_key}")
    received = await stream_list(client, base, f"recipient={ALICE.public_key}")
    for item in sent + received:
        check_list_item(item)
    ids = scenario.ids
    assert {item["streamId"] for item in sent} == {ids[n] for n in ("running", "paused twice", "completed",
                                                                     "paused now")}
    assert {item["streamId"] for item in received} == {ids["cancelled"]}
    shown = {item["streamId"]: dashboard_status(item) for item in sent + received}
    assert shown == {ids["running"]: "Active", ids["paused twice"]: "Active", ids["completed"]: "Completed",
                     ids["paused now"]: "Paused", ids["cancelled"]: "Cancelled"}


async def test_the_incoming_page_gets_its_streams_newest_update_first(app: Any) -> None:
    scenario, client = app
    items = await stream_list(client, "", f"recipient={BOB.public_key}&sort=lastUpdateTime&order=desc&limit=100")
    assert len(items) == 3
    for item in items:
        check_list_item(item)
    updates = [item["lastUpdateTime"] for item in items]
    assert updates == sorted(updates, reverse=True)
    paused_twice = next(item for item in items if item["streamId"] == scenario.ids["paused twice"])
    assert paused_twice["totalPausedDuration"] == (50 - 20) + (80 - 70)
    assert paused_twice["pausedAt"] is None


async def test_the_creation_wizard_finds_the_new_stream_first(app: Any) -> None:
    scenario, client = app
    response = await client.get(f"/v1/streams?sender={ALICE.public_key}")  # not URL-encoded, as the wizard sends it
    assert response.json()["data"][0]["streamId"] == scenario.ids["paused now"]


@pytest.mark.parametrize("prefix", ["/v1", "/v1/v1"])
async def test_the_stream_page_reads_every_field_it_needs(app: Any, conn: asyncpg.Connection, prefix: str) -> None:
    scenario, client = app
    expected_status = {"running": "active", "paused twice": "active", "cancelled": "cancelled",
                       "completed": "completed"}
    for name, stream_id in scenario.ids.items():
        response = await client.get(f"{prefix}/streams/{stream_id}")
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == ORIGIN
        stream = response.json()
        for key in ("depositedAmount", "withdrawnAmount", "ratePerSecond"):
            assert is_integer_string(stream[key]), key  # BigInt(...)
        row = await conn.fetchrow("SELECT deposited, withdrawn, last_update_time FROM streams WHERE stream_id = $1",
                                  stream_id)
        assert (int(stream["depositedAmount"]), int(stream["withdrawnAmount"])) == (row["deposited"], row["withdrawn"])
        assert stream["lastUpdateTime"] == row["last_update_time"]
        assert stream["streamId"] == stream_id
        assert stream["sender"] and stream["recipient"] and stream["tokenAddress"]
        assert isinstance(stream["startTime"], int)
        if name == "paused now":
            assert stream["isPaused"] is True and stream["status"] == "Paused"
        else:
            assert stream["status"].lower() == expected_status[name]  # stream.status.toLowerCase()
        assert isinstance(stream["isActive"], bool)
    assert (await client.get(f"{prefix}/streams/999999")).status_code == 404  # "Stream not found"


async def test_the_stream_page_pages_through_its_events(app: Any, conn: asyncpg.Connection) -> None:
    scenario, client = app
    stream_id = scenario.ids["paused twice"]
    expected = [r["id"] for r in await conn.fetch("SELECT id FROM events WHERE stream_id = $1 ORDER BY id DESC",
                                                  stream_id)]
    seen: list[str] = []
    page, pages = 1, 1
    while page <= pages:
        body = (await client.get(f"/v1/streams/{stream_id}/events?page={page}&limit=10")).json()
        events, total = body.get("events") or [], body.get("total") or 0
        pages = math.ceil(total / 10)
        for event in events:
            assert event["eventType"] in ("CREATED", "PAUSED", "RESUMED", "FEE_COLLECTED")
            assert isinstance(event["timestamp"], int)
            assert event["amount"] is None or is_integer_string(event["amount"])
            seen.append(event["id"])
        page += 1
    assert seen == expected and len(expected) == 6  # created and its fee, two pauses, two resumes


async def test_the_activity_page_gets_the_address_events_with_a_token(app: Any, pipeline: Any,
                                                                       conn: asyncpg.Connection) -> None:
    scenario, client = app
    devnet = pipeline[0]
    address = ALICE.public_key
    query = f"/v1/events?address={address}&page=1&limit=10"
    assert (await client.get(query)).status_code == 401  # as the backend: the page shows an empty list
    headers = {"Authorization": f"Bearer {await login(client, ALICE, devnet.chain.passphrase)}"}
    expected = [r["event_id"] for r in await conn.fetch(
        "SELECT event_id FROM event_parties WHERE address = $1 ORDER BY event_id DESC", address)]
    seen: list[str] = []
    page, more = 1, True
    while more:
        body = (await client.get(f"/v1/events?address={address}&page={page}&limit=10", headers=headers)).json()
        assert isinstance(body["events"], list) and isinstance(body["hasMore"], bool)
        for event in body["events"]:
            assert str(event["streamId"]).isdigit()
            assert event["amount"] is None or is_integer_string(event["amount"])
            assert isinstance(event["timestamp"], int) and event["transactionHash"] and event["ledgerSequence"]
            metadata = json.loads(event["metadata"])
            if event["eventType"] == "ADMIN_TRANSFERRED":
                assert metadata["new_admin"] == ALICE.public_key
            seen.append(event["id"])
        more, page = body["hasMore"], page + 1
    assert seen == expected
    for tab, types in (("CREATED", {"CREATED"}), ("WITHDRAWN", {"WITHDRAWN"}), ("TOPPED_UP", {"TOPPED_UP"}),
                       ("CANCELLED", {"CANCELLED"}), ("PAUSED%2CRESUMED", {"PAUSED", "RESUMED"})):
        body = (await client.get(f"/v1/events?address={address}&page=1&limit=10&type={tab}", headers=headers)).json()
        assert body["events"] and {event["eventType"] for event in body["events"]} <= types, tab


async def test_the_settings_page_shows_the_last_ledger(app: Any, conn: asyncpg.Connection) -> None:
    _scenario, client = app
    body = (await client.get("/v1/health")).json()
    assert body["ledger"] == await conn.fetchval("SELECT max(last_ledger) FROM indexer_cursor")


class Frames:
    """An SSE body read frame by frame, as EventSource dispatches it: (event name, JSON data)."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()
        self.received: list[tuple[str, dict[str, Any]]] = []

    async def until(self, predicate: Any, timeout: float = 30) -> None:
        async with asyncio.timeout(timeout):
            while not predicate([name for name, _ in self.received]):
                await self._next()

    async def _next(self) -> None:
        fields: dict[str, str] = {}
        async for line in self.lines:
            if line == "" and "data" in fields:
                self.received.append((fields.get("event", "message"), json.loads(fields["data"])))
                return
            if line == "":
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
        raise AssertionError("the stream ended")


async def test_the_bell_and_the_dashboard_get_their_users_events_live(pipeline: Any) -> None:
    devnet, scenario, base_url, url = pipeline
    async with http_client(base_url=base_url, headers={"Origin": ORIGIN}, timeout=30) as client:
        refused = await client.get("/v1/events/subscribe?")
        assert refused.status_code == 400 and "token" in refused.json()["message"]
        token = await login(client, ALICE, devnet.chain.passphrase)
        async with client.stream("GET", f"/v1/events/subscribe?token={token}") as response:
            assert response.status_code == 200
            assert response.headers["access-control-allow-origin"] == ORIGIN
            frames = Frames(response)
            await frames.until(lambda names: names)
            (first, connected), = frames.received
            assert first == "message" and connected["type"] == "connected"
            assert connected["clientId"] and connected["requestId"]
            scenario.call("top_up_stream", 300, sender=ALICE.public_key, stream_id=scenario.ids["running"],
                          amount=5_000_000)
            scenario.call("withdraw", 310, recipient=BOB.public_key, stream_id=scenario.ids["running"])
            scenario.call("resume_stream", 320, sender=ALICE.public_key, stream_id=scenario.ids["paused now"])
            scenario.create("later", 330, BOB, CAROL, 600)  # not Alice's: not for her bell
            scenario.create("for alice", 340, BOB, ALICE, 600)
            await index_now(devnet, url)
            await frames.until(lambda names: "stream.created" in names)
    names = [name for name, _ in frames.received if name in LIVE_NAMES]
    assert names == ["stream.topped_up", "stream.withdrawn", "stream.resumed", "stream.created"]
    payloads = dict(frames.received)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for name in names:
            data = payloads[name]
            assert isinstance(data["streamId"], int)
            assert is_integer_string(data.get("amount") or "0")  # BigInt(data.amount || "0")
            closed = await conn.fetchval("SELECT ledger_closed_at FROM events WHERE id = $1", data["id"])
            assert data["timestamp"] == int(closed.timestamp()) == scenario.t0 + {
                "stream.topped_up": 300, "stream.withdrawn": 310, "stream.resumed": 320, "stream.created": 340}[name]
            # the bell names the token (it falls back to "USDC" without tokenSymbol)
            symbol = await conn.fetchval("SELECT t.symbol FROM streams s JOIN tokens t ON t.address = s.token "
                                         "WHERE s.stream_id = $1", data["streamId"])
            assert data["tokenSymbol"] == symbol and symbol
    finally:
        await conn.close()
    assert payloads["stream.created"]["streamId"] == scenario.ids["for alice"]


async def test_the_stream_page_follows_one_stream_without_a_token(pipeline: Any) -> None:
    devnet, scenario, base_url, url = pipeline
    stream_id = scenario.ids["paused twice"]
    async with http_client(base_url=base_url, headers={"Origin": ORIGIN}, timeout=30) as client, \
            client.stream("GET", f"/v1/v1/events/subscribe?streams={stream_id}") as response:
        assert response.status_code == 200
        frames = Frames(response)
        await frames.until(lambda names: names)  # connected
        scenario.call("pause_stream", 400, sender=ALICE.public_key, stream_id=scenario.ids["running"])
        scenario.call("pause_stream", 410, sender=ALICE.public_key, stream_id=stream_id)
        scenario.call("resume_stream", 420, sender=ALICE.public_key, stream_id=stream_id)
        await index_now(devnet, url)
        await frames.until(lambda names: "stream.resumed" in names)
    assert [name for name, _ in frames.received] == ["message", "stream.paused", "stream.resumed"]
    paused, resumed = frames.received[1][1], frames.received[2][1]
    assert paused["streamId"] == stream_id and paused["pausedAt"] == scenario.t0 + 410
    assert isinstance(resumed["newEndTime"], str)  # the backend sent it as a string
