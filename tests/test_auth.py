from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from api.app import Server, create_app
from devnet import running_devnet
from tests.indexing import worker_settings
from tests.live import Received, add_traffic, index_now, read_sse, subscription
from tests.serving import running_app

SECRET = "a-test-secret-that-is-long-enough-for-hs256"
AUDIENCE = "flowfi-api"
ENDPOINTS = ["/events/subscribe?all=true", "/events/stats", "/metrics", "/streams", "/streams/1",
             "/streams/1/events", "/events", "/dead-letters"]


def token(claims: dict[str, Any], key: Any = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode({"exp": int(time.time()) + 300, "aud": AUDIENCE, **claims}, key, algorithm=algorithm)


@pytest.fixture
async def served(database_url: str, db: asyncpg.Connection) -> Any:
    with running_devnet(seed=21) as devnet:
        add_traffic(devnet, 600, seed=21)
        await index_now(devnet, database_url)
        settings = worker_settings(devnet, database_url, auth_jwt_secret=SECRET, auth_audience=AUDIENCE)
        with running_app(create_app(settings, database_url), server_class=Server) as base_url:
            yield devnet, base_url, database_url


async def test_every_endpoint_refuses_bad_tokens(served: Any) -> None:
    _devnet, base_url, _database_url = served
    bad = {
        "missing": None,
        "expired": jwt.encode({"sub": "x", "aud": AUDIENCE, "exp": int(time.time()) - 10}, SECRET, algorithm="HS256"),
        "wrongly signed": token({"admin": True}, key="another-secret-that-is-long-enough-for-hs256"),
        "wrong audience": jwt.encode({"admin": True, "aud": "someone-else", "exp": int(time.time()) + 60}, SECRET,
                                     algorithm="HS256"),
        "garbage": "not.a.jwt",
    }
    async with httpx.AsyncClient(base_url=base_url) as client:
        for path in ENDPOINTS:
            for name, value in bad.items():
                headers = {} if value is None else {"Authorization": f"Bearer {value}"}
                response = await client.get(path, headers=headers)
                assert response.status_code == 401, (path, name)
                assert response.headers["www-authenticate"] == "Bearer"
                assert response.json()["error"], (path, name)
        for path in ("/health", "/openapi.json", "/"):
            assert (await client.get(path)).status_code == 200, path


async def test_a_user_sees_only_their_own_streams_and_events(served: Any, db: asyncpg.Connection) -> None:
    devnet, base_url, database_url = served
    user = (await db.fetchrow("SELECT sender FROM streams ORDER BY stream_id LIMIT 1"))["sender"]
    mine = {int(r["stream_id"]) for r in await db.fetch(
        "SELECT stream_id FROM streams WHERE sender = $1 OR recipient = $1", user)}
    theirs = await db.fetchval("SELECT min(stream_id) FROM streams WHERE sender <> $1 AND recipient <> $1", user)
    user_token = token({"sub": user})
    headers = {"Authorization": f"Bearer {user_token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers) as client:
        listed = (await client.get("/streams", params={"limit": 500})).json()["items"]
        assert {int(s["streamId"]) for s in listed} == mine
        assert (await client.get(f"/streams/{theirs}")).status_code == 403
        assert (await client.get(f"/streams/{min(mine)}")).status_code == 200
        events = (await client.get("/events", params={"limit": 500, "all": "true"})).json()["items"]
        assert events and all(user in (e.get("sender"), e.get("recipient"), e.get("admin"), e.get("treasury"),
                                       e.get("newTreasury"), e.get("oldTreasury"), e.get("previousAdmin"),
                                       e.get("newAdmin")) for e in events)
        assert (await client.get("/dead-letters")).status_code == 403
        assert (await client.get("/events/stats")).status_code == 403
        other = (await db.fetchrow("SELECT recipient FROM streams WHERE sender <> $1 AND recipient <> $1 LIMIT 1",
                                   user))["recipient"]
        assert (await client.get(f"/users/{other}/streams")).status_code == 403

    # over SSE, with the token as a query parameter (EventSource cannot send headers)
    first = await db.fetchval("SELECT min(id) FROM events")
    expected = [r["id"] for r in await db.fetch(
        "SELECT event_id AS id FROM event_parties WHERE address = $1 AND event_id > $2 ORDER BY event_id",
        user, first)]
    got = Received()
    async with subscription(base_url, f"all=true&lastEventId={first}&token={user_token}") as (response, _):
        assert response.status_code == 200
        reading = asyncio.create_task(read_sse(response, got))
        add_traffic(devnet, 600, seed=22)
        await index_now(devnet, database_url)
        expected = [r["id"] for r in await db.fetch(
            "SELECT event_id AS id FROM event_parties WHERE address = $1 AND event_id > $2 ORDER BY event_id",
            user, first)]
        async with asyncio.timeout(20):
            while len(got.ids) < len(expected):
                await asyncio.sleep(0.05)
        reading.cancel()
    assert got.ids == expected


async def test_an_admin_sees_everything_and_public_keys_verify(database_url: str, db: asyncpg.Connection) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with running_devnet(seed=23) as devnet:
        add_traffic(devnet, 100, seed=23)
        await index_now(devnet, database_url)
        settings = worker_settings(devnet, database_url, auth_jwt_public_key=public_pem)
        with running_app(create_app(settings, database_url), server_class=Server) as base_url:
            admin = jwt.encode({"admin": True, "exp": int(time.time()) + 60}, private, algorithm="ES256")
            async with httpx.AsyncClient(base_url=base_url, cookies={"flowfi_token": admin}) as client:
                listed = (await client.get("/streams", params={"limit": 500})).json()["items"]
                assert len(listed) == await db.fetchval("SELECT count(*) FROM streams")
                assert (await client.get("/events/stats")).status_code == 200
            forged = token({"admin": True})  # HS256 with a secret: refused when a public key is configured
            async with httpx.AsyncClient(base_url=base_url) as client:
                response = await client.get("/streams", headers={"Authorization": f"Bearer {forged}"})
                assert response.status_code == 401
