"""The gate: what a TCP connection goes through before any request of it reaches the application.

Left to themselves, uvicorn and asyncio hold a connection that has sent part of a request head for
ever, accept connections until the process runs out of file descriptors, and then log a traceback
for every accept that fails, thousands a second. The API accepts its own connections instead:

- **A cap per address.** One address holds at most `max_sockets_per_ip` open connections of any
  kind (streams, REST, unfinished requests); more are reset as soon as they are accepted. Trusted
  proxies are exempt: each of their connections carries some other client.
- **A deadline for the request head.** A connection has `header_timeout` seconds, from its opening
  or from the first byte of a request after an idle keep-alive wait, to send a whole request line
  and headers; then it is answered 408 and closed. One sweep on the server's tick checks every
  deadline: no task and no timer per connection.
- **Descriptors kept in reserve.** The process accepts at most its open-file limit less a reserve
  (for the database pool, the listener and files). At that number a new connection takes the place
  of the one that has waited longest for its request head, or is reset when none is waiting.
- **Out of descriptors all the same** (other files, or the whole system), a connection waiting in
  the listen backlog is accepted with a spare descriptor and reset at once: clients are refused
  quickly instead of waiting in the backlog, what is open keeps being served, and the server
  recovers by itself when descriptors come back.

- **Malformed and oversized request heads** are answered 400, or 431 when the request line and
  headers pass the Config's `h11_max_incomplete_event_size` (16 KB), whether they come in one read or many,
  and a request of another HTTP version than 1.x (an HTTP/2 client's preface) 505. A request giving both
  Content-Length and Transfer-Encoding (how requests are smuggled past a proxy) is a malformed one.

Refusals are counted and logged as one line per interval, never one per connection; every answer
the gate gives itself is JSON, with the security headers of every other response.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import json
import logging
import os
import resource
import socket
import struct
import sys
import time
from collections import Counter, OrderedDict
from http import HTTPStatus
from typing import Any

import h11
import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.h11_impl import H11Protocol

from api.settings import ApiSettings

log = logging.getLogger(__name__)

RESERVED_DESCRIPTORS = 64  # kept free for the database pool, the LISTEN connection, files and logs
# Connections accepted per wake-up of a listening socket. Fewer than the reserve: a connection evicted
# to make room gives its descriptor back only on the loop's next turn.
ACCEPT_BATCH = 32
PAUSE_AFTER_FAILURE = 0.1  # seconds an accept loop rests when the system itself is out of resources
LOG_INTERVAL = 10.0  # seconds between the lines that count refused connections
OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
HEAD_LIMIT = 16 * 1024  # bytes of request line and headers, unless the Config says otherwise (as h11's default)
NO_LIMIT = 1 << 20  # what an unlimited hard limit is taken for (Linux's default fs.nr_open)
RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a reset, leaving no TIME_WAIT behind
# Response headers of every response (the live page adds its Content-Security-Policy).
SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
]


def raise_open_file_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = NO_LIMIT if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY:
        return NO_LIMIT
    if soft < ceiling:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class TrustedProxies:
    """The reverse proxies whose X-Forwarded-For is believed, and the client address it gives."""

    def __init__(self, networks: tuple[str, ...]) -> None:
        self.networks = [ipaddress.ip_network(entry, strict=False) for entry in networks]

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, host: str) -> bool:
        if not self.networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def client_of(self, peer: str, forwarded_for: list[str]) -> str:
        """The client's address: the peer itself, unless it is a trusted proxy; then the nearest
        address of X-Forwarded-For (read from the right) that is not a trusted proxy. An entry that
        is not an IP address ends the walk, so a forged header cannot name any client it likes."""
        if not self.trusts(peer):
            return peer
        client = peer
        for hop in reversed([part.strip() for value in forwarded_for for part in value.split(",")]):
            try:
                client = str(ipaddress.ip_address(hop))
            except ValueError:
                break
            if not self.trusts(client):
                break
        return client


class Gate:
    """The counts and deadlines of one server's connections (see the module docstring)."""

    def __init__(self, settings: ApiSettings, capacity: int) -> None:
        self.header_timeout = settings.header_timeout
        self.per_address = settings.max_sockets_per_ip
        self.proxies = TrustedProxies(settings.trusted_proxies)
        self.capacity = capacity
        self.open = 0
        self.by_address: Counter[str] = Counter()
        # Connections reading a request head, oldest first, with when they started.
        self.waiting: OrderedDict[GuardedH11Protocol, float] = OrderedDict()
        self.refused: Counter[str] = Counter()  # why -> connections refused since the last report
        self.next_report = 0.0  # the first refusal is reported at once, later ones once per interval

    # --- accepting ----------------------------------------------------------------------------------

    def admits(self, host: str) -> bool:
        """Whether a connection just accepted from `host` may stay; if so it is counted."""
        if self.by_address[host] >= self.per_address and not self.proxies.trusts(host):
            self.refused["over the per-address cap"] += 1
            return False
        if self.open >= self.capacity and not self._evict_the_longest_waiting():
            self.refused["refused at the connection budget"] += 1
            return False
        self.open += 1
        self.by_address[host] += 1
        return True

    def _evict_the_longest_waiting(self) -> bool:
        if not self.waiting:
            return False
        protocol, _since = self.waiting.popitem(last=False)
        protocol.transport.abort()
        self.refused["evicted while waiting for a request head, to make room"] += 1
        return True

    def released(self, host: str) -> None:
        self.open -= 1
        self.by_address[host] -= 1
        if self.by_address[host] <= 0:
            del self.by_address[host]

    # --- request heads ------------------------------------------------------------------------------

    def start_clock(self, protocol: GuardedH11Protocol) -> None:
        if protocol not in self.waiting:
            self.waiting[protocol] = time.monotonic()

    def stop_clock(self, protocol: GuardedH11Protocol) -> None:
        self.waiting.pop(protocol, None)

    def sweep(self) -> None:
        """Answer 408 to every connection past its deadline; report refusals, at most once per interval."""
        now = time.monotonic()
        cutoff = now - self.header_timeout
        while self.waiting:
            protocol, since = next(iter(self.waiting.items()))
            if since > cutoff:
                break
            del self.waiting[protocol]
            protocol.head_timed_out(self.header_timeout)
            self.refused["too slow to send a request head"] += 1
        if self.refused and now >= self.next_report:
            self.next_report = now + LOG_INTERVAL
            log.warning("connections refused or closed since the last report: %s; %d open",
                        "; ".join(f"{count} {why}" for why, count in self.refused.items()), self.open)
            self.refused.clear()


