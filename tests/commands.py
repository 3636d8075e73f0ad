"""Running the `flowfi` command as a person does: in a process of its own, on a data folder of its own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

FLOWFI = [sys.executable, "-m", "flowfi"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(data_dir: Path) -> dict[str, str]:
    """The environment of a command run as a user runs it: no settings but the data folder, and no
    XDG_RUNTIME_DIR, as in a container (where a library that warns of it would print its warning)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("FLOWFI_") and key not in ("DATABASE_URL", "COLUMNS", "XDG_RUNTIME_DIR")}
    return {**env, "FLOWFI_DATA_DIR": str(data_dir), "COLUMNS": "200"}


def run(*args: str, data_dir: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FLOWFI, *args], env=environment(data_dir), capture_output=True, text=True,
                          timeout=timeout)


def start_dev(data_dir: Path, *args: str, api_port: int | None = None,
              rpc_port: int | None = None) -> tuple[subprocess.Popen[str], list[str]]:
    """`flowfi dev` (on free ports unless given), once its banner is out; the process and what it printed
    so far."""
    process = subprocess.Popen(
        [*FLOWFI, "dev", "--api-port", str(api_port or free_port()), "--rpc-port", str(rpc_port or free_port()),
         "--ledger-interval", "0.5", *args],
        env=environment(data_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # as in a terminal of its own
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if "Ctrl-C stops everything" in line:
            return process, lines
    process.kill()
    raise AssertionError("flowfi dev did not start:\n" + "\n".join(lines))
