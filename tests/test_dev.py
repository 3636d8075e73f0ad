"""`flowfi dev` the second day: the local chain and its index are continued; a chain the database did not
index gives a new (embedded) database, said in one line; `--fresh` and `flowfi reset` start over."""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from devnet import Devnet
from flowfi.datadir import token_secret
from flowfi.dev import _other_chain
from indexer import store
from indexer.database import asyncpg_dsn, redacted
from tests.commands import FLOWFI, environment, free_port, run, start_dev

USER = "GBDK4KAKYLSGPQSZB65NBASVBK7D6X7C6XCNA3EANO3KT7ZBDLGTP72S"
MINE = {"function": "create_stream", "args": {
    "sender": USER, "recipient": "GDPMDGEVMG3NDHKMATXNBCVOOLZQEIIM2J6FSWTUXLGXWFNU5UWZDWK6",
    "token_address": "CAZO47MEY2ZRXCI3KCNJY4KT32XD7CLEPBDBWMGAIKXKJGAMSS2D6KH7", "amount": "1000000000",
    "duration": 3600}}


class Dev:
    """A running `flowfi dev`, its ports and what it printed."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.api, self.rpc = free_port(), free_port()
        self.process, self.lines = start_dev(data_dir, *args, api_port=self.api, rpc_port=self.rpc)

    def create_stream(self) -> dict[str, Any]:
        """A stream of the user's, once the API serves it."""
        deadline = time.monotonic() + 30
        # The traffic pauses the protocol now and then and lifts the pause with its next call, a ledger later.
        while (created := httpx.post(f"http://127.0.0.1:{self.rpc}/invoke", json=MINE, timeout=30)).status_code != 200:
            assert "ProtocolPaused" in created.text and time.monotonic() < deadline, created.text
            time.sleep(0.2)
        stream_id = created.json()["result"]
        deadline = time.monotonic() + 30
        while (answer := httpx.get(f"http://127.0.0.1:{self.api}/streams/{stream_id}")).status_code != 200:
            assert time.monotonic() < deadline, "the stream was not indexed"
            time.sleep(0.1)
        return dict(answer.json())

    def users_streams(self) -> list[dict[str, Any]]:
        answer = httpx.get(f"http://127.0.0.1:{self.api}/users/{USER}/streams")
        assert answer.status_code == 200, answer.text
        return list(answer.json()["items"])

    def stop(self) -> list[str]:
        self.process.send_signal(signal.SIGINT)
        out, _ = self.process.communicate(timeout=60)
        self.lines += out.splitlines()
        assert self.process.returncode == 0, "\n".join(self.lines)
        assert not any("Traceback" in line for line in self.lines), "\n".join(self.lines)
        return self.lines


def banner_command(lines: list[str], command: str) -> tuple[dict[str, str], list[str]]:
    """The variables the banner sets for `flowfi <command>` and its arguments, the command's name first."""
    line = next(line for line in lines if f"flowfi {command} " in line)
    words = shlex.split(line)
    at = words.index("flowfi")  # after the line's label, and the variables it sets
    return dict(word.split("=", 1) for word in words[:at] if "=" in word), words[at + 1:]


def count_streams(data_dir: Path) -> int:
    """The streams indexed, read with `flowfi db-url` while `flowfi dev` runs."""
    url = run("db-url", data_dir=data_dir).stdout.strip()

    async def count() -> int:
        conn = await asyncpg.connect(url)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM streams"))
        finally:
            await conn.close()

    return asyncio.run(count())


def stored(stream: dict[str, Any]) -> dict[str, Any]:
    """A stream as the index keeps it (what is claimable and locked changes with the time it is asked)."""
    changing = ("claimableNow", "lockedNow", "remainingNow", "asOf")
    return {key: value for key, value in stream.items() if not key.startswith(changing)}


def one_line(lines: list[str], words: str) -> str:
    found = [line for line in lines if words in line]
    assert len(found) == 1, "\n".join(lines)
    return found[0]


