"""Docs that run: every code block of README.md and examples/*/README.md is executed here against a
real pipeline (the local network with traffic, the worker and the API, on this test's database), or,
for `tsx`, by the React example's own tests (examples/react/test/docs.test.ts).

How each kind of block runs:
- `sh`: each command in bash. `make X` is checked with `make -n X` (running `make test` from the tests
  would recurse) and `npm X` by its script in package.json; commands that serve until stopped (flowfi
  index/serve/dev, curl -N) run for a few seconds and must still be running, without a traceback. Remote
  services stand in as local ones: testnet's and mainnet's RPC are the local network, their data lakes
  the local network's lake (its ledgers from 1), db.example.com the test database, /opt a folder of the
  test's. `flowfi backfill` and `flowfi bootstrap`, which want a fresh database, get one, kept for the
  rest of their block.
- `console`: the `$ ` command runs; the output must have the documented lines and JSON keys.
- `python`: run as a program (the subscribe loop for a few seconds); it must print events and no traceback.
- `sql`: runs through psql on the indexed database, with `-v address=` a sender of its streams.
- `text`: diagrams, listings and tables; the banner is compared with what `flowfi dev` prints.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from api.app import Server, create_app
from devnet import Devnet, running_devnet
from flowfi.dev import banner
from indexer.database import asyncpg_dsn
from indexer.worker import Worker
from tests.analytics import psql
from tests.conftest import _admin, with_database
from tests.indexing import worker_settings
from tests.live import add_traffic, index_now
from tests.serving import running_app

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted(p for p in (ROOT / "examples").glob("*/README.md"))]
KINDS = {"sh", "console", "python", "sql", "text", "tsx"}
SERVES_UNTIL_STOPPED = re.compile(r"^(flowfi (index|serve|dev|devnet)\b|curl -N\b)")
FENCE = re.compile(r"^(?P<indent> *)```(?P<kind>\w*)\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    kind: str
    text: str

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line} ({self.kind})"


def blocks(path: Path) -> list[Block]:
    found, lines, i = [], path.read_text().splitlines(), 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening:
            indent, start = len(opening["indent"]), i
            i += 1
            body = []
            while not FENCE.match(lines[i]):
                body.append(lines[i][indent:])
                i += 1
            found.append(Block(path, start + 1, opening["kind"], "\n".join(body) + "\n"))
        i += 1
    return found


ALL = [block for path in DOCS for block in blocks(path)]


def test_every_block_is_of_a_kind_that_runs() -> None:
    assert ALL, "no code blocks found"
    for block in ALL:
        assert block.kind in KINDS, f"{block}: give the block one of {sorted(KINDS)}"
    # examples/react/test/docs.test.ts type-checks and renders the tsx blocks of these two files
    run_by_node = {ROOT / "README.md", ROOT / "examples/react/README.md"}
    for block in ALL:
        if block.kind == "tsx":
            assert block.path in run_by_node, f"{block}: the React example's tests do not run it"


def commands(script: str) -> list[str]:
    """The commands of a shell block: lines joined where a quote or a backslash continues them."""
    found, pending = [], ""
    for line in script.splitlines():
        pending = f"{pending}\n{line}" if pending else line
        if pending.rstrip().endswith("\\"):
            continue
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        if shlex.split(pending, comments=True):
            found.append(pending)
        pending = ""
    assert not pending, f"unterminated command: {pending}"
    return found


# What the docs name on the public networks, and what stands in for it here: (documented, local).
PUBLIC_LAKES = ("s3://aws-public-blockchain/v1.1/stellar/ledgers/pubnet", "s3://my-bucket/galexie-testnet")
MAINNET_XLM = "CAS3J7GYLGXMF6TDJBBYYSE3HQ6BBSMLNUQ34T6TZMYMW2EVH34XOWMA"
PUBLIC_LEDGERS = (("--start 58000000 --end 58000099", "--start 1"), ("--from 58000000", "--from 1"),
                  ("--from 1500000", "--from 1"))
WANTS_A_FRESH_DATABASE = re.compile(r"^flowfi (backfill|bootstrap)\b")


@dataclass
class Pipeline:
    devnet: Devnet
    api_url: str
    database_url: str
    env: dict[str, str]
    lake: Path
    server_url: str
    template_database: str

    def localize(self, text: str) -> str:
        """`text` with the documented addresses and remote services replaced by this pipeline's."""
        api = self.api_url.removeprefix("http://")
        rpc = self.devnet.url.removeprefix("http://")
        chain = self.devnet.chain
        text = (text.replace("127.0.0.1:8080", api).replace("127.0.0.1:8000", rpc)
                .replace("https://soroban-testnet.stellar.org", self.devnet.url)
                .replace("FLOWFI_RPC_URL=https://...", f"FLOWFI_RPC_URL={self.devnet.url}")
                .replace("FLOWFI_CONTRACT_IDS=C...", f"FLOWFI_CONTRACT_IDS={chain.contract_id}")
                .replace(MAINNET_XLM, chain.contract_id)
                .replace("Test SDF Network ; September 2015", chain.passphrase)
                .replace("Public Global Stellar Network ; September 2015", chain.passphrase)
                .replace("postgresql://user:password@db.example.com/flowfi", self.database_url)
                .replace("/opt/flowfi", str(self.lake.parent / "opt-flowfi")))
        for lake in PUBLIC_LAKES:
            text = text.replace(lake, str(self.lake))
        for documented, local in PUBLIC_LEDGERS:
            text = text.replace(documented, local)
        return text

    async def fresh_database(self) -> str:
        name = f"flowfi_docs_{uuid.uuid4().hex[:12]}"
        await _admin(self.server_url, f'CREATE DATABASE "{name}" TEMPLATE "{self.template_database}"')
        return with_database(self.server_url, name)


