"""`flowfi serve --processes N`: the API in N processes on one address.

One process writes every client's events from one core; at thousands of clients the writes to their
sockets are its limit (`python -m bench latency` measures one process against two). Here the parent
opens N listening sockets on the same address with SO_REUSEPORT, so that the kernel deals new
connections out evenly among them, and runs the API in one process per socket: each has its own event
loop, LISTEN connection, clients and connection limits. The parent keeps the sockets open, so that a
process that dies is started again on its socket while the connections that arrived meanwhile wait in
its queue, rather than being refused. SIGINT or SIGTERM stops every process as one is stopped (each
closes its streams with a retry hint first).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import secrets
import signal
import socket
import sys
import time
from multiprocessing.process import BaseProcess

from pydantic import SecretStr
from uvicorn.config import STARTUP_FAILURE

from api.app import SERVER_OPTIONS, run
from flowfi.logs import setup_logging
from flowfi.problems import Problem
from flowfi.settings import Settings

log = logging.getLogger(__name__)

RESTART_PAUSE = 1.0  # seconds before a process that died is started again, doubling while it keeps dying
MAX_RESTART_PAUSE = 30.0
HEALTHY_RUN = 60.0  # seconds a process must have run for its death to be taken as a first one
STOP_TIMEOUT = 10.0  # seconds a process has to close its streams and stop before it is killed
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` listening sockets on (host, port), sharing it by SO_REUSEPORT (port 0: one free port for all)."""
    if not sys.platform.startswith("linux"):  # SO_REUSEPORT's even dealing, and prctl(2), are Linux's
        raise Problem("several API processes on one port need Linux (its SO_REUSEPORT and prctl): run one "
                      "`flowfi serve` per port behind a load balancer instead")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    for _ in range(count):
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(SERVER_OPTIONS["backlog"])
        port = sock.getsockname()[1]
        sockets.append(sock)
    return sockets


def _serve(settings: Settings, database_url: str, sock: socket.socket, parent: int, log_level: int) -> None:
    """One API process (the target of each child)."""
    # The parent decides when to stop: until the server installs its own handlers (as it starts), a
    # Ctrl-C meant for the parent must not stop this process half started; once the server has
    # stopped and put the old handler back, it must not turn into a traceback either.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A parent killed outright (SIGKILL, the OOM killer) cannot stop its children: the kernel does,
    # with the SIGTERM asked for here. Checked after asking, in case the parent died before.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        return
    setup_logging(log_format=settings.log_format)
    logging.getLogger().setLevel(log_level)
    run(settings, database_url, sockets=[sock])


class ApiProcesses:
    """The API processes, one per socket, each started again when it dies; `stopping` (set from a signal
    handler: a plain flag, as nothing else is safe there) ends `watch`."""

    def __init__(self, settings: Settings, database_url: str, sockets: list[socket.socket],
                 log_level: int | None = None) -> None:
        self.settings = settings
        # the children log as this process does, unless told otherwise
        self.log_level = logging.getLogger().getEffectiveLevel() if log_level is None else log_level
        self.database_url = database_url
        self.sockets = sockets
        self.processes: list[BaseProcess] = []
        self.stopping = False
        # spawned, not forked: a child starts from a clean interpreter, as `flowfi serve` does
        self._context = multiprocessing.get_context("spawn")

    def _start(self, sock: socket.socket) -> BaseProcess:
        process = self._context.Process(target=_serve, name="flowfi-api", daemon=True, args=(
            self.settings, self.database_url, sock, os.getpid(), self.log_level))
        process.start()
        return process

    def start(self) -> None:
        self.processes = [self._start(sock) for sock in self.sockets]

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes if process.pid is not None]

    def watch(self) -> int:
        """Start again each process that dies, until `stopping` (0), or until one of the first processes
        could not start at all (1: every other would fail alike, and its log said why). A process that
        keeps dying is started again after pauses doubling from RESTART_PAUSE to MAX_RESTART_PAUSE."""
        count = len(self.processes)
        started = [time.monotonic()] * count
        restarts = [0] * count  # of each socket's process in a row, each lasting less than HEALTHY_RUN
        restart_at: list[float | None] = [None] * count
        replaced = [False] * count
        while not self.stopping:
            # a dead process's sentinel stays ready: only the living are waited for
            multiprocessing.connection.wait([p.sentinel for p in self.processes if p.is_alive()], timeout=0.5)
            now = time.monotonic()
            for index, process in enumerate(self.processes):
                if self.stopping or process.is_alive():
                    continue
                due = restart_at[index]
                if due is None:  # just died
                    if process.exitcode == STARTUP_FAILURE and not replaced[index]:
                        log.error("an API process could not start (see above); stopping the others")
                        return 1
                    restarts[index] = 0 if now - started[index] > HEALTHY_RUN else restarts[index] + 1
                    pause = min(RESTART_PAUSE * 2 ** max(restarts[index] - 1, 0), MAX_RESTART_PAUSE)
                    restart_at[index] = now + pause
                    log.warning("API process %d stopped (exit code %s); starting another on its socket in %.0f s",
                                process.pid, process.exitcode, pause)
                elif now >= due:
                    self.processes[index] = self._start(self.sockets[index])
                    started[index], restart_at[index], replaced[index] = now, None, True
        return 0

    def stop(self) -> None:
        """Stop every process gracefully (SIGTERM), killing what has not stopped after STOP_TIMEOUT."""
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in self.processes:
            process.join(max(deadline - time.monotonic(), 0))
            if process.is_alive():
                log.warning("API process %d did not stop within %.0f s; killed", process.pid, STOP_TIMEOUT)
                process.kill()
                process.join()
        for sock in self.sockets:
            sock.close()


def serve(settings: Settings, database_url: str, count: int) -> int:
    """Serve on settings.host:port from `count` processes until SIGINT or SIGTERM; the exit code."""
    if settings.token_signing_secret is None:  # one for every process, or each would refuse the others' tokens
        settings = settings.model_copy(update={"v1_jwt_secret": SecretStr(secrets.token_hex(32))})
        log.warning("tokens from /v1/auth/verify are signed with a secret made at start and shared by the %d "
                    "processes: they end when the server stops; set FLOWFI_V1_JWT_SECRET to keep them", count)
    sockets = listening_sockets(settings.host, settings.port, count)
    processes = ApiProcesses(settings, database_url, sockets)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: setattr(processes, "stopping", True))
    try:
        processes.start()
        log.info("serving on %s:%d from %d processes (%s)", settings.host, sockets[0].getsockname()[1], count,
                 ", ".join(map(str, processes.pids)))
        return processes.watch()
    finally:
        processes.stop()
