"""Login under /v1, as FlowFi's backend does it: a wallet signs the challenge's nonce into a transaction,
the server checks it with stellar-sdk and issues the token that /v1 and this API's own routes accept."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from stellar_sdk import Account, Keypair, TransactionBuilder

from api.app import Server, create_app
from flowfi.settings import Settings
from indexer.networks import LOCAL_PASSPHRASE, TESTNET_PASSPHRASE
from tests.serving import http_client, running_app
from tests.test_auth import public_pem

SECRET = "a-test-secret-that-is-long-enough-for-hs256"
WALLET = Keypair.random()


def signed(keypair: Keypair, nonce: bytes, *, source: str | None = None, passphrase: str = LOCAL_PASSPHRASE,
           signer: Keypair | None = None) -> str:
    transaction = (TransactionBuilder(Account(source or keypair.public_key, 7), passphrase, base_fee=100)
                   .append_manage_data_op("auth", nonce).set_timeout(60).build())
    transaction.sign(signer or keypair)
    return transaction.to_xdr()


async def nonce_for(client: httpx.AsyncClient, keypair: Keypair) -> bytes:
    response = await client.post("/v1/auth/challenge", json={"publicKey": keypair.public_key})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["nonce"]) == 64 and body["expiresAt"] > time.time() * 1000
    return bytes.fromhex(body["nonce"])


async def verify(client: httpx.AsyncClient, keypair: Keypair, envelope: str) -> httpx.Response:
    return await client.post("/v1/auth/verify", json={"publicKey": keypair.public_key, "signedTransaction": envelope})


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=database_url, auth_jwt_secret=SECRET, auth_challenge_lifetime=2)
    with running_app(create_app(settings, database_url), server_class=Server) as base_url:
        async with http_client(base_url=base_url, timeout=20) as client:
            yield client


async def test_a_signed_challenge_gets_a_token_that_every_route_accepts(api: httpx.AsyncClient) -> None:
    response = await verify(api, WALLET, signed(WALLET, await nonce_for(api, WALLET)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expiresIn"] == 3600
    assert jwt.get_unverified_header(body["token"])["alg"] == "HS256"
    claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"], audience="flowfi-api", issuer="flowfi-api")
    assert claims["sub"] == WALLET.public_key and claims["exp"] - claims["iat"] == 3600
    headers = {"Authorization": f"Bearer {body['token']}"}
    assert (await api.get("/v1/users/me", headers=headers)).json()["publicKey"] == WALLET.public_key
    assert (await api.get("/streams", headers=headers)).status_code == 200  # this API's own, authentication on
    assert (await api.get(f"/events?access_token={body['token']}")).status_code == 200


async def test_a_challenge_is_spent_once_and_expires(api: httpx.AsyncClient) -> None:
    nonce = await nonce_for(api, WALLET)
    assert (await verify(api, WALLET, signed(WALLET, nonce))).status_code == 200
    again = await verify(api, WALLET, signed(WALLET, nonce))
    assert again.status_code == 401 and again.json()["error"] == "Challenge expired or not found"
    late = await nonce_for(api, WALLET)
    await asyncio.sleep(2.2)
    response = await verify(api, WALLET, signed(WALLET, late))
    assert response.status_code == 401 and response.json()["error"] == "Challenge expired or not found"


async def test_a_transaction_that_proves_nothing_is_refused(api: httpx.AsyncClient) -> None:
    other = Keypair.random()
    nonce = await nonce_for(api, WALLET)
    cases = {
        "another source": (signed(WALLET, nonce, source=other.public_key),
                           "Transaction source does not match publicKey"),
        "another's nonce": (signed(WALLET, await nonce_for(api, other)), "Invalid challenge nonce in transaction"),
        "a made-up nonce": (signed(WALLET, bytes(32)), "Invalid challenge nonce in transaction"),
        "another signer": (signed(WALLET, nonce, signer=other), "Invalid signature"),
        "another network": (signed(WALLET, nonce, passphrase=TESTNET_PASSPHRASE), "Invalid signature"),
        "not XDR": (base64.b64encode(b"hello").decode(), "Invalid signed transaction"),
    }
    for name, (envelope, error) in cases.items():
        response = await verify(api, WALLET, envelope)
        assert response.status_code == 401, name
        assert response.json()["error"] == error and response.json()["message"], name
    # a wallet set to another network is told so, not only that the signature is wrong
    message = (await verify(api, WALLET, signed(WALLET, nonce, passphrase=TESTNET_PASSPHRASE))).json()["message"]
    assert message.startswith(f"Invalid signature: the transaction is signed for the network {TESTNET_PASSPHRASE!r}, "
                              "and this server's is 'Standalone Network ; February 2017' (FLOWFI_NETWORK_PASSPHRASE): "
                              "sign it for that network"), message
    # none of the refusals spent the nonce
    assert (await verify(api, WALLET, signed(WALLET, nonce))).status_code == 200


async def test_malformed_requests_are_400s(api: httpx.AsyncClient) -> None:
    for body, error in (({"publicKey": "GABC"}, "Invalid publicKey"), ({}, "Invalid publicKey")):
        response = await api.post("/v1/auth/challenge", json=body)
        assert response.status_code == 400 and response.json()["error"] == error
    response = await api.post("/v1/auth/verify", json={"publicKey": WALLET.public_key})
    assert response.json()["error"] == "publicKey and signedTransaction required"
    response = await api.post("/v1/auth/verify", content=b"{not json")
    assert response.status_code == 400 and response.json()["message"]


async def test_tokens_work_across_processes_sharing_the_secret(database_url: str) -> None:
    """The nonce carries its own proof: a challenge from one process verifies at another."""
    settings: dict[str, Any] = {"database_url": database_url, "v1_jwt_secret": SECRET}
    with running_app(create_app(Settings(**settings), database_url), server_class=Server) as first, \
            running_app(create_app(Settings(**settings), database_url), server_class=Server) as second:
        async with http_client(timeout=20) as client:
            nonce = bytes.fromhex((await client.post(f"{first}/v1/auth/challenge",
                                                     json={"publicKey": WALLET.public_key})).json()["nonce"])
            response = await client.post(f"{second}/v1/auth/verify", json={
                "publicKey": WALLET.public_key, "signedTransaction": signed(WALLET, nonce)})
            assert response.status_code == 200
            headers = {"Authorization": f"Bearer {response.json()['token']}"}
            assert (await client.get(f"{first}/v1/users/me", headers=headers)).status_code == 200


async def test_issued_tokens_pass_beside_an_identity_providers_keys(database_url: str) -> None:
    """With RS256 keys of another issuer configured, this API still accepts the tokens it issues itself;
    without any key configured, /v1 signs with a secret of its own process."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for settings in (Settings(database_url=database_url, auth_jwt_public_key=public_pem(rsa_key)),
                     Settings(database_url=database_url)):
        with running_app(create_app(settings, database_url), server_class=Server) as base_url:
            async with http_client(base_url=base_url, timeout=20) as client:
                token = (await verify(client, WALLET, signed(WALLET, await nonce_for(client, WALLET)))).json()["token"]
                headers = {"Authorization": f"Bearer {token}"}
                assert (await client.get("/v1/users/me", headers=headers)).status_code == 200
                assert (await client.get("/streams", headers=headers)).status_code == 200
                forged = jwt.encode({**jwt.decode(token, options={"verify_signature": False}), "sub": Keypair.random(
                ).public_key}, "some-other-secret-that-is-long-enough", algorithm="HS256")
                refused = await client.get("/v1/users/me", headers={"Authorization": f"Bearer {forged}"})
                assert refused.status_code == 401