def refusal(status: int, message: str) -> bytes:
    """The whole response that ends a connection whose request the application never saw."""
    body = json.dumps({"error": message}).encode()
    head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", "content-type: application/json", "connection: close",
            f"content-length: {len(body)}", *(f"{name}: {value}" for name, value in SECURITY_HEADERS)]
    return "\r\n".join(head).encode() + b"\r\n\r\n" + body


# uvicorn's h11 protocol logs a warning for every malformed request it answers 400: a port scanner or a
# TLS client on the HTTP port would write a line per connection. The gate counts them instead.
PROTOCOL_LOG = logging.getLogger("uvicorn.error.requests")
PROTOCOL_LOG.setLevel(logging.INFO)
PROTOCOL_LOG.addFilter(lambda record: record.msg != "Invalid HTTP request received.")


class HeadLimitedConnection(h11.Connection):
    """h11's server side, with its limit on a request head applied to every head: h11 applies it only to
    a head still incomplete, so a longer one arriving whole (or behind another request) would pass.
    `refusal` is the status its last refusal calls for."""

    def __init__(self, head_limit: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=head_limit)
        self.head_limit = head_limit
        self.refusal = 400

    def next_event(self) -> Any:
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as exc:
            self.refusal = exc.error_status_hint
            raise
        if type(event) is h11.Request and (refused := _refusal_of(event, self.head_limit)) is not None:
            self.refusal, reason = refused
            raise h11.RemoteProtocolError(reason, error_status_hint=self.refusal)
        return event


def _refusal_of(request: h11.Request, head_limit: int) -> tuple[int, str] | None:
    """The status and reason a request h11 has read is refused with, or None."""
    if _head_size(request) > head_limit:
        return 431, "request head too large"
    if request.http_version not in (b"1.0", b"1.1"):  # h11 reads any HTTP/x.y
        return 505, "HTTP version not supported"
    if {b"content-length", b"transfer-encoding"} <= {name for name, _ in request.headers}:
        # h11 frames such a body by Transfer-Encoding and keeps the connection; behind a proxy that framed
        # it by Content-Length the rest would be read as another request (RFC 9112 6.3: close it)
        return 400, "both Content-Length and Transfer-Encoding"
    return None


