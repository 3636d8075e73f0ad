"""Login as FlowFi's backend does it: POST /v1/auth/challenge gives a wallet a nonce; the wallet signs a
transaction whose source is its account and whose first operation is a manageData holding the nonce's
32 bytes; POST /v1/auth/verify checks that transaction (network, source, nonce, signature, with
stellar-sdk) and answers with a token (api.auth.Authenticator.issue): HS256, `sub` the address, `iss`
and `aud` FLOWFI_V1_JWT_ISSUER/AUDIENCE, one hour. Nothing is submitted to the network.

The nonce carries its own proof: random bytes, its expiry and a MAC over them and the address, keyed by
the token secret. Any process that shares the secret can verify it, with no store between challenge and
verify (the backend kept challenges in one process's memory); each process refuses a nonce it has
already accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from stellar_sdk import Keypair, ManageData, Network, StrKey, TransactionBuilder, TransactionEnvelope
from stellar_sdk.exceptions import BadSignatureError

from api.auth import Authenticator
from api.v1.errors import V1Error

TOKEN_LIFETIME = 3600  # seconds, as the backend's
MAX_BODY = 64 * 1024
_RANDOM, _EXPIRY, _MAC = 12, 8, 12  # bytes of a nonce: 32 in all, the backend's size


class Challenges:
    """Issues nonces and checks them once."""

    def __init__(self, authenticator: Authenticator, lifetime: float) -> None:
        secret = authenticator.issuing_secret.encode()
        self.key = hmac.new(secret, b"flowfi /v1 login challenge", hashlib.sha256).digest()
        self.lifetime = lifetime
        self.used: dict[bytes, float] = {}  # nonce -> its expiry, until then

    def issue(self, address: str) -> tuple[bytes, float]:
        """A nonce for `address` and when it expires (Unix seconds)."""
        expires = time.time() + self.lifetime
        head = secrets.token_bytes(_RANDOM) + int(expires * 1000).to_bytes(_EXPIRY, "big")
        return head + self._mac(address, head), expires

    def problem(self, address: str, nonce: bytes) -> str | None:
        """Why `nonce` cannot log `address` in, or None."""
        head, mac = nonce[:-_MAC], nonce[-_MAC:]
        if len(nonce) != _RANDOM + _EXPIRY + _MAC or not hmac.compare_digest(mac, self._mac(address, head)):
            return "Invalid challenge nonce in transaction"
        if _expiry(nonce) < time.time() or nonce in self.used:
            return "Challenge expired or not found"
        return None

    def spend(self, nonce: bytes) -> None:
        now = time.time()
        self.used = {used: expiry for used, expiry in self.used.items() if expiry >= now}
        self.used[nonce] = _expiry(nonce)

    def _mac(self, address: str, head: bytes) -> bytes:
        return hmac.new(self.key, address.encode() + head, hashlib.sha256).digest()[:_MAC]


def _expiry(nonce: bytes) -> float:
    return int.from_bytes(nonce[_RANDOM:_RANDOM + _EXPIRY], "big") / 1000


def challenges_of(request: Request) -> Challenges:
    state = request.app.state
    if getattr(state, "challenges", None) is None:
        state.challenges = Challenges(state.authenticator, state.settings.auth_challenge_lifetime)
    found: Challenges = state.challenges
    return found


async def _body(request: Request) -> dict[str, Any]:
    size = 0
    chunks = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise V1Error(413, "Payload Too Large", f"the body is over {MAX_BODY // 1024} KB")
        chunks.append(chunk)
    try:
        body = orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError:
        raise V1Error(400, "Invalid JSON", "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise V1Error(400, "Invalid JSON", "the body must be a JSON object")
    return body


async def challenge(request: Request) -> Response:
    """POST /v1/auth/challenge {publicKey}: {nonce (64 hex digits), expiresAt (Unix milliseconds)}."""
    body = await _body(request)
    address = body.get("publicKey")
    if not isinstance(address, str) or not StrKey.is_valid_ed25519_public_key(address):
        raise V1Error(400, "Invalid publicKey", "publicKey must be a Stellar account address (G... with its checksum)",
                      parameter="publicKey")
    nonce, expires = challenges_of(request).issue(address)
    return JSONResponse({"nonce": nonce.hex(), "expiresAt": int(expires * 1000)})


def _refuse(reason: str) -> V1Error:
    return V1Error(401, reason, f"{reason}: ask POST /v1/auth/challenge for a nonce, sign a transaction of your "
                   "account whose first operation is manageData with the nonce's bytes as its value, and send it "
                   "within the challenge's lifetime")


async def verify(request: Request) -> Response:
    """POST /v1/auth/verify {publicKey, signedTransaction (base64 envelope XDR)}: {token, expiresIn}."""
    body = await _body(request)
    address, envelope_xdr = body.get("publicKey"), body.get("signedTransaction")
    if not isinstance(address, str) or not address or not isinstance(envelope_xdr, str) or not envelope_xdr:
        raise V1Error(400, "publicKey and signedTransaction required",
                      "send {publicKey: G..., signedTransaction: base64 transaction envelope XDR}")
    if not StrKey.is_valid_ed25519_public_key(address):
        raise V1Error(400, "Invalid publicKey", "publicKey must be a Stellar account address (G... with its checksum)",
                      parameter="publicKey")
    settings = request.app.state.settings
    try:
        envelope = TransactionBuilder.from_xdr(envelope_xdr, settings.network_passphrase)
    except Exception:  # stellar-sdk raises many kinds on malformed XDR
        raise _refuse("Invalid signed transaction") from None
    if not isinstance(envelope, TransactionEnvelope):
        raise _refuse("Transaction source does not match publicKey")
    transaction = envelope.transaction
    if transaction.source.account_id != address:
        raise _refuse("Transaction source does not match publicKey")
    operation = transaction.operations[0] if transaction.operations else None
    if not isinstance(operation, ManageData) or operation.data_value is None:
        raise _refuse("Invalid challenge nonce in transaction")
    challenges = challenges_of(request)
    if (reason := challenges.problem(address, operation.data_value)) is not None:
        raise _refuse(reason)
    keypair = Keypair.from_public_key(address)
    if _signs(keypair, envelope.hash(), [decorated.signature for decorated in envelope.signatures]):
        challenges.spend(operation.data_value)
        authenticator: Authenticator = request.app.state.authenticator
        return JSONResponse({"token": authenticator.issue(address, TOKEN_LIFETIME), "expiresIn": TOKEN_LIFETIME})
    if (other := _network_signed_for(envelope, keypair)) is not None:
        raise V1Error(401, "Invalid signature", f"Invalid signature: the transaction is signed for the network "
                      f"{other!r}, and this server's is {settings.network_passphrase!r} (FLOWFI_NETWORK_PASSPHRASE): "
                      "sign it for that network")
    raise _refuse("Invalid signature")


def _network_signed_for(envelope: TransactionEnvelope, keypair: Keypair) -> str | None:
    """The public network whose passphrase the envelope's signature is good for, if it is one of them: a
    wallet set to another network than the server's signs for that one. One hash per network, and only
    the signatures that name the key (a refused login costs little more than before)."""
    hint = keypair.signature_hint()
    signatures = [decorated.signature for decorated in envelope.signatures if decorated.signature_hint == hint]
    for passphrase in (Network.PUBLIC_NETWORK_PASSPHRASE, Network.TESTNET_NETWORK_PASSPHRASE,
                       Network.FUTURENET_NETWORK_PASSPHRASE) if signatures else ():
        if _signs(keypair, TransactionEnvelope(envelope.transaction, passphrase).hash(), signatures):
            return passphrase
    return None


def _signs(keypair: Keypair, signed: bytes, signatures: list[bytes]) -> bool:
    """Whether one of `signatures` is `keypair`'s of the hash `signed`."""
    for signature in signatures:
        try:
            keypair.verify(signed, signature)
            return True
        except BadSignatureError:
            continue
    return False