@pytest.fixture
async def pipeline(database_url: str, tmp_path: Path, server_url: str,
                   template_database: str) -> AsyncIterator[Pipeline]:
    with running_devnet(ledger_interval=0.2, traffic_per_ledger=2, seed=3, lake=tmp_path / "lake") as devnet:
        add_traffic(devnet, 200, seed=3)
        await index_now(devnet, database_url)
        settings = worker_settings(devnet, database_url, poll_interval=0.1)
        worker = Worker(settings, database_url)
        indexing = asyncio.create_task(worker.run())
        env = {key: value for key, value in os.environ.items() if not key.startswith("FLOWFI_")}
        env.update(PATH=f"{Path(sys.executable).parent}:{env['PATH']}", FLOWFI_DATA_DIR=str(tmp_path / "data"),
                   DATABASE_URL=database_url, FLOWFI_PORT=str(_free_port()), FLOWFI_START_LEDGER="1",
                   FLOWFI_METRICS_PORT="")
        try:
            with running_app(create_app(settings, database_url), server_class=Server) as api_url:
                yield Pipeline(devnet, api_url, database_url, env, tmp_path / "lake", server_url,
                               template_database)
        finally:
            worker.stop()
            await asyncio.wait_for(indexing, 15)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_shell(command: str, pipeline: Pipeline, cwd: Path) -> None:
    words = shlex.split(command, comments=True)
    if words[0] == "export":
        name, _, value = words[1].partition("=")
        pipeline.env[name] = value
        return
    if words[0] == "make":
        command = "make -n " + " ".join(words[1:])
    elif words[0] == "npm":
        scripts = json.loads((cwd / "package.json").read_text())["scripts"]
        assert words[1] == "ci" or words[1] in scripts, f"package.json has no script {words[1]!r}"
        return
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", command, cwd=cwd, env=pipeline.env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    if SERVES_UNTIL_STOPPED.match(command):
        try:
            await asyncio.wait_for(process.wait(), 2)
        except TimeoutError:
            os.killpg(process.pid, signal.SIGTERM)
        output = (await process.communicate())[0].decode()
        assert process.returncode in (0, -signal.SIGTERM), f"{command}\n{output}"
    else:
        output = (await asyncio.wait_for(process.communicate(), 120))[0].decode()
        assert process.returncode == 0, f"{command}\n{output}"
    assert "Traceback" not in output, f"{command}\n{output}"