def _head_size(request: h11.Request) -> int:
    """The bytes of a request line and headers as sent ("GET / HTTP/1.1", CRLFs, "name: value")."""
    line = len(request.method) + len(request.target) + len(b"  HTTP/1.1\r\n")
    return line + sum(len(name) + len(value) + len(b": \r\n") for name, value in request.headers) + 2


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, reporting to the gate when a request head is awaited and when it is
    complete, and giving its address's slot back when the connection ends."""

    conn: HeadLimitedConnection

    def __init__(self, config: uvicorn.Config, server_state: Any, app_state: dict[str, Any], gate: Gate,
                 host: str) -> None:
        super().__init__(config, server_state, app_state)
        self.logger = PROTOCOL_LOG
        self.gate = gate
        self.host = host
        self.conn = HeadLimitedConnection(config.h11_max_incomplete_event_size or HEAD_LIMIT)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.gate.start_clock(self)

    def data_received(self, data: bytes) -> None:
        if self.timeout_keep_alive_task is not None:
            self.gate.start_clock(self)  # the first bytes of a new request after an idle keep-alive wait
        super().data_received(data)
        if self.cycle is not None and not self.cycle.response_complete:
            self.gate.stop_clock(self)  # the head is complete: the application has the request

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.gate.stop_clock(self)
        self.gate.released(self.host)

    def _should_upgrade(self) -> bool:
        """The API serves no WebSockets: an Upgrade header is ignored and the request answered as
        plain HTTP (the connection stays this protocol's, and counted)."""
        return False

    def send_400_response(self, msg: str) -> None:
        """A request h11 refused: malformed (400), or its head over the limit (431). uvicorn's own answer
        would be text without the security headers. Once a response has begun, none can be sent."""
        too_large = self.conn.refusal == 431
        self.gate.refused["request head over the size limit" if too_large else "malformed request"] += 1
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            self.transport.abort()
        elif too_large:
            self.refuse(431, f"the request line and headers are over {self.conn.head_limit} bytes")
        elif self.conn.refusal == 505:
            self.refuse(505, "the server speaks HTTP/1.1 (and 1.0), not the version the request names")
        else:
            self.refuse(400, "the request is not well-formed HTTP/1.1")

    def head_timed_out(self, timeout: float) -> None:
        self.refuse(408, f"the request line and headers took longer than {timeout:g} s to arrive")

    def refuse(self, status: int, message: str) -> None:
        if self.transport.is_closing():
            return
        self.transport.write(refusal(status, message))
        if self.transport.get_write_buffer_size():
            self.transport.abort()  # a client that does not read either gets no grace
        else:
            self.transport.close()


