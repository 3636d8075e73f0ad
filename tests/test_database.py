"""The writer's connection: its Unix-domain socket gets a send buffer a page's COPY data fits in."""

from __future__ import annotations

import socket
from pathlib import Path

from indexer.database import WRITER_SEND_BUFFER, connect, widen_send_buffer, widen_socket_send_buffer

WMEM_MAX = int(Path("/proc/sys/net/core/wmem_max").read_text())


def send_buffer(sock: socket.socket) -> int:
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)


def test_a_unix_socket_s_send_buffer_is_raised_and_a_tcp_one_left_to_the_kernel() -> None:
    wanted = min(WRITER_SEND_BUFFER, WMEM_MAX)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with ours, theirs, tcp:
        before, tcp_before = send_buffer(ours), send_buffer(tcp)
        assert before < wanted, "the test needs a default smaller than what is asked"
        widen_socket_send_buffer(ours, WRITER_SEND_BUFFER)
        widen_socket_send_buffer(tcp, WRITER_SEND_BUFFER)
        assert send_buffer(ours) >= wanted  # Linux reports twice what it grants
        assert send_buffer(tcp) == tcp_before, "setting it would turn TCP's autotuning off"


async def test_the_buffer_reaches_an_asyncpg_connection_s_socket(database_url: str) -> None:
    """asyncpg keeps its transport private (`_transport`): this fails if it stops being there."""
    conn = await connect(database_url, "test-writer")
    try:
        sock = conn._transport.get_extra_info("socket")  # type: ignore[attr-defined]
        before = send_buffer(sock)
        widen_send_buffer(conn)
        if sock.family == socket.AF_UNIX:  # the embedded server
            assert send_buffer(sock) >= min(WRITER_SEND_BUFFER, WMEM_MAX)
        else:  # DATABASE_URL's server over TCP
            assert send_buffer(sock) == before
    finally:
        await conn.close()