async def run_console(block: Block, pipeline: Pipeline) -> None:
    command, *documented = block.text.splitlines()
    command = pipeline.localize(command.removeprefix("$ ")).replace("curl -N", "curl -N --max-time 3")
    # Event ids depend on the chain: resume after the event just before stream 1's creation.
    conn = await asyncpg.connect(asyncpg_dsn(pipeline.database_url))
    try:
        before = await conn.fetchval("SELECT max(id) FROM contract_events WHERE id < (SELECT min(id) FROM events "
                                     "WHERE stream_id = 1)")
    finally:
        await conn.close()
    command = re.sub(r"\d{19}-\d{10}", before, command)
    process = await asyncio.create_subprocess_exec("bash", "-c", command, stdout=asyncio.subprocess.PIPE)
    output = (await asyncio.wait_for(process.communicate(), 30))[0].decode()
    expected_keys = set(re.findall(r'"(\w+)":', "\n".join(documented)))
    got_keys = set(re.findall(r'"(\w+)":', output))
    assert expected_keys <= got_keys, f"{block}: the output lacks {expected_keys - got_keys}:\n{output[:2000]}"
    for line in documented:
        field = line.split(":", 1)[0]
        if field in ("retry", "id", "event"):
            assert re.search(rf"^{field}: ", output, re.MULTILINE), f"{block}: no '{field}:' line"
        if line.startswith("event: "):
            assert line in output.splitlines(), f"{block}: no {line!r}"


async def run_python(block: Block, pipeline: Pipeline) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", pipeline.localize(block.text), cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        await asyncio.wait_for(process.wait(), 3)
    except TimeoutError:
        process.terminate()
    out, err = await asyncio.wait_for(process.communicate(), 10)
    # stopped while printing, its output ends where its buffer was last flushed: maybe inside a line
    printed = out[: out.rfind(b"\n") + 1].decode().splitlines()
    assert printed, f"{block}: printed nothing\n{err.decode()}"
    for line in printed:
        event_id, event_type, *_ = line.split(" ")
        assert re.fullmatch(r"\d{19}-\d{10}", event_id) and "." in event_type, line
    assert not err, err.decode()


async def run_sql(block: Block, pipeline: Pipeline) -> None:
    """The block through psql, as the README runs it, with `-v address=` an address of the index."""
    conn = await asyncpg.connect(asyncpg_dsn(pipeline.database_url))
    try:
        address = await conn.fetchval("SELECT sender FROM streams ORDER BY stream_id LIMIT 1")
    finally:
        await conn.close()
    process = await asyncio.create_subprocess_exec(
        psql(), pipeline.database_url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"address={address}",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(block.text.encode()), 30)
    assert process.returncode == 0 and not err, f"{block}: {err.decode()}"
    assert out.strip(), f"{block}: psql printed nothing"


def check_text(block: Block, pipeline: Pipeline) -> None:
    if "FlowFi indexer, running locally" in block.text:
        assert block.text.strip("\n") == banner("http://127.0.0.1:8080", "http://127.0.0.1:8000").strip("\n")


@pytest.mark.slow
async def test_every_code_block_runs(pipeline: Pipeline) -> None:
    for block in ALL:
        cwd = block.path.parent
        if block.kind == "sh":
            database_url, before = pipeline.env["DATABASE_URL"], set(cwd.iterdir())
            for command in commands(block.text):
                if WANTS_A_FRESH_DATABASE.match(command) and pipeline.env["DATABASE_URL"] == database_url:
                    pipeline.env["DATABASE_URL"] = await pipeline.fresh_database()
                await run_shell(pipeline.localize(command), pipeline, cwd)
            pipeline.env["DATABASE_URL"] = database_url
            for written in set(cwd.iterdir()) - before:  # what a block writes (flowfi export's files, pip's build)
                shutil.rmtree(written) if written.is_dir() else written.unlink()
        elif block.kind == "console":
            await run_console(block, pipeline)
        elif block.kind == "python":
            await run_python(block, pipeline)
        elif block.kind == "sql":
            await run_sql(block, pipeline)
        elif block.kind == "text":
            check_text(block, pipeline)
