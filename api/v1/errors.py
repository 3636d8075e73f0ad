"""Errors under /v1, in FlowFi's backend's shape: `error` (its short title, e.g. "Stream not found") and
`message` (what is wrong and what to do), plus `parameter` when one parameter is at fault."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api import filters, outage
from api.auth import AuthError
from api.filters import BadRequest
from indexer.unavailable import DATABASE_UNAVAILABLE


class V1Error(Exception):
    def __init__(self, status: int, error: str, message: str, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers or {}
        self.extra = extra


def refused(exc: AuthError) -> V1Error:
    """An authentication refusal in the backend's words (401 Unauthorized, 403 Forbidden)."""
    if exc.status == 401:
        return V1Error(401, "Unauthorized", exc.message, headers={"WWW-Authenticate": "Bearer"})
    return V1Error(exc.status, "Forbidden", exc.message)


async def _v1_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, V1Error)
    return JSONResponse({"error": exc.error, "message": exc.message, **exc.extra}, exc.status, headers=exc.headers)


def refusal(status: int, message: str, parameter: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """A refusal's body in the backend's shape, and the headers it needs (a 401's WWW-Authenticate)."""
    if status == 400:
        title = "Invalid request" if parameter is None else f"Invalid {parameter} parameter"
    else:
        title = HTTPStatus(status).phrase
    body: dict[str, Any] = {"error": title, "message": message}
    if parameter is not None:
        body["parameter"] = parameter
    return body, {"WWW-Authenticate": "Bearer"} if status == 401 else {}


async def _bad_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BadRequest)
    body, headers = refusal(400, exc.message, exc.parameter)
    return JSONResponse(body, 400, headers=headers)


async def _auth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthError)
    return await _v1_error(request, refused(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    path = filters.shown(request.url.path)
    if exc.status_code == 404:
        message = f"there is no {path}; the /v1 endpoints are listed at /api-docs.json"
    elif exc.status_code == 405:
        message = f"{filters.shown(request.method)} is not allowed on {path}; see /api-docs.json"
    else:
        message = f"the request was refused ({exc.status_code})"
    return JSONResponse({"error": HTTPStatus(exc.status_code).phrase, "message": message}, exc.status_code,
                        headers=exc.headers)


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    outage.note(exc)
    return JSONResponse({"error": "Service Unavailable", "message": outage.MESSAGE}, 503, headers=outage.HEADERS)


handlers = {V1Error: _v1_error, BadRequest: _bad_request, AuthError: _auth_error, HTTPException: _http_error,
            **{error: _database_unavailable for error in DATABASE_UNAVAILABLE}}
