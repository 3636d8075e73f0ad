"""Who is asking: JWT authentication, off by default, on when a secret or public key is configured.

The token comes from the Authorization header (`Bearer ...`), an `access_token` query parameter
(browsers' EventSource cannot send headers; `token` works too, and is the credential on /streams
only while authentication is on) or the `flowfi_token` cookie. It is verified with an HS256 secret
or an RS256/ES256 public key, and its expiry, audience and issuer are checked. No error message
repeats the token or a library's own words about it. Its `sub` claim (name
configurable) is the user's Stellar address: that user sees only events and rows of streams where
they are sender or recipient (and protocol events naming them). A true `admin` claim sees everything,
and so does a token whose `sub` is FLOWFI_ADMIN_ADDRESS (FlowFi's backend's admin rule).

Tokens that this server issues at /v1/auth/verify are accepted too (HS256, `sub`, `iss` and `aud`, one
hour), as are those of FlowFi's backend when FLOWFI_V1_JWT_SECRET is its JWT_SECRET.

Open without a token: /health, /ready, /openapi.json and the live page's files (the page then
authenticates its own requests with the token the user gives it). The /v1 routes and /api-docs are
an application of their own (api.v1), with FlowFi's backend's rules.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.settings import ApiSettings
from indexer.addresses import is_account, is_contract
from indexer.events import LAST_SECOND

OPEN_PATHS = frozenset({"/health", "/ready", "/openapi.json", "/"})
COOKIE = "flowfi_token"
QUERY_CREDENTIALS = ("access_token", "token")  # the query parameters that may carry the token
SCOPE_KEY = "flowfi.principal"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: an address that sees its own streams, or an admin who sees all."""

    address: str | None
    admin: bool
    expires_at: float | None = None  # the token's expiry (Unix time); None without a token

    @property
    def restricted_to(self) -> str | None:
        """The one address whose data this caller may see; None for everything."""
        return None if self.admin else self.address


EVERYONE = Principal(address=None, admin=True)  # what every caller is when authentication is off


