from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from typer.testing import CliRunner

from api.app import Server, create_app
from api.client import TokenExpired, subscribe
from devnet import running_devnet
from flowfi.cli import app as cli
from flowfi.settings import Settings
from tests.indexing import worker_settings
from tests.live import Received, add_traffic, index_now, live_pipeline, read_sse, subscription
from tests.serving import http_client, running_app

SECRET = "a-test-secret-that-is-long-enough-for-hs256"
AUDIENCE = "flowfi-api"
ORIGIN = "https://app.example"
ENDPOINTS = ["/events/subscribe?all=true", "/events/stats", "/metrics", "/streams", "/streams/1",
             "/streams/1/events", "/events", "/dead-letters"]


def token(claims: dict[str, Any], key: Any = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode({"exp": int(time.time()) + 300, "aud": AUDIENCE, **claims}, key, algorithm=algorithm)


@pytest.fixture
async def served(database_url: str, db: asyncpg.Connection) -> Any:
    with running_devnet(seed=21) as devnet:
        add_traffic(devnet, 600, seed=21)
        await index_now(devnet, database_url)
        settings = worker_settings(devnet, database_url, auth_jwt_secret=SECRET, auth_audience=AUDIENCE,
                                   cors_origins=ORIGIN)
        with running_app(create_app(settings, database_url), server_class=Server) as base_url:
            yield devnet, base_url, database_url


def public_pem(private: Any) -> str:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


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
    async with http_client(base_url=base_url) as client:
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
    async with http_client(base_url=base_url, headers=headers) as client:
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
    with running_devnet(seed=23) as devnet:
        add_traffic(devnet, 100, seed=23)
        await index_now(devnet, database_url)
        settings = worker_settings(devnet, database_url, auth_jwt_public_key=public_pem(private))
        with running_app(create_app(settings, database_url), server_class=Server) as base_url:
            admin = jwt.encode({"admin": True, "exp": int(time.time()) + 60}, private, algorithm="ES256")
            async with http_client(base_url=base_url, cookies={"flowfi_token": admin}) as client:
                listed = (await client.get("/streams", params={"limit": 500})).json()["items"]
                assert len(listed) == await db.fetchval("SELECT count(*) FROM streams")
                assert (await client.get("/events/stats")).status_code == 200
            forged = token({"admin": True})  # HS256 with a secret: refused when a public key is configured
            async with http_client(base_url=base_url) as client:
                response = await client.get("/streams", headers={"Authorization": f"Bearer {forged}"})
                assert response.status_code == 401


async def test_the_token_query_parameter_works_everywhere_and_the_asset_filter_has_its_own_name(
    served: Any, db: asyncpg.Connection
) -> None:
    _devnet, base_url, _database_url = served
    admin = token({"admin": True})
    asset = await db.fetchval("SELECT token FROM streams GROUP BY token ORDER BY count(*) DESC LIMIT 1")
    expected = await db.fetchval("SELECT count(*) FROM streams WHERE token = $1", asset)
    async with http_client(base_url=base_url) as client:
        for name in ("token", "access_token"):
            everything = await client.get("/streams", params={name: admin, "limit": 500})
            assert everything.status_code == 200, everything.text
            assert len(everything.json()["items"]) == await db.fetchval("SELECT count(*) FROM streams")
            mine = await client.get("/streams", params={name: admin, "tokenAddress": asset, "limit": 500})
            assert len(mine.json()["items"]) == expected > 0
            assert (await client.get("/events/stats", params={name: admin})).status_code == 200
        refused = await client.get("/streams", params={"token": admin[:-4] + "AAAA"})
        assert refused.status_code == 401 and admin[:20] not in refused.text
    async with subscription(base_url, f"all=true&access_token={admin}") as (response, _):
        assert response.status_code == 200


async def test_a_bad_token_is_refused_in_the_servers_words_never_the_librarys(served: Any) -> None:
    _devnet, base_url, _database_url = served
    now = int(time.time())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    bad = {
        "signed with none": jwt.encode({"admin": True, "exp": now + 60, "aud": AUDIENCE}, None, algorithm="none"),
        "signed with RS256": jwt.encode({"admin": True, "exp": now + 60, "aud": AUDIENCE}, rsa_key,
                                        algorithm="RS256"),
        "no expiry": jwt.encode({"admin": True, "aud": AUDIENCE}, SECRET, algorithm="HS256"),
        "expiry as text": jwt.encode({"admin": True, "aud": AUDIENCE, "exp": "tomorrow"}, SECRET, algorithm="HS256"),
        "expiry past any calendar": token({"admin": True, "exp": 10**400}),
        "expiry infinite": token({"admin": True, "exp": float("inf")}),
        "issued at infinity": token({"admin": True, "exp": now + 60, "iat": float("inf")}),
        "not yet valid": token({"admin": True, "nbf": now + 3600}),
        "bad header": "eyJ!!!.eyJhZG1pbiI6dHJ1ZX0.c2ln",
        "header not JSON": "bm90IGpzb24.eyJhZG1pbiI6dHJ1ZX0.c2ln",
        "one part": "eyJhbGciOiJIUzI1NiJ9",
    }
    library_words = ("Expected", "generator", "<", "padding", "Signature verification", "not allowed",
                     "Invalid", "must be")
    async with http_client(base_url=base_url) as client:
        for name, value in bad.items():
            for response in (await client.get("/streams", headers={"Authorization": f"Bearer {value}"}),
                             await client.get(f"/events/subscribe?all=true&access_token={value}")):
                assert response.status_code == 401, (name, response.text)
                message = response.json()["error"]
                assert message.startswith("the token"), (name, message)
                assert not any(word in message for word in library_words), (name, message)
                assert value[:12] not in response.text, name
                if name == "expiry as text":
                    assert message == "the token's exp claim is not a number (seconds since 1970)"
                if name.startswith("expiry "):
                    assert "exp claim" in message, (name, message)


async def test_a_token_signed_with_another_kind_of_key_is_refused_in_plain_words(database_url: str) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    settings = Settings(database_url=database_url, auth_jwt_public_key=public_pem(rsa_key))
    with running_app(create_app(settings, database_url), server_class=Server) as base_url:
        ec_signed = jwt.encode({"admin": True, "exp": int(time.time()) + 60}, ec.generate_private_key(ec.SECP256R1()),
                               algorithm="ES256")
        async with http_client(base_url=base_url) as client:
            response = await client.get("/streams", headers={"Authorization": f"Bearer {ec_signed}"})
            good = jwt.encode({"admin": True, "exp": int(time.time()) + 60}, rsa_key, algorithm="RS256")
            accepted = await client.get("/streams", headers={"Authorization": f"Bearer {good}"})
    assert response.status_code == 401
    assert response.json() == {"error": "the token is not signed with RS256, the algorithm this service verifies"}
    assert accepted.status_code == 200


@pytest.mark.parametrize("secret", ["", "zq", "31-bytes-is-still-one-too-short"])
def test_a_secret_under_32_bytes_is_refused_at_start_without_repeating_it(secret: str) -> None:
    with pytest.raises(ValueError, match="at least 32"):
        Settings(auth_jwt_secret=secret)
    if not secret:
        return  # an empty variable means unset (compose writes ${X:-}); the setting itself refuses ""
    result = CliRunner().invoke(cli, ["serve"], env={"FLOWFI_AUTH_JWT_SECRET": secret})
    assert result.exit_code == 2
    assert f"FLOWFI_AUTH_JWT_SECRET: the HS256 secret is {len(secret)} bytes; it needs at least 32" in result.output
    assert secret not in result.output


def test_a_public_key_that_is_not_one_is_refused_at_start() -> None:
    result = CliRunner().invoke(cli, ["serve"], env={"FLOWFI_AUTH_JWT_PUBLIC_KEY": "not a key"})
    assert result.exit_code == 2
    assert "FLOWFI_AUTH_JWT_PUBLIC_KEY: not a PEM public key" in result.output


async def test_refusals_of_the_stream_carry_cors_headers_for_allowed_origins(served: Any) -> None:
    _devnet, base_url, _database_url = served
    async with http_client(base_url=base_url) as client:
        for headers in ({"Origin": ORIGIN}, {"Origin": ORIGIN, "Authorization": "Bearer not.a.jwt"}):
            refused = await client.get("/events/subscribe?all=true", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["access-control-allow-origin"] == ORIGIN
            assert refused.headers["access-control-allow-credentials"] == "true"
        user = token({"sub": "not-an-address"})
        forbidden = await client.get(f"/events/subscribe?all=true&access_token={user}", headers={"Origin": ORIGIN})
        assert forbidden.status_code == 403 and forbidden.headers["access-control-allow-origin"] == ORIGIN
        other = await client.get("/events/subscribe?all=true", headers={"Origin": "https://evil.example"})
        assert other.status_code == 401 and "access-control-allow-origin" not in other.headers


async def test_a_quiet_stream_ends_within_a_second_of_its_tokens_expiry(database_url: str) -> None:
    """No event and no heartbeat (15 s apart) to wake it: the stream still ends at the expiry."""
    with live_pipeline(database_url, auth_jwt_secret=SECRET) as (_devnet, base_url):
        expires = time.time() + 2
        short_lived = jwt.encode({"admin": True, "exp": int(expires)}, SECRET, algorithm="HS256")

        async def follow() -> None:
            async for _event in subscribe(base_url, all=True, token=short_lived, retry_delay=0.1):
                pass

        with pytest.raises(TokenExpired, match="expired"):
            await asyncio.wait_for(follow(), 10)
        ended = time.time()
    assert ended - int(expires) < 1.0


async def test_a_stream_stops_when_its_token_expires_and_says_so(database_url: str, db: asyncpg.Connection) -> None:
    """Nothing is delivered after the token's expiry, even an event that wakes the stream; the stream
    ends with an error frame (status 401), which the Python client raises as TokenExpired with the id
    to resume from."""
    with live_pipeline(database_url, auth_jwt_secret=SECRET) as (devnet, base_url):
        add_traffic(devnet, 40, seed=24)
        await index_now(devnet, database_url)
        start = await db.fetchval("SELECT min(id) FROM events")
        expires = int(time.time()) + 6
        short_lived = jwt.encode({"admin": True, "exp": expires}, SECRET, algorithm="HS256")
        received: list[str] = []

        async def follow() -> None:
            async for event in subscribe(base_url, all=True, last_event_id=start, token=short_lived,
                                         retry_delay=0.1):
                received.append(event.id)

        following = asyncio.create_task(follow())
        add_traffic(devnet, 40, seed=25)
        await index_now(devnet, database_url)  # live, before the expiry
        before_expiry = await db.fetchval("SELECT max(id) FROM events")
        async with asyncio.timeout(20):
            while not received or received[-1] != before_expiry:
                await asyncio.sleep(0.05)
        await asyncio.sleep(expires - time.time() + 0.3)
        add_traffic(devnet, 40, seed=26)
        await index_now(devnet, database_url)  # after it: these events wake the stream
        with pytest.raises(TokenExpired, match="expired") as ended:
            await asyncio.wait_for(following, 20)
        async with http_client(base_url=base_url) as client:
            rest = await client.get("/streams", headers={"Authorization": f"Bearer {short_lived}"})
    assert received[-1] == before_expiry
    assert received == [r["id"] for r in await db.fetch(
        "SELECT id FROM events WHERE id > $1 AND id <= $2 ORDER BY id", start, before_expiry)]
    assert ended.value.last_event_id == before_expiry
    assert rest.status_code == 401