async def test_a_dev_server_on_localhost_3000_may_log_in_from_the_browser(api: httpx.AsyncClient) -> None:
    preflight = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    response = await api.options("/v1/auth/challenge", headers=preflight)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "POST" in response.headers["access-control-allow-methods"]
    response = await api.post("/v1/auth/challenge", json={"publicKey": WALLET.public_key},
                              headers={"Origin": "http://localhost:3000"})
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
    other = await api.post("/v1/auth/challenge", json={"publicKey": WALLET.public_key},
                           headers={"Origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in other.headers


async def test_a_preflight_from_an_origin_not_allowed_is_refused_in_each_apis_words(api: httpx.AsyncClient) -> None:
    preflight = {"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "GET"}
    refusal = ("a request from 'https://elsewhere.example' is not allowed: its origin is not one of "
               "FLOWFI_CORS_ORIGINS (http://localhost:3000, http://127.0.0.1:3000)")
    v1 = await api.options("/v1/streams", headers=preflight)
    assert (v1.status_code, v1.json()) == (400, {"error": "Invalid request", "message": refusal})
    own = await api.options("/streams", headers=preflight)
    assert (own.status_code, own.json()) == (400, {"error": refusal})
    header = await api.options("/streams", headers={**preflight, "Origin": "http://localhost:3000",
                                                    "Access-Control-Request-Headers": "x-secret"})
    assert header.json() == {"error": "a request from 'http://localhost:3000' is not allowed: its header 'x-secret' "
                                      "is not one this API takes (authorization, last-event-id)"}
    empty = await api.options("/streams", headers={**preflight, "Origin": "http://localhost:3000",
                                                   "Access-Control-Request-Headers": "authorization,"})
    assert empty.json()["error"].endswith("its header '' is not one this API takes (authorization, last-event-id)")
    long = await api.options("/streams", headers={**preflight, "Origin": "https://" + "x" * 5000})
    assert long.status_code == 400 and len(long.text) < 500
