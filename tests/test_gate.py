"""Hostile clients against the connection gate (api.gate): unfinished requests from many sockets,
servers with few file descriptors, and the log those leave behind.

Each server runs in a process of its own with a lowered open-file limit, so that the test process is
never the one starved. Clients come from several loopback addresses (127.0.0.2, 127.0.0.3, ...): to
the server they are different addresses, as they would be on a network.
"""

from __future__ import annotations

import contextlib
import json
import re
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNFINISHED = b"GET /health HTTP/1.1\r\nHost: flowfi\r\nUser-Agent: slow"  # no end of headers, ever
LOG_BUDGET = 6000  # bytes of server log a whole attack may leave


@contextlib.contextmanager
def server_process(args: list[str], log: Path, open_files: tuple[int, int]) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m args...` with its open-file limits (soft, hard) lowered and its log in `log`."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, open_files)

    with log.open("wb") as err:
        process = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=err, preexec_fn=limit)
    try:
        yield process
    finally:
        assert process.stdin is not None
        with contextlib.suppress(OSError):
            process.stdin.close()
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


@contextlib.contextmanager
def gate_server(tmp_path: Path, settings: dict[str, Any], open_files: int = 256,
                leave: int | None = None) -> Iterator[tuple[int, Path]]:
    """tests.gate_server (the API's server around an app that answers "ok"): its port and log."""
    log = tmp_path / "gate.log"
    args = ["tests.gate_server", json.dumps(settings)] + ([] if leave is None else ["--leave", str(leave)])
    with server_process(args, log, (open_files, open_files)) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, log.read_text()
        yield int(line), log


OPENED: list[socket.socket] = []


@pytest.fixture(autouse=True)
def _close_sockets() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().close()


def connect(port: int, source: str, timeout: float = 2.0) -> socket.socket:
    sock = socket.socket()
    OPENED.append(sock)
    sock.bind((source, 0))
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    return sock


def unfinished_requests(port: int, source: str, count: int) -> list[socket.socket]:
    """`count` connections from `source`, each having sent part of a request head, and no more."""
    held = []
    for _ in range(count):
        try:
            sock = connect(port, source)
            sock.sendall(UNFINISHED)
        except OSError:
            continue
        held.append(sock)
    return held


def still_open(socks: list[socket.socket]) -> int:
    """How many of `socks` the server has not closed (nor reset)."""
    time.sleep(0.3)
    alive = 0
    for sock in socks:
        sock.setblocking(False)
        try:
            alive += sock.recv(1, socket.MSG_PEEK) != b""  # an answer, not a close
        except BlockingIOError:
            alive += 1  # nothing to read: open
        except OSError:
            pass  # reset
    return alive


def request(sock: socket.socket, path: str = "/health", close: bool = True) -> bytes:
    """One GET on `sock`; the whole response (read until the server closes, or one response)."""
    closing = "Connection: close\r\n" if close else ""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: flowfi\r\n{closing}\r\n".encode())
    received = b""
    while True:
        chunk = sock.recv(65536)
        received += chunk
        if not chunk or (not close and b"\r\n\r\n" in received and _complete(received)):
            return received


def _complete(response: bytes) -> bool:
    head, _, body = response.partition(b"\r\n\r\n")
    if length := re.search(rb"(?i)content-length: *(\d+)", head):
        return len(body) >= int(length[1])
    return body.endswith(b"0\r\n\r\n")  # chunked


def answered_within(port: int, seconds: float, source: str = "127.0.0.1", path: str = "/health") -> float:
    """Seconds a fresh connection from `source` took to get a 200; fails past `seconds`."""
    started = time.monotonic()
    with connect(port, source, timeout=seconds) as sock:
        response = request(sock, path)
    elapsed = time.monotonic() - started
    assert response.startswith(b"HTTP/1.1 200"), response[:200]
    assert elapsed < seconds
    return elapsed


def closed_within(sock: socket.socket, seconds: float) -> bytes:
    """What the server sent before closing `sock`; fails if it is still open after `seconds`."""
    sock.settimeout(seconds)
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


# --- flowfi serve itself ----------------------------------------------------------------------------


def test_one_address_holding_unfinished_requests_cannot_take_the_server_from_others(
    tmp_path: Path, database_url: str
) -> None:
    """600 unfinished requests from one address against `flowfi serve` with 512 descriptors: others are
    answered throughout, the address holds no more than its cap, and the log stays small."""
    log = tmp_path / "serve.log"
    env_free = ["flowfi", "serve", "--port", "0", "--database-url", database_url]
    with server_process(env_free, log, (256, 512)):
        port = _wait_for_port(log)
        assert "open-file limit 512" in log.read_text()  # the soft limit (256) was raised to the hard one
        hostile: list[socket.socket] = []
        slowest = 0.0
        for _ in range(6):
            hostile += unfinished_requests(port, "127.0.0.2", 100)
            slowest = max(slowest, answered_within(port, 2.0))
        held = still_open(hostile)
        slowest = max(slowest, answered_within(port, 2.0))
        time.sleep(0.5)  # the gate's report comes on its next tick
        for sock in hostile:
            sock.close()
        text = log.read_text()
    assert held == 100  # FLOWFI_MAX_SOCKETS_PER_IP's default
    assert slowest < 2.0
    assert re.search(r"\d+ over the per-address cap", text)
    assert log.stat().st_size < LOG_BUDGET, text[-2000:]
    assert "Traceback" not in text


def _wait_for_port(log: Path, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := re.search(r"running on http://127\.0\.0\.1:(\d+)", log.read_text()):
            return int(found[1])
        time.sleep(0.05)
    raise AssertionError(f"flowfi serve did not start:\n{log.read_text()[-3000:]}")


# --- the gate, around a plain app -------------------------------------------------------------------


def test_an_unfinished_request_head_is_answered_408_and_closed_after_the_deadline(tmp_path: Path) -> None:
    with gate_server(tmp_path, {"header_timeout": 1.0}) as (port, log):
        silent = connect(port, "127.0.0.1")
        partial = connect(port, "127.0.0.1")
        partial.sendall(UNFINISHED)
        kept_alive = connect(port, "127.0.0.1")
        assert request(kept_alive, close=False).startswith(b"HTTP/1.1 200")
        kept_alive.sendall(b"GET /health HTTP/1.1\r\nHost: fl")  # a second request, never finished
        trickled_body = connect(port, "127.0.0.1")
        trickled_body.sendall(b"GET /health HTTP/1.1\r\nHost: flowfi\r\nContent-Length: 1000\r\n\r\n")
        started = time.monotonic()
        for sock in (silent, partial, kept_alive):
            answer = closed_within(sock, 3.0)
            assert answer.startswith(b"HTTP/1.1 408"), answer
            assert b"took longer than 1 s" in answer
            assert b"x-content-type-options: nosniff" in answer.lower()
        assert 0.9 < time.monotonic() - started < 3.0
        trickled_body.sendall(b"x")
        time.sleep(0.2)
        trickled_body.sendall(b"x")  # a body trickling in after its response: the clock runs too
        assert b"HTTP/1.1 200" in closed_within(trickled_body, 3.0)
        # a head that arrives in pieces, but within the deadline, is served
        with connect(port, "127.0.0.1") as slow:
            for piece in (b"GET /health HTTP/1.1\r\n", b"Host: flowfi\r\n", b"Connection: close\r\n\r\n"):
                slow.sendall(piece)
                time.sleep(0.1)
            assert closed_within(slow, 3.0).startswith(b"HTTP/1.1 200")
        time.sleep(0.2)
    text = log.read_text()
    assert "too slow to send a request head" in text
    assert log.stat().st_size < LOG_BUDGET, text


TLS_HELLO = bytes.fromhex("16030100c4010000c00303") + bytes(range(32)) + b"\x00\x00\x02\x13\x01\x01\x00"


def test_malformed_requests_are_answered_400_with_the_usual_headers_and_counted_not_logged_one_by_one(
        tmp_path: Path) -> None:
    with gate_server(tmp_path, {"max_sockets_per_ip": 1000}) as (port, log):
        answers = []
        for n in range(300):
            with connect(port, "127.0.0.1") as sock:
                sock.sendall(TLS_HELLO if n % 2 else b"NOT HTTP AT ALL\r\n\r\n")
                answers.append(closed_within(sock, 2.0))
        answered_within(port, 1.0)
        time.sleep(0.3)
    for answer in answers:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400"), answer
        assert b"x-content-type-options: nosniff" in head.lower() and b"x-frame-options: deny" in head.lower()
        assert json.loads(body) == {"error": "the request is not well-formed HTTP/1.1"}
    text = log.read_text()
    assert "Invalid HTTP request" not in text
    assert re.search(r"\d+ malformed request", text), text  # at once, then the rest with the next report
    assert len(re.findall("refused or closed", text)) <= 2
    assert log.stat().st_size < LOG_BUDGET, text


def test_a_request_of_another_http_version_is_answered_505_not_served_as_http_1(tmp_path: Path) -> None:
    with gate_server(tmp_path, {}) as (port, _log):
        for request in (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n",
                        b"GET /health HTTP/3.1\r\nHost: x\r\n\r\n"):
            with connect(port, "127.0.0.1") as sock:
                sock.sendall(request)
                head, _, body = closed_within(sock, 2.0).partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 505"), (request, head)
            assert "HTTP/1.1" in json.loads(body)["error"]
        with connect(port, "127.0.0.1") as sock:
            sock.sendall(b"GET /health HTTP/1.0\r\n\r\n")
            assert closed_within(sock, 2.0).startswith(b"HTTP/1.1 200")


def test_a_request_framed_both_by_length_and_by_chunks_is_refused_and_its_connection_closed(
        tmp_path: Path) -> None:
    with gate_server(tmp_path, {}) as (port, _log), connect(port, "127.0.0.1") as sock:
        sock.sendall(b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"0\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = closed_within(sock, 2.0)
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert answer.count(b"HTTP/1.1 ") == 1, "nothing after the refusal is read as a request"


def test_a_request_body_gone_bad_after_its_response_began_ends_the_connection_without_a_second_answer(
        tmp_path: Path) -> None:
    with gate_server(tmp_path, {}) as (port, log):
        with connect(port, "127.0.0.1") as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: flowfi\r\nTransfer-Encoding: chunked\r\n\r\n")
            time.sleep(0.2)  # the application has answered
            sock.sendall(b"not a chunk size\r\n")
            received = closed_within(sock, 2.0)
        time.sleep(0.3)
    assert received.startswith(b"HTTP/1.1 200") and received.count(b"HTTP/1.1") == 1, received
    assert "Traceback" not in log.read_text()


@pytest.mark.parametrize("pieces", [1, 8], ids=["one read", "eight reads"])
def test_a_request_head_over_16_kb_is_answered_431_however_it_arrives(tmp_path: Path, pieces: int) -> None:
    def head(size: int) -> bytes:
        start = b"GET /health HTTP/1.1\r\nHost: flowfi\r\nConnection: close\r\nX-Padding: "
        return start + b"a" * (size - len(start) - 4) + b"\r\n\r\n"

    with gate_server(tmp_path, {}) as (port, log):
        answers = {}
        for size in (16 * 1024, 16 * 1024 + 1, 100_000):
            data = head(size)
            with connect(port, "127.0.0.1") as sock:
                step = -(-len(data) // pieces)
                for at in range(0, len(data), step):
                    with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                        sock.sendall(data[at:at + step])
                    time.sleep(0.02)
                answers[size] = closed_within(sock, 2.0)
        time.sleep(0.3)
    assert answers[16 * 1024].startswith(b"HTTP/1.1 200"), answers[16 * 1024][:100]
    for size in (16 * 1024 + 1, 100_000):
        assert answers[size].startswith(b"HTTP/1.1 431"), answers[size][:100]
        assert b"over 16384 bytes" in answers[size]
        assert b"x-content-type-options: nosniff" in answers[size].lower()
    assert re.search(r"\d+ request head over the size limit", log.read_text())


def test_the_head_limit_holds_for_a_request_behind_another_and_not_for_bodies(tmp_path: Path) -> None:
    padding = b"X-Padding: " + b"a" * 100_000 + b"\r\n"
    with gate_server(tmp_path, {}) as (port, _log):
        with connect(port, "127.0.0.1") as sock:  # two requests in one read, the second's head over the limit
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: flowfi\r\n\r\n"
                         b"GET /health HTTP/1.1\r\nHost: flowfi\r\n" + padding + b"\r\n")
            behind = closed_within(sock, 2.0)
        with connect(port, "127.0.0.1") as sock:  # lines ended by LF alone, as h11 allows, and a long body
            sock.sendall(b"POST /health HTTP/1.1\nHost: flowfi\nConnection: close\nContent-Length: 20000\n\n"
                         + b"x" * 20000)
            long_body = closed_within(sock, 2.0)
    first, _, second = behind.partition(b"\r\n0\r\n\r\n")  # the end of the first (chunked) response
    assert first.startswith(b"HTTP/1.1 200") and second.startswith(b"HTTP/1.1 431"), behind[:300]
    assert long_body.startswith(b"HTTP/1.1 200"), long_body[:100]


def test_at_the_connection_budget_the_longest_waiting_unfinished_request_makes_room(tmp_path: Path) -> None:
    """256 descriptors: at most 192 connections. 250 unfinished requests from ten addresses (each under
    its cap); a client that sends its request at once is still answered at once."""
    with gate_server(tmp_path, {"max_sockets_per_ip": 30, "header_timeout": 60}, open_files=256) as (port, log):
        hostile = [sock for n in range(10) for sock in unfinished_requests(port, f"127.0.0.{n + 2}", 25)]
        held = still_open(hostile)
        slowest = max(answered_within(port, 1.0) for _ in range(5))
        time.sleep(0.3)
        for sock in hostile:
            sock.close()
    assert held <= 256 - 64
    assert slowest < 1.0
    text = log.read_text()
    assert "evicted while waiting for a request head, to make room" in text
    assert log.stat().st_size < LOG_BUDGET, text


def test_out_of_descriptors_connections_are_refused_at_once_and_counted_in_one_line(tmp_path: Path) -> None:
    """Other files have taken all but a few descriptors: new connections are reset at once rather than
    left waiting, an open keep-alive connection is still served, and once descriptors come back the
    server accepts again, by itself. The log gets a line with a count, not a line per refusal."""
    with gate_server(tmp_path, {"header_timeout": 60}, open_files=128, leave=4) as (port, log):
        regular = connect(port, "127.0.0.1")
        assert request(regular, close=False).startswith(b"HTTP/1.1 200")
        hostile = [sock for n in range(4) for sock in unfinished_requests(port, f"127.0.0.{n + 2}", 100)]
        assert still_open(hostile) <= 4
        started = time.monotonic()
        with contextlib.suppress(ConnectionResetError), connect(port, "127.0.0.9") as refused:
            assert closed_within(refused, 2.0) == b""  # reset or closed unanswered, without waiting
        assert time.monotonic() - started < 1.0
        assert request(regular, close=False).startswith(b"HTTP/1.1 200")
        for sock in hostile:
            sock.close()
        time.sleep(0.3)
        answered_within(port, 1.0)  # recovered
        regular.close()
    text = log.read_text()
    assert re.search(r"\d+ out of file descriptors", text), text
    assert len(re.findall("refused or closed", text)) <= 2  # once at once, then once per interval
    assert log.stat().st_size < LOG_BUDGET, text
    assert "Traceback" not in text and "socket.accept() out of system resource" not in text


def test_using_the_last_descriptor_is_not_counted_as_a_refusal(tmp_path: Path) -> None:
    """Linux fails accept() for want of a descriptor before it looks for a waiting connection: once the last
    one is taken, the next accept fails though nobody was refused. The first refusal counted is a real one."""
    with gate_server(tmp_path, {"header_timeout": 60}, open_files=128, leave=4) as (port, log):
        held = [connect(port, f"127.0.0.{n + 1}") for n in range(4)]
        assert request(held[0], close=False).startswith(b"HTTP/1.1 200")
        time.sleep(0.3)
        with contextlib.suppress(ConnectionResetError), connect(port, "127.0.0.9") as refused:
            assert closed_within(refused, 2.0) == b""
        for sock in held:
            sock.close()
    text = log.read_text()
    assert "1 out of file descriptors" in text, text
    assert "the system refused accept" not in text, text


def test_trusted_proxies_are_exempt_from_the_per_address_cap(tmp_path: Path) -> None:
    settings = {"max_sockets_per_ip": 3, "trusted_proxies": ["127.0.0.3"], "header_timeout": 60}
    with gate_server(tmp_path, settings) as (port, _log):
        client = unfinished_requests(port, "127.0.0.2", 5)
        proxy = unfinished_requests(port, "127.0.0.3", 5)
        assert (still_open(client), still_open(proxy)) == (3, 5)
        for sock in client + proxy:
            sock.close()
