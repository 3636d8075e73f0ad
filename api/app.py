"""The Starlette application: live events over SSE, REST over the indexed tables, the live page.

One process holds one asyncpg pool (queries and replays), one dedicated LISTEN connection (the
listener) and one hub (the fan-out to this process's SSE clients).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.config import STARTUP_FAILURE

from api import filters, rest, v1
from api.auth import Authenticator, AuthError, AuthMiddleware, authenticate, require_admin
from api.cors import Cors, cors_headers
from api.gate import GatedServer, TrustedProxies
from api.hub import Hub
from api.listener import Listener
from api.settings import ApiSettings
from api.sse import HEARTBEAT, SUBSCRIBE_PATH, ConnectionLimits, Subscribe

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
STARTUP_WAIT = 10.0
# Seconds between two looks for streams that are over: their clients have gone, or their time is up (see _keepalive).
OVER_CHECK = 0.5
# The live page keeps an access token: it runs only its own files, talks only to this server, and
# may not be framed by another site.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
}


async def stats(request: Request) -> JSONResponse:
    """GET /events/stats: connections, deliveries, drops, and where the indexer is."""
    require_admin(request)
    filters.reject_unknown(request.query_params, ())
    state = request.app.state
    hub: Hub = state.hub
    cursor = await state.pool.fetchrow(rest.CURSOR_HEALTH)
    return JSONResponse({
        "activeConnections": hub.connections,
        "connectionsByFilter": {kind: n for kind, n in sorted(hub.stats.connections_by_kind.items()) if n},
        "eventsDelivered": hub.stats.events_delivered,
        "eventsReplayed": hub.stats.events_replayed,
        "clientsDropped": hub.stats.clients_dropped,
        "lastPublishedEventId": hub.high_water or None,
        "lastIndexedLedger": cursor["last_ledger"],
        "lastIndexedEventId": cursor["last_event_id"],
        "latestLedger": cursor["latest_ledger"],
        "indexerLagLedgers": None if cursor["lag"] is None else max(cursor["lag"], 0),
        "indexerCursorAgeSeconds": None if cursor["age"] is None else round(cursor["age"], 3),
        "listenerConnected": state.listener.connected,
        "listenerReconnects": state.listener.reconnects,
    })


class LiveMetrics:
    """The API's Prometheus metrics, read from the hub and the listener when scraped (nothing is
    counted twice on the hot path)."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        hub: Hub = self.state.hub
        listener: Listener = self.state.listener
        connections = GaugeMetricFamily("flowfi_sse_connections", "Open SSE connections", labels=["filter"])
        for kind, count in sorted(hub.stats.connections_by_kind.items()):
            connections.add_metric([kind], count)
        yield connections
        yield CounterMetricFamily("flowfi_sse_events_delivered", "Frames of the live feed queued to SSE clients",
                                  value=hub.stats.events_delivered)
        yield CounterMetricFamily("flowfi_sse_events_replayed", "Frames sent from the table to SSE clients resuming",
                                  value=hub.stats.events_replayed)
        yield CounterMetricFamily("flowfi_sse_clients_dropped", "SSE clients dropped for reading too slowly",
                                  value=hub.stats.clients_dropped)
        yield CounterMetricFamily("flowfi_listener_reconnects", "Reconnections of the LISTEN connection",
                                  value=listener.reconnects)
        yield GaugeMetricFamily("flowfi_listener_connected", "1 while the LISTEN connection is up",
                                value=int(listener.connected))


async def metrics(request: Request) -> Response:
    """GET /metrics: Prometheus text format (query parameters ignored, as by /health and /ready)."""
    require_admin(request)
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)


