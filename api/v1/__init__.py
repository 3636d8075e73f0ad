"""FlowFi's backend's API under /v1, served from the index: a drop-in backend for FlowFi's web app.

Its routes, parameters, shapes, error bodies, access rules, login and SSE as the backend
(LabsCrypt/flowfi, backend/) had them, over this server's queries, hub and SSE machinery:
routes.py (the reads), login.py (challenge and verify), subscribe.py (the live stream), shapes.py (the
JSON), errors.py, openapi.py (/api-docs.json and /api-docs). The backend's writes are not served: they
are contract calls, which the wallet signs and submits.
"""

from __future__ import annotations

import re
from typing import Any

import swagger_ui_bundle
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from api.cors import Cors
from api.v1 import login, openapi, routes
from api.v1.errors import V1Error, handlers, refusal
from api.v1.subscribe import SUBSCRIBE_PATH, BackendDialect

__all__ = ["SUBSCRIBE_PATH", "BackendDialect", "application", "serves"]

# The backend's writes, and what to do instead.
WRITES = {
    "/streams": "create_stream", "/streams/{streamId}/pause": "pause_stream",
    "/streams/{streamId}/resume": "resume_stream", "/streams/{streamId}/withdraw": "withdraw",
    "/streams/{streamId}/top-up": "top_up_stream", "/streams/{streamId}/cancel": "cancel_stream",
}


def _not_served(path: str, function: str) -> Any:
    allowed = "GET" if path == "/streams" else ""  # what the path does serve

    async def refuse(request: Request) -> None:
        raise V1Error(405, "Method Not Allowed", f"this server indexes the chain and does not write to it: sign and "
                      f"submit the contract's {function} from the wallet; the indexer shows the result within a "
                      "ledger (and /v1/events/subscribe sends its event)", headers={"Allow": allowed})
    return refuse


async def _no_registration(request: Request) -> None:
    raise V1Error(405, "Method Not Allowed", "there is no registration: an address is a user once a stream names it "
                  "(see /v1/users/<address>)", headers={"Allow": ""})


async def _get_only(request: Request) -> None:
    raise V1Error(405, "Method Not Allowed", "the event stream answers GET", headers={"Allow": "GET"})


_routes: list[BaseRoute] = [
    Route("/streams", routes.list_streams, methods=["GET"]),
    Route("/streams/summary/{address}", routes.summary, methods=["GET"]),
    Route("/streams/{streamId}", routes.get_stream, methods=["GET"]),
    Route("/streams/{streamId}/events", routes.stream_events, methods=["GET"]),
    Route("/streams/{streamId}/claimable", routes.claimable, methods=["GET"]),
    *(Route(path, _not_served(path, function), methods=["POST"]) for path, function in WRITES.items()),
    Route("/users/me", routes.me, methods=["GET"]),
    Route("/users", _no_registration, methods=["POST"]),
    Route("/users/{address}/summary", routes.summary, methods=["GET"]),
    Route("/users/{publicKey}", routes.user, methods=["GET"]),
    Route("/users/{publicKey}/events", routes.user_events, methods=["GET"]),
    Route("/events", routes.events, methods=["GET"]),
    # GET is answered before the router (api.app.LiveApp); what reaches it (HEAD) is refused.
    Route("/events/subscribe", _get_only, methods=["GET"]),
    Route("/events/stats", routes.stats, methods=["GET"]),
    Route("/health", routes.health, methods=["GET"]),
    Route("/auth/challenge", login.challenge, methods=["POST"]),
    Route("/auth/verify", login.verify, methods=["POST"]),
]


def application(state: Any, cors_origins: tuple[str, ...]) -> Starlette:
    """The /v1 routes, /api-docs.json and /api-docs (and FlowFi's backend's answer to other versions), as
    an application of their own beside this API's (api.app.LiveApp sends it their paths): their own error
    bodies and access rules, none of this API's authentication middleware; `state` is the API's (pool,
    hub, authenticator, settings)."""
    middleware = [] if not cors_origins else [Middleware(
        Cors, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Last-Event-ID", "Content-Type", "X-Request-ID"], allow_credentials=True,
        refusal=lambda message: refusal(400, message)[0],
    )]
    app = Starlette(routes=[
        Mount("/v1", routes=_routes),
        Route("/api-docs.json", openapi.api_docs_json, methods=["GET"]),
        Route("/api-docs", openapi.api_docs, methods=["GET"]),
        Mount(openapi.STATIC, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path)),
        Route("/v{version:int}/{rest:path}", _unsupported_version),
        Route("/v{version:int}", _unsupported_version),  # rather than a redirect to /v1/, which is no page
    ], middleware=middleware, exception_handlers=handlers)  # type: ignore[arg-type]
    app.state = state
    return app


def serves(path: str) -> bool:
    """Whether `path` is one of this application's."""
    return path.startswith("/api-docs") or VERSIONED.match(path) is not None


VERSIONED = re.compile(r"/v[0-9]+(/|$)")


async def _unsupported_version(request: Request) -> None:
    """/vN and /vN/... for another N than 1: FlowFi's backend's answer, a 400 naming the versions it has."""
    version = request.path_params["version"]
    if version == 1:
        raise HTTPException(404)
    raise V1Error(400, "Unsupported API version", f"API version v{version} is not supported; use /v1",
                  supportedVersions=["v1"])
