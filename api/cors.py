"""Which browser origins may call the API (FLOWFI_CORS_ORIGINS), and the refusal of those that may not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers
from starlette.middleware.cors import SAFELISTED_HEADERS, CORSMiddleware
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from api.filters import shown

_ALWAYS_ALLOWED = frozenset(header.lower() for header in SAFELISTED_HEADERS)


class Cors(CORSMiddleware):
    """Starlette's CORS middleware, whose refusal of a preflight says what is not allowed and where the
    allowed origins are set, as a JSON body `refusal` shapes (each API has its own error shape)."""

    def __init__(self, app: ASGIApp, /, *, refusal: Callable[[str], dict[str, Any]], **options: Any) -> None:
        super().__init__(app, **options)
        self.refusal = refusal

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        origin, method = request_headers["origin"], request_headers["access-control-request-method"]
        reasons = []
        if not self.is_allowed_origin(origin):
            reasons.append(f"its origin is not one of FLOWFI_CORS_ORIGINS ({', '.join(self.allow_origins) or 'none'})")
        if method not in self.allow_methods:
            reasons.append(f"its method {shown(method)} is not one this API takes ({', '.join(self.allow_methods)})")
        listed = request_headers.get("access-control-request-headers")
        requested = [] if listed is None else [header.strip() for header in listed.lower().split(",")]
        unknown = [header for header in requested if header not in self.allow_headers]  # "" too, as Starlette
        if unknown:
            ours = ", ".join(h for h in self.allow_headers if h not in _ALWAYS_ALLOWED)
            reasons.append(f"its header {shown(', '.join(unknown))} is not one this API takes ({ours})")
        if "access-control-request-private-network" in request_headers:
            reasons.append("it asks for private network access, which this API does not grant")
        headers = {name: value for name, value in response.headers.items()
                   if name not in ("content-length", "content-type")}
        message = f"a request from {shown(origin)} is not allowed: {'; '.join(reasons)}"
        return JSONResponse(self.refusal(message), 400, headers=headers)


def cors_headers(origin: str | None, allowed: tuple[str, ...]) -> list[tuple[bytes, bytes]]:
    """What a browser on another origin needs to read the stream (allowed origins only)."""
    if origin is None or (origin not in allowed and "*" not in allowed):
        return []
    return [(b"access-control-allow-origin", origin.encode()), (b"access-control-allow-credentials", b"true"),
            (b"vary", b"Origin")]