class AuthError(Exception):
    def __init__(self, status: int, message: str, *, signature_failed: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.signature_failed = signature_failed  # the token is not signed with the key tried


@dataclass(frozen=True, slots=True)
class Verifier:
    """One key tokens may be signed with, and what their audience and issuer must be (None: unchecked)."""

    key: Any
    algorithms: tuple[str, ...]
    audience: str | None
    issuer: str | None


class Authenticator:
    """Verifies tokens: those signed with the configured key (FLOWFI_AUTH_JWT_*), and those this server
    issues itself at /v1/auth/verify (HS256 with `issuing_secret`). `enabled` (a key is configured) says
    whether today's routes require a token; the /v1 routes apply their own rules whatever it says."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        if settings.auth_jwt_secret is not None:
            self.key: object = settings.auth_jwt_secret.get_secret_value()
            self.algorithms = ["HS256"]
        elif settings.auth_jwt_public_key is not None:
            self.key = load_pem_public_key(settings.auth_jwt_public_key.encode())
            self.algorithms = ["RS256"] if isinstance(self.key, rsa.RSAPublicKey) else ["ES256"]
        else:
            self.key = None
            self.algorithms = []
        chosen = settings.token_signing_secret
        # Without a configured secret the issued tokens are signed with one of this process's: they end with it.
        self.issuing_secret_is_ephemeral = chosen is None
        self.issuing_secret = secrets.token_hex(32) if chosen is None else chosen.get_secret_value()
        configured = [] if self.key is None else [
            Verifier(self.key, tuple(self.algorithms), settings.auth_audience, settings.auth_issuer)]
        self.verifiers = [*configured, Verifier(self.issuing_secret, ("HS256",), settings.v1_jwt_audience,
                                                settings.v1_jwt_issuer)]

    @property
    def enabled(self) -> bool:
        return self.key is not None

    def issue(self, address: str, lifetime: int) -> str:
        """A token for `address`, as FlowFi's backend issues them: HS256, sub, iat, exp, iss, aud."""
        now = int(time.time())
        return jwt.encode({"sub": address, "iat": now, "exp": now + lifetime, "iss": self.settings.v1_jwt_issuer,
                           "aud": self.settings.v1_jwt_audience}, self.issuing_secret, algorithm="HS256")

    def principal(self, connection: HTTPConnection) -> Principal:
        token = token_of(connection)
        if token is None:
            raise AuthError(401, "authentication required: send a token as 'Authorization: Bearer <jwt>', "
                                 "an 'access_token' query parameter, or the flowfi_token cookie")
        return self.principal_of_token(token)

    def principal_of_token(self, token: str) -> Principal:
        claims = self._verified(token)
        expires_at = float(claims["exp"])
        address = claims.get(self.settings.auth_address_claim)
        valid = is_account(address) or is_contract(address)
        admin_address = self.settings.admin_address
        if claims.get(self.settings.auth_admin_claim) is True or (valid and admin_address == address):
            return Principal(address=address if valid else None, admin=True, expires_at=expires_at)
        if not valid:
            raise AuthError(403, f"the token's {self.settings.auth_address_claim!r} claim is not a Stellar "
                                 "address, and it carries no admin claim")
        assert isinstance(address, str)
        return Principal(address=address, admin=False, expires_at=expires_at)

    def _verified(self, token: str) -> dict[str, Any]:
        """The token's claims, once its signature, expiry, audience and issuer check out under one of the
        verifiers; else a 401 in this module's words (PyJWT's messages may quote the token or show Python
        reprs): that of the first verifier whose key matched the signature, else the first one's."""
        first: AuthError | None = None
        for verifier in self.verifiers:
            try:
                return _decoded(token, verifier)
            except AuthError as exc:
                if first is None or (first.signature_failed and not exc.signature_failed):
                    first = exc
        assert first is not None
        raise first


def _decoded(token: str, verifier: Verifier) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token, verifier.key, algorithms=list(verifier.algorithms),
            audience=verifier.audience, issuer=verifier.issuer,
            options={"require": ["exp"], "verify_aud": verifier.audience is not None},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError(401, "the token has expired: get a new one") from None
    except jwt.ImmatureSignatureError:
        raise AuthError(401, "the token is not valid yet (its nbf or iat is in the future)") from None
    except jwt.InvalidAudienceError:
        raise AuthError(401, "the token is not meant for this service (wrong audience)") from None
    except jwt.InvalidIssuerError:
        raise AuthError(401, "the token comes from an issuer this service does not trust") from None
    except jwt.MissingRequiredClaimError as exc:
        claim = exc.claim if exc.claim in ("exp", "aud", "iss") else "a required"
        raise AuthError(401, f"the token lacks the {claim} claim") from None
    except (jwt.InvalidAlgorithmError, jwt.InvalidKeyError):
        raise AuthError(401, f"the token is not signed with {' or '.join(verifier.algorithms)}, the algorithm "
                             "this service verifies", signature_failed=True) from None
    except jwt.InvalidSignatureError:
        raise AuthError(401, "the token's signature does not verify", signature_failed=True) from None
    except jwt.DecodeError as exc:
        # PyJWT says so too when a well-formed token's exp or nbf is not a number.
        not_a_number = next((name for name in ("exp", "nbf") if f"({name}) must be" in str(exc)), None)
        if not_a_number is not None:
            raise AuthError(401, f"the token's {not_a_number} claim is not a number (seconds since 1970)") from None
        raise AuthError(401, "the token is not a well-formed JWT (header.claims.signature, base64url)") from None
    except (jwt.PyJWTError, ValueError, TypeError, KeyError, OverflowError):
        # OverflowError: PyJWT reads an infinite exp, iat or nbf (JSON's Infinity) with int().
        raise AuthError(401, "the token is not valid: one of its claims is malformed") from None
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        raise AuthError(401, "the token is not valid: one of its claims is malformed")
    if not exp <= LAST_SECOND:
        raise AuthError(401, "the token's exp claim lies beyond the year 9999: issue it with a real expiry")
    return claims


def token_of(connection: HTTPConnection) -> str | None:
    header = connection.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    params = connection.query_params
    return next((params[name] for name in QUERY_CREDENTIALS if params.get(name)), None) or (
        connection.cookies.get(COOKIE) or None)


def principal_of(connection: HTTPConnection) -> Principal:
    """The caller, as the middleware established it (everyone is an admin when auth is off)."""
    principal = connection.scope.get(SCOPE_KEY, EVERYONE)
    assert isinstance(principal, Principal)
    return principal


def require_admin(connection: HTTPConnection) -> None:
    if not principal_of(connection).admin:
        raise AuthError(403, "this endpoint is for admins: the token carries no admin claim")


def authenticate(authenticator: Authenticator, scope: Scope) -> Response | None:
    """Record the caller in `scope`, or return the 401/403 to answer instead."""
    try:
        scope[SCOPE_KEY] = authenticator.principal(HTTPConnection(scope))
    except AuthError as exc:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        return JSONResponse({"error": exc.message}, exc.status, headers=headers)
    return None


class AuthMiddleware:
    """Pure ASGI (it passes `receive` through untouched, which the SSE endpoint relies on)."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator, open_paths: frozenset[str]) -> None:
        self.app = app
        self.authenticator = authenticator
        self.open_paths = OPEN_PATHS | open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.authenticator.enabled and scope["path"] not in self.open_paths:
            refusal = authenticate(self.authenticator, scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)