@pytest.mark.slow
def test_the_next_run_continues_the_chain_with_yesterday_s_streams(tmp_path: Path) -> None:
    first = Dev(tmp_path)
    try:
        mine = first.create_stream()
        # the banner's commands reach this run's ports and data folder, which are not the defaults, from a
        # terminal that has none of dev's settings
        elsewhere = {key: value for key, value in environment(tmp_path).items() if key != "FLOWFI_DATA_DIR"}
        variables, arguments = banner_command(first.lines, "tail")
        tail = subprocess.Popen([*FLOWFI, *arguments], env={**elsewhere, **variables},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        variables, arguments = banner_command(first.lines, "verify")
        assert variables == {"FLOWFI_DATA_DIR": str(tmp_path)}
        checked = subprocess.run([*FLOWFI, *arguments], env={**elsewhere, **variables}, capture_output=True,
                                 text=True, timeout=120)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        tail.send_signal(signal.SIGINT)
        tailed, _ = tail.communicate(timeout=30)
        assert "stream." in tailed, tailed  # events of the traffic, live
        streams = count_streams(tmp_path)
        refused = run("reset", "--yes", data_dir=tmp_path)
        assert (refused.returncode, refused.stderr.splitlines()) == (1, [
            f"`flowfi dev` is running on {tmp_path}: stop it first (Ctrl-C where it runs), then run `flowfi reset` "
            "again"])
        assert (tmp_path / "devnet").exists() and (tmp_path / "postgres").exists(), "nothing was deleted"
    finally:
        first.stop()

    second = Dev(tmp_path)
    try:
        # at once, before anything new is indexed: the index is yesterday's, and so is the chain
        again = httpx.get(f"http://127.0.0.1:{second.api}/streams/{mine['streamId']}").json()
        assert stored(again) == stored(mine)
        continued = one_line(second.lines, "continuing the local chain saved in")
        assert f"saved in {tmp_path / 'devnet'} after ledger" in continued
        assert count_streams(tmp_path) >= streams
        assert second.create_stream()["streamId"] != mine["streamId"], "the chain goes on with its own counter"
        assert len(second.users_streams()) == 2
    finally:
        lines = second.stop()
    assert not any("started a new database" in line for line in lines), "\n".join(lines)
    # /v1 login tokens are signed with the data folder's own secret: they outlive a restart
    assert not any("signed with a secret made by this process" in line for line in [*first.lines, *lines])
    assert (tmp_path / "v1-token-secret").stat().st_mode & 0o777 == 0o600


@pytest.mark.slow
def test_a_chain_the_database_did_not_index_gives_a_new_database_and_fresh_starts_over(tmp_path: Path) -> None:
    first = Dev(tmp_path)
    try:
        first.create_stream()
    finally:
        first.stop()
    subprocess.run(["rm", "-r", str(tmp_path / "devnet")], check=True)

    second = Dev(tmp_path)
    try:
        line = one_line(second.lines, "started a new database")
        assert line.endswith(f"flowfi.dev: the local chain in {tmp_path / 'devnet'} is new (no saved one was there), "
                             f"and the database in {tmp_path / 'postgres'} held the index of another chain: started a "
                             "new database there")
        assert second.users_streams() == [], "yesterday's index is gone with yesterday's chain"
        second.create_stream()
    finally:
        second.stop()

    fresh = Dev(tmp_path, "--fresh")
    try:
        line = one_line(fresh.lines, "starting over")
        assert line.endswith(f"flowfi.dev: starting over: a new local chain in {tmp_path / 'devnet'} and a new "
                             f"database in {tmp_path / 'postgres'}")
        assert fresh.users_streams() == []
    finally:
        fresh.stop()

    def reset(answer: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*FLOWFI, "reset"], env=environment(tmp_path), input=answer, capture_output=True,
                              text=True, timeout=60)

    kept = reset("\n")  # the default is no
    assert kept.returncode == 1 and kept.stdout.endswith("[y/N]: nothing deleted\n")
    assert (tmp_path / "devnet").exists() and (tmp_path / "postgres").exists()
    done = reset("y\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Delete {tmp_path / 'devnet'} and {tmp_path / 'postgres'}? [y/N]: ")
    assert done.stdout.splitlines()[-1].endswith("the next `flowfi dev` starts a new chain and a new database")
    assert not (tmp_path / "devnet").exists() and not (tmp_path / "postgres").exists()