def create_app(settings: ApiSettings, database_url: str) -> LiveApp:
    """The API over the database at `database_url` (a postgresql:// URL, as asyncpg takes it)."""
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.started = time.monotonic()
        if authenticator.issuing_secret_is_ephemeral:
            log.warning("tokens from /v1/auth/verify are signed with a secret made by this process: they end with it "
                        "and other processes refuse them; set FLOWFI_V1_JWT_SECRET to keep them")
        app.state.pool = await asyncpg.create_pool(database_url, min_size=1, max_size=10,
                                                   server_settings={"application_name": "flowfi-api"})
        app.state.hub = hub = Hub(settings.client_buffer)
        app.state.limits = ConnectionLimits(settings)
        app.state.listener = listener = Listener(database_url, hub)
        app.state.live = listener  # `connected` is what /ready checks
        app.state.registry = registry = CollectorRegistry()
        registry.register(LiveMetrics(app.state))
        tasks = [asyncio.create_task(listener.run(), name="listener"),
                 asyncio.create_task(_keepalive(hub, settings.heartbeat_interval), name="keepalive")]
        with contextlib.suppress(TimeoutError):
            # Serve once the live feed can take subscribers; past the wait /events/subscribe says 503.
            await asyncio.wait_for(listener.became_ready.wait(), STARTUP_WAIT)
        try:
            yield
        finally:
            hub.close_all("the server is shutting down; reconnect to resume")
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await app.state.pool.close()

    authenticator = Authenticator(settings)
    routes: list[Any] = [
        # GET is answered by LiveApp before the router; what reaches the router (HEAD) is refused.
        Route(SUBSCRIBE_PATH, _get_only, methods=["GET"]),
        Route("/events/stats", stats, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *rest.routes,
        Mount("/", Page(directory=STATIC, html=True, check_dir=False), name="page"),
    ]
    page_files = frozenset("/" + path.name for path in STATIC.iterdir()) if STATIC.is_dir() else frozenset()
    middleware = [Middleware(AuthMiddleware, authenticator=authenticator, open_paths=page_files)]
    if settings.cors_origins:
        middleware.insert(0, Middleware(
            Cors, allow_origins=list(settings.cors_origins), allow_methods=["GET"],
            allow_headers=["Authorization", "Last-Event-ID"], allow_credentials=True,
            refusal=lambda message: {"error": message},
        ))
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware,
                    exception_handlers={**rest.exception_handlers, AuthError: _auth_error})
    app.state.authenticator = authenticator
    backend = v1.application(app.state, settings.cors_origins)
    return LiveApp(app, Subscribe(), backend, Subscribe(v1.BackendDialect()), authenticator, settings)


class Page(StaticFiles):
    """The live page's files, with the headers that keep its token to itself."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response


async def _get_only(request: Request) -> Response:
    raise HTTPException(405, headers={"Allow": "GET"})


class LiveApp:
    """The Starlette app, with `GET /events/subscribe` dispatched before its middleware and router.

    An SSE connection lives for hours, and everything on its call stack lives with it: taking the
    stream past Starlette's error, exception and routing layers (it needs none of them: it answers its
    own errors) keeps each of tens of thousands of connections a few kilobytes lighter. It still goes
    through authentication, and answers CORS itself.

    Every request's client address is settled here first: behind a trusted proxy it is the address
    that proxy forwarded (X-Forwarded-For), so that the per-address caps count clients, not proxies.

    FlowFi's backend's API (api.v1: /v1/..., /api-docs) is an application beside this one, with its own
    rules; its event stream is dispatched the same way, in its own dialect."""

    def __init__(self, app: Starlette, subscribe: ASGIApp, backend: Starlette, backend_subscribe: ASGIApp,
                 authenticator: Authenticator, settings: ApiSettings) -> None:
        self.app = app
        self.subscribe = subscribe
        self.backend = backend
        self.backend_subscribe = backend_subscribe
        self.authenticator = authenticator
        self.settings = settings
        self.proxies = TrustedProxies(settings.trusted_proxies)

    @property
    def state(self) -> Any:
        return self.app.state

    @property
    def routes(self) -> list[Any]:
        return self.app.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.proxies and scope["type"] == "http" and scope.get("client"):
            self._forwarded_client(scope)
        if scope["type"] == "http" and v1.serves(scope["path"]):
            await self._backend(scope, receive, send)
            return
        if scope["type"] != "http" or scope["path"] != SUBSCRIBE_PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app
        if self.authenticator.enabled and (refusal := authenticate(self.authenticator, scope)) is not None:
            origin = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"origin"), None)
            refusal.raw_headers.extend(cors_headers(origin, self.settings.cors_origins))
            await refusal(scope, receive, send)
            return
        await self.subscribe(scope, receive, send)

    async def _backend(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FlowFi's backend's API (api.v1), its event stream dispatched as this API's is."""
        if DOUBLED_V1.match(scope["path"]):
            scope = _without_doubled_v1(scope)
        if scope["path"] == v1.SUBSCRIBE_PATH and scope["method"] == "GET":
            scope["app"] = self.backend  # its dialect authenticates by itself
            await self.backend_subscribe(scope, receive, send)
        else:
            await self.backend(scope, receive, send)

    def _forwarded_client(self, scope: Scope) -> None:
        peer = scope["client"][0]
        forwarded = [value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"]
        client = self.proxies.client_of(peer, forwarded)
        if client != peer:
            scope["client"] = (client, 0)


# FlowFi's web app, given its documented base URL (…/v1), asks for /v1/v1/...: served as /v1/...
DOUBLED_V1 = re.compile(r"/v1/v1(/|$)")


def _without_doubled_v1(scope: Scope) -> Scope:
    raw = scope.get("raw_path")
    return {**scope, "path": scope["path"][3:],
            **({"raw_path": raw[3:]} if isinstance(raw, bytes) and raw.startswith(b"/v1/v1") else {})}


async def _auth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthError)
    return JSONResponse({"error": exc.message}, exc.status)


