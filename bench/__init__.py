"""Benchmarks of the whole pipeline: ingest, SSE fan-out, live latency, replay, REST queries.

`python -m bench` runs them all and prints one table; `python -m bench ingest` runs one. Each benchmark
measures its baseline in the same run (the machine may be shared), so a ratio compares like with like.

This module holds what they share: a PostgreSQL server (the embedded one, in a temporary folder),
fresh migrated databases, the local network in its own process, and the machine's description.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import asyncpg

from indexer import embedded
from indexer.database import asyncpg_dsn, migrate

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def raise_open_files(wanted: int = 65_536) -> int:
    """Raise this process's open-file limit towards `wanted` (up to the hard limit); the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


class Postgres:
    """An embedded PostgreSQL server in a temporary folder, and fresh migrated databases on it."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="flowfi-bench-"))
        self.pgdata = self.folder / "pg"
        self.url = embedded.start(self.pgdata)
        self._template: str | None = None

    def url_of(self, database: str) -> str:
        head, _, tail = self.url.partition("?")
        base = head.rsplit("/", 1)[0]
        return f"{base}/{database}" + (f"?{tail}" if tail else "")

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(self.url))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def fresh_database(self) -> str:
        """A new, migrated, empty database (cloned from a migrated template); its URL."""
        if self._template is None:
            self._template = "bench_template"
            await self._admin(f'DROP DATABASE IF EXISTS "{self._template}"')
            await self._admin(f'CREATE DATABASE "{self._template}"')
            await asyncio.to_thread(migrate, self.url_of(self._template))
        name = f"bench_{uuid.uuid4().hex[:10]}"
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"')
        return self.url_of(name)

    async def drop(self, url: str) -> None:
        name = url.partition("?")[0].rsplit("/", 1)[1]
        await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def version(self) -> str:
        conn = await asyncpg.connect(asyncpg_dsn(self.url))
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    def close(self) -> None:
        embedded.release(self.pgdata)
        shutil.rmtree(self.folder, ignore_errors=True)


def machine(postgres_version: str) -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "postgres": postgres_version,
        "platform": platform.platform(terse=True),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


@contextlib.contextmanager
def child(module: str, *args: str, ready_timeout: float = 300.0, open_files: int | None = None,
          stderr: IO[bytes] | None = None) -> Iterator[tuple[subprocess.Popen[str], dict]]:
    """Run `python -m module args...` in its own process until the block ends. The child prints one JSON
    line when it is ready (its address and facts); that line is yielded with the process. `open_files`:
    its open-file limit (soft and hard); `stderr`: where its log goes (default: this process's)."""

    def limit() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    process = subprocess.Popen(
        [sys.executable, "-m", module, *args], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        stderr=stderr, preexec_fn=limit,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + ready_timeout
        line = process.stdout.readline()
        if not line or time.monotonic() > deadline:
            raise RuntimeError(f"{module} did not start (exit code {process.poll()})")
        yield process, json.loads(line)
    finally:
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()  # the children stop when their stdin closes
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def wait_for_stdin_close() -> None:
    """In a child process: return once the parent closes our stdin (or exits)."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


def rss_bytes(pid: int) -> int:
    """Resident memory of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]