def dev_with(database_url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`flowfi dev` on DATABASE_URL's database, which it must refuse before starting anything."""
    return subprocess.run([*FLOWFI, "dev", "--api-port", str(free_port()), "--rpc-port", str(free_port()), *args],
                          env={**environment(data_dir), "DATABASE_URL": database_url}, capture_output=True, text=True,
                          timeout=60)


def test_a_saved_chain_of_another_build_is_refused_in_one_line_naming_both_ways_out(
    tmp_path: Path, database_url: str
) -> None:
    Devnet(state=tmp_path / "devnet", build="8723543").save()
    result = dev_with(database_url, tmp_path)
    assert (result.returncode, result.stderr.splitlines()) == (1, [
        f"the local chain saved in {tmp_path / 'devnet'} was started with build '8723543', not 'c9f5d2e': continue it "
        "with `flowfi dev --build 8723543`, or start over with `flowfi dev --fresh` (a new chain and database)"])
    devnet = run("devnet", "--state", str(tmp_path / "devnet"), "--port", str(free_port()), data_dir=tmp_path)
    assert (devnet.returncode, devnet.stderr.splitlines()) == (1, [
        f"the local chain saved in {tmp_path / 'devnet'} was started with build '8723543', not 'c9f5d2e': continue it "
        f"with --build '8723543', or start a new chain with another --state (or delete {tmp_path / 'devnet'})"])


async def test_a_database_of_database_url_holding_another_chain_is_never_emptied(
    tmp_path: Path, database_url: str, db: asyncpg.Connection
) -> None:
    await store.restart_cursor(db, ("CCR2RRS64MGIDMQUAWN3JOPTLWOJVDNN7WGCHNGZCVNGYBUXRV5QHFIG",), 501)
    result = await asyncio.to_thread(dev_with, database_url, tmp_path)
    assert (result.returncode, result.stderr.splitlines()) == (1, [
        f"the local chain in {tmp_path / 'devnet'} is new (no saved one was there), and the database at "
        f"{redacted(asyncpg_dsn(database_url))} holds the index of another chain: give `flowfi dev` an empty database "
        "(DATABASE_URL), or unset DATABASE_URL for the embedded one"])
    assert await db.fetchval("SELECT last_ledger FROM indexer_cursor") == 500, "left as it was"
    fresh = await asyncio.to_thread(dev_with, database_url, tmp_path, "--fresh")
    assert fresh.returncode == 1 and "holds the index of another chain" in fresh.stderr
    assert await db.fetchval("SELECT last_ledger FROM indexer_cursor") == 500, "even with --fresh"


def test_reset_with_nothing_to_delete_says_so(tmp_path: Path) -> None:
    result = run("reset", data_dir=tmp_path)
    assert (result.returncode, result.stdout.splitlines()) == (0, [
        f"nothing to delete: {tmp_path} holds no local chain and no database"])
    assert not os.listdir(tmp_path)


def test_the_token_secret_is_made_once_and_kept_for_its_owner_only(tmp_path: Path) -> None:
    first = token_secret(tmp_path)
    assert len(bytes.fromhex(first)) == 32
    assert token_secret(tmp_path) == first
    assert (tmp_path / "v1-token-secret").stat().st_mode & 0o777 == 0o600


def test_an_index_ahead_of_the_saved_chain_is_called_what_it_is(tmp_path: Path) -> None:
    """A run killed between a ledger's close and its save leaves an index a ledger past the saved chain."""
    Devnet(state=tmp_path, traffic_per_ledger=1).save()
    saved = Devnet(state=tmp_path)
    latest = saved.chain.latest.sequence
    cursor = store.Cursor(rpc_cursor="", last_event_id=None, last_ledger=latest + 1)
    assert _other_chain(saved, tmp_path, cursor) == (
        f"the local chain saved in {tmp_path} ends at ledger {latest}, before the index (ledger {latest + 1}): "
        f"the last run was killed before it saved the ledgers after {latest}")
    assert _other_chain(saved, tmp_path, store.Cursor(rpc_cursor="", last_event_id=None, last_ledger=latest)) is None