async def _keepalive(hub: Hub, heartbeat_interval: float) -> None:
    """A heartbeat comment to every stream each `heartbeat_interval` (proxies close silent connections),
    and, every OVER_CHECK seconds, the streams that are over closed: their clients have gone, or their
    lifetime or access token has run out (a scan of flags, ~1 ms for 10,000 streams, rather than a task
    or a timer per connection)."""
    loop = asyncio.get_running_loop()
    next_heartbeat = loop.time() + heartbeat_interval
    while True:
        await asyncio.sleep(min(OVER_CHECK, max(next_heartbeat - loop.time(), 0)))
        try:
            hub.sweep_over(loop.time())
            if loop.time() >= next_heartbeat:
                hub.broadcast(HEARTBEAT)
                next_heartbeat = loop.time() + heartbeat_interval
        except Exception:  # a bug here must not end heartbeats and the sweep for the process's life
            log.exception("the sweep of finished streams or the heartbeat failed; trying again")


class Server(GatedServer):
    """uvicorn behind the API's gate (api.gate), plus: on shutdown every SSE stream is closed with a
    retry hint first, so that the server never waits on open streams."""

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        app = self.config.loaded_app
        while app is not None and not hasattr(app, "state"):
            app = getattr(app, "app", None)  # unwrap uvicorn's own middleware
        hub = getattr(getattr(app, "state", None), "hub", None)
        if hub is not None:
            hub.close_all("the server is shutting down; reconnect to resume")
        await super().shutdown(sockets)


# How the API runs under uvicorn (the Server chooses the protocol: h11, see api.gate).
SERVER_OPTIONS: dict[str, Any] = {
    "lifespan": "on", "log_config": None, "backlog": 4096, "timeout_graceful_shutdown": 5,
}


async def serve(settings: ApiSettings, database_url: str, sockets: list[socket.socket] | None = None) -> None:
    """Serve on settings.host and port, or on `sockets` already bound (several processes: flowfi.processes).
    A server that could not start (its log says why) exits with uvicorn's code for it, STARTUP_FAILURE."""
    app = create_app(settings, database_url)
    server = Server(uvicorn.Config(app, host=settings.host, port=settings.port, **SERVER_OPTIONS))
    await server.serve(sockets)
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)


def run(settings: ApiSettings, database_url: str, sockets: list[socket.socket] | None = None) -> None:
    """Serve until stopped, on uvloop where it is installed (uvicorn's own choice; `uvicorn[standard]`
    brings it on Linux and macOS), else on asyncio's loop. uvloop keeps an idle stream about 0.5 KB
    lighter and writes to sockets faster (python -m bench fanout latency)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(settings, database_url, sockets))
    else:
        uvloop.run(serve(settings, database_url, sockets))