def _reset(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
    conn.close()


class Acceptor:
    """Accepts the connections of one listening socket into the gate; stands where uvicorn keeps an
    asyncio server (close, wait_closed)."""

    def __init__(self, sock: socket.socket, gate: Gate, make_protocol: Any) -> None:
        self.sock = sock
        self.gate = gate
        self.make_protocol = make_protocol
        self.loop = asyncio.get_running_loop()
        self.spare: int | None = self._open_spare()
        self.connecting: set[asyncio.Task[None]] = set()
        self.closed = False
        sock.setblocking(False)
        self.loop.add_reader(sock.fileno(), self._accept)

    @staticmethod
    def _open_spare() -> int | None:
        try:
            return os.open(os.devnull, os.O_RDONLY)
        except OSError:
            return None

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, address = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno in OUT_OF_DESCRIPTORS and self.spare is not None:
                    if self._refuse_with_the_spare():
                        continue
                    return
                if exc.errno in OUT_OF_DESCRIPTORS:
                    self.spare = self._open_spare()
                self._system_refused(exc)
                return
            host = address[0] if isinstance(address, tuple) else "local"
            if not self.gate.admits(host):
                _reset(conn)
                continue
            conn.setblocking(False)
            task = self.loop.create_task(self._connect(conn, host))
            self.connecting.add(task)
            task.add_done_callback(self.connecting.discard)

    def _refuse_with_the_spare(self) -> bool:
        """Out of descriptors: free the spare one, accept a waiting connection with it and reset it. False
        when there is none to accept: Linux fails accept() for want of a descriptor before it looks for a
        waiting connection, so the last descriptor taken makes the next accept fail with nobody refused."""
        assert self.spare is not None
        os.close(self.spare)
        self.spare = None
        try:
            conn, _address = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return False
        except ConnectionAbortedError:
            return True
        except OSError as exc:
            self._system_refused(exc)
            return False
        else:
            _reset(conn)
            self.gate.refused["out of file descriptors"] += 1
            return True
        finally:
            self.spare = self._open_spare()

    def _system_refused(self, exc: OSError) -> None:
        """The system itself failed an accept: count it, and rest before the next."""
        self.gate.refused[f"the system refused accept ({errno.errorcode.get(exc.errno or 0, exc)})"] += 1
        self._pause()

    def _pause(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.loop.call_later(PAUSE_AFTER_FAILURE, self._resume)

    def _resume(self) -> None:
        if not self.closed:
            self.loop.add_reader(self.sock.fileno(), self._accept)

    async def _connect(self, conn: socket.socket, host: str) -> None:
        made: list[GuardedH11Protocol] = []

        def protocol() -> GuardedH11Protocol:
            made.append(self.make_protocol(host))
            return made[0]

        try:
            await self.loop.connect_accepted_socket(protocol, conn)
        except BaseException:
            if not made or made[0].transport is None:  # never connected: connection_lost will not come
                self.gate.released(host)
                conn.close()
            raise

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(ValueError, OSError):
            self.loop.remove_reader(self.sock.fileno())
        if self.spare is not None:
            os.close(self.spare)
            self.spare = None
        self.sock.close()

    async def wait_closed(self) -> None:
        for task in list(self.connecting):
            task.cancel()
        await asyncio.gather(*self.connecting, return_exceptions=True)


class GatedServer(uvicorn.Server):
    """uvicorn's server with the API's own accepting (the gate) and h11 protocol, its security
    headers and no `Server` header. The gate's settings are the app's `settings` (those of
    `api.app.create_app`), else the defaults. The Config's `http`, `ws`, `proxy_headers` and
    `server_header` are the API's, whatever was asked: h11, no WebSockets, forwarded addresses
    believed only from `trusted_proxies` (the app reads them), no server banner."""

    gate: Gate

    def __init__(self, config: uvicorn.Config) -> None:
        if config.loaded:
            raise RuntimeError("give the API's server a Config that has not been loaded yet")
        settings = getattr(config.app, "settings", None)
        self.settings = settings if isinstance(settings, ApiSettings) else ApiSettings.model_validate({})
        # h11 rather than httptools: it keeps an idle SSE connection about 0.6 KB lighter (9.8 KB
        # against 10.4 KB at 10,000 connections), and live frames are written past the protocol (api.hub),
        # so its speed does not bound the fan-out; httptools' faster request parsing matters little for
        # streams that last hours.
        config.http = "h11"
        config.ws = "none"
        config.proxy_headers = False
        config.server_header = False
        config.headers = [*config.headers, *SECURITY_HEADERS]
        super().__init__(config)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(STARTUP_FAILURE)
        config = self.config
        limit = raise_open_file_limit()
        self.gate = Gate(self.settings, capacity=max(limit - RESERVED_DESCRIPTORS, 16))
        log.info("open-file limit %d: up to %d connections, %d per address", limit, self.gate.capacity,
                 self.gate.per_address)
        if sockets is None:
            try:
                sockets = [config.bind_socket()]
            except SystemExit:
                await self.lifespan.shutdown()
                raise
        for sock in sockets:
            sock.listen(config.backlog)

        def make_protocol(host: str) -> GuardedH11Protocol:
            return GuardedH11Protocol(config, self.server_state, self.lifespan.state, self.gate, host)

        self.servers = [Acceptor(sock, self.gate, make_protocol) for sock in sockets]  # type: ignore[misc]
        self.started = True

    async def on_tick(self, counter: int) -> bool:
        self.gate.sweep()
        return await super().on_tick(counter)
