"""Operational problems: what stops a `flowfi` command before it can do its work, said in one line with
the fix (a busy port, a database that refuses the connection or lacks the schema, a missing package).
`flowfi --debug` shows the traceback instead."""

from __future__ import annotations

import errno
import socket


class Problem(Exception):
    """A problem the user can fix; the message says what is wrong and what to do, in one line."""


def ensure_port_free(host: str, port: int, change_with: str) -> None:
    """Refuse to start when something already listens on host:port; `change_with` names the flag (or
    setting) that picks another port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: TIME_WAIT is free
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise Problem(f"port {port} on {host} is already in use (another flowfi?); choose another port "
                              f"with {change_with}") from exc
            if exc.errno == errno.EACCES:
                raise Problem(f"port {port} needs privileges this user lacks; choose a port above 1023 with "
                              f"{change_with}") from exc
            raise Problem(f"cannot listen on {host}:{port} ({exc.strerror}); choose another address or port with "
                          f"{change_with}") from exc
