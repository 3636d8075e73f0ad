"""Who is asking: JWT authentication, off by default, on when a secret or public key is configured.

The token comes from the Authorization header (`Bearer ...`), a `token` query parameter (browsers'
EventSource cannot send headers) or the `flowfi_token` cookie. It is verified with an HS256 secret
or an RS256/ES256 public key, and its expiry, audience and issuer are checked. Its `sub` claim (name
configurable) is the user's Stellar address: that user sees only events and rows of streams where
they are sender or recipient (and protocol events naming them). A true `admin` claim sees everything.

Open without a token: /health, /ready, /openapi.json and the live page's files (the page then
authenticates its own requests with the token the user gives it).
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from stellar_sdk import StrKey

from api.settings import ApiSettings

OPEN_PATHS = frozenset({"/health", "/ready", "/openapi.json", "/"})
COOKIE = "flowfi_token"
SCOPE_KEY = "flowfi.principal"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: an address that sees its own streams, or an admin who sees all."""

    address: str | None
    admin: bool

    @property
    def restricted_to(self) -> str | None:
        """The one address whose data this caller may see; None for everything."""
        return None if self.admin else self.address


EVERYONE = Principal(address=None, admin=True)  # what every caller is when authentication is off


class AuthError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Authenticator:
    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        if settings.auth_jwt_secret is not None:
            self.key: object = settings.auth_jwt_secret.get_secret_value()
            self.algorithms = ["HS256"]
        elif settings.auth_jwt_public_key is not None:
            self.key = settings.auth_jwt_public_key
            self.algorithms = ["RS256", "ES256"]
        else:
            self.key = None
            self.algorithms = []

    @property
    def enabled(self) -> bool:
        return self.key is not None

    def principal(self, connection: HTTPConnection) -> Principal:
        token = token_of(connection)
        if token is None:
            raise AuthError(401, "authentication required: send a token as 'Authorization: Bearer <jwt>', "
                                 "a 'token' query parameter, or the flowfi_token cookie")
        try:
            claims = jwt.decode(
                token, self.key, algorithms=self.algorithms,  # type: ignore[arg-type]
                audience=self.settings.auth_audience, issuer=self.settings.auth_issuer,
                options={"require": ["exp"], "verify_aud": self.settings.auth_audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError(401, "the token has expired: get a new one") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError(401, "the token is not meant for this service (wrong audience)") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError(401, "the token comes from an issuer this service does not trust") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthError(401, "the token's signature does not verify") from exc
        except jwt.PyJWTError as exc:
            raise AuthError(401, f"the token is not valid: {exc}") from exc
        if claims.get(self.settings.auth_admin_claim) is True:
            return Principal(address=None, admin=True)
        address = claims.get(self.settings.auth_address_claim)
        if not isinstance(address, str) or not (
            StrKey.is_valid_ed25519_public_key(address) or StrKey.is_valid_contract(address)
        ):
            raise AuthError(403, f"the token's {self.settings.auth_address_claim!r} claim is not a Stellar "
                                 "address, and it carries no admin claim")
        return Principal(address=address, admin=False)


def token_of(connection: HTTPConnection) -> str | None:
    header = connection.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return connection.query_params.get("token") or connection.cookies.get(COOKIE) or None


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
