"""Starting an index from the contract's storage instead of its whole history, and checking an index
against that storage.

`bootstrap`: for a database that holds nothing of these contracts yet, every stream's state and the
protocol's configuration are read from storage at one ledger and written, and the worker's cursor is put
just after that ledger: from there it indexes forward. The history before it is not in the events table
(`flowfi backfill` reads it from a data lake). Streams whose entries are archived (their TTL ran out) are
still read (RPC returns them) and are reported; ids without an entry (closed, whose storage the contract
deleted) are reported too.

`verify`: storage and the index are compared at one ledger, field by field, and the differences listed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import asyncpg

from indexer import ids, storage, store
from indexer.accrual import FINISHED
from indexer.identity import ChainWatch
from indexer.rpc import RpcClient
from indexer.state import StreamState

log = logging.getLogger(__name__)

# What verify compares of each stream, beside what is claimable at the ledger.
COMPARED = ("sender", "recipient", "token", "rate_per_second", "deposited", "withdrawn", "status", "start_time",
            "last_update_time", "paused_at", "schedule", "cliff_time", "cliff_amount", "step_times",
            "step_amounts", "allowance", "dispute")
CONFIG_COMPARED = ("admin", "treasury", "fee_rate_bps", "is_paused", "emergency_guardian")
# How many times verify reads again what the index changed after the ledger storage was read at.
REREADS = 5
# Writes of other contracts' cursor seen while this one stays that tell a verify the writer indexes those
# (a worker writes its cursor with every page, or every poll at the chain's tip).
OTHER_WRITES_SEEN = 3


class NotEmpty(Exception):
    """The database already holds these contracts' events or streams."""


class NotCaughtUp(Exception):
    """The index has not reached the ledger the chain's storage was read at."""


class RpcBehind(Exception):
    """The RPC's newest ledger is behind the index: a lagging node, or another chain."""


class NoSuchStreams(Exception):
    """Streams asked for by id are neither in the index nor in the contracts' storage: nothing to compare."""


@dataclass
class Bootstrapped:
    ledger: int
    streams: int = 0
    archived: list[int] = field(default_factory=list)
    without_entry: list[int] = field(default_factory=list)


async def bootstrap(rpc: RpcClient, conn: asyncpg.Connection, contract_ids: Sequence[str]) -> Bootstrapped:
    """Write the contracts' streams and configuration as their storage holds them at one ledger, and start
    the cursor after it."""
    async with conn.transaction():
        await store.take_writer_lock(conn, "bootstrap into a fresh database")
        held = await conn.fetchval(
            "SELECT (SELECT count(*) FROM contract_events WHERE contract_id = ANY($1::text[])) "
            "+ (SELECT count(*) FROM streams WHERE contract_id = ANY($1::text[]))", list(contract_ids))
        if held:
            raise NotEmpty("the database already indexes these contracts: bootstrap starts a fresh one "
                           "(verify compares an existing index with the chain)")
        snapshots = [await storage.consistent(rpc, contract_id) for contract_id in contract_ids]
        # the cursor is one for all the contracts: they start after the last ledger any was read at
        report = Bootstrapped(ledger=max(s.ledger for s in snapshots))
        for contract_id, snapshot in zip(contract_ids, snapshots, strict=True):
            conditional = snapshot.instance.conditional_streams if snapshot.instance else frozenset()
            states = [storage.stream_state(contract_id, stored, stored.stream_id in conditional, snapshot.ledger,
                                           snapshot.closed_at) for stored in snapshot.streams.values()]
            await store.upsert_streams(conn, states)
            await store.save_tokens(conn, await storage.token_metadata(rpc, {s.token for s in states}))
            report.streams += len(states)
            report.archived += [s.stream_id for s in snapshot.streams.values() if s.live_until_ledger == 0]
            report.without_entry += list(snapshot.missing)
            config = snapshot.instance.config if snapshot.instance else None
            if config is not None:
                await conn.execute(
                    "INSERT INTO protocol_config (contract_id, admin, treasury, fee_rate_bps, is_paused, "
                    "emergency_guardian, wasm_hash, data_version, updated_at) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    contract_id, config.admin, config.treasury, config.fee_rate_bps, config.is_paused,
                    config.emergency_guardian, snapshot.instance.wasm_hash if snapshot.instance else None,
                    snapshot.instance.contract_version if snapshot.instance else None,
                    datetime.fromtimestamp(snapshot.closed_at, UTC),
                )
        await store.restart_cursor(conn, contract_ids, report.ledger + 1)
    return report


@dataclass(frozen=True, slots=True)
class Difference:
    contract_id: str
    what: str  # "stream 12", "config"
    field: str
    indexed: object
    chain: object


async def verify(
    rpc: RpcClient,
    conn: asyncpg.Connection,
    contract_ids: Sequence[str],
    stream_ids: Iterable[int] | None = None,
    catch_up_seconds: float = 60.0,
) -> tuple[int, list[Difference]]:
    """The ledger compared at and every difference between the index and storage there. The index must
    reach that ledger (a running worker gets there within `catch_up_seconds`); a stream the index changed
    after it is read again. OtherChain or RpcBehind when the RPC cannot be compared with the index."""
    await _same_chain(rpc, conn, contract_ids)
    wanted = None if stream_ids is None else sorted(set(stream_ids))
    differences: list[Difference] = []
    ledger = 0
    found: set[int] = set()
    for contract_id in contract_ids:
        snapshot = await storage.consistent(rpc, contract_id, wanted)
        await _wait_for_index(conn, contract_ids, snapshot.ledger, catch_up_seconds)
        if wanted is None:
            keys = {(contract_id, int(r["stream_id"])) for r in await conn.fetch(
                "SELECT stream_id FROM streams WHERE contract_id = $1", contract_id)}
        else:
            keys = {(contract_id, stream_id) for stream_id in wanted}
        indexed = await store.load_streams(conn, keys)
        config = await _indexed_config(conn, contract_id)
        for reread in range(REREADS + 1):
            # What the index changed after the ledger storage was read at is compared at a newer one.
            moved = {key[1] for key, s in indexed.items() if _after(s.last_event_id, snapshot.ledger)}
            config_moved = config is not None and _after(config["last_event_id"], snapshot.ledger)
            if not moved and not config_moved:
                break
            if reread == REREADS:
                changing = [f"stream {i}" for i in sorted(moved)[:10]] + [f"{len(moved) - 10} more streams"] * (
                    len(moved) > 10) + ["the configuration"] * config_moved
                log.warning("%s of %s changed again at each of %d reads: a difference shown for %s may be a change "
                            "the chain made meanwhile; run verify again", ", ".join(changing), contract_id, REREADS,
                            "them" if len(changing) > 1 else "it")
                break
            later = await storage.consistent(rpc, contract_id, sorted(moved))
            await _wait_for_index(conn, contract_ids, later.ledger, catch_up_seconds)
            indexed.update(await store.load_streams(conn, {(contract_id, i) for i in moved}))
            config = await _indexed_config(conn, contract_id)
            streams = {i: stored for i, stored in snapshot.streams.items() if i not in moved} | later.streams
            snapshot = replace(later, streams=streams)
        ledger = max(ledger, snapshot.ledger)
        conditional = snapshot.instance.conditional_streams if snapshot.instance else frozenset()
        differences += _compare_streams(contract_id, indexed, snapshot, conditional)
        differences += _compare_config(contract_id, config, snapshot)
        found.update(stream_id for _, stream_id in indexed)
        found.update(snapshot.streams)
    if unknown := sorted(set(wanted or ()) - found):
        raise NoSuchStreams(f"no stream{'s' * (len(unknown) > 1)} {', '.join(map(str, unknown))} in the index or "
                            f"in the storage of {', '.join(contract_ids)} at ledger {ledger}: nothing to compare; "
                            "check the id")
    return ledger, differences


def _compare_streams(contract_id: str, indexed: dict[tuple[str, int], StreamState], snapshot: storage.Snapshot,
                     conditional: frozenset[int]) -> list[Difference]:
    differences = []
    for stream_id in sorted({key[1] for key in indexed} | set(snapshot.streams)):
        mine = indexed.get((contract_id, stream_id))
        stored = snapshot.streams.get(stream_id)
        what = f"stream {stream_id}"
        if stored is None:
            if mine is not None and mine.status != "closed":
                differences.append(Difference(contract_id, what, "entry", mine.status, "none (closed or never made)"))
            continue
        if mine is None:
            differences.append(Difference(contract_id, what, "row", "not indexed", stored.status))
            continue
        chain = storage.stream_state(contract_id, stored, stream_id in conditional, snapshot.ledger, snapshot.closed_at)
        for name in COMPARED:
            if name == "last_update_time" and chain.status in FINISHED:
                continue  # a finished stream's anchor means nothing (8723543's resume after cancel moves it)
            if getattr(mine, name) != getattr(chain, name):
                differences.append(Difference(contract_id, what, name, getattr(mine, name), getattr(chain, name)))
        at = snapshot.closed_at
        ours, theirs = mine.claimable(at), chain.claimable(at)
        if ours != theirs:
            differences.append(Difference(contract_id, what, f"claimable at {at}", ours, theirs))
    return differences


async def _same_chain(rpc: RpcClient, conn: asyncpg.Connection, contract_ids: Sequence[str]) -> None:
    """OtherChain when the RPC serves another chain than the one indexed, by the worker's rules (a network
    reset, or another on the same passphrase), RpcBehind when its newest ledger is behind the index: storage
    there says nothing of this index."""
    cursor = await store.load_cursor(conn, contract_ids)
    if cursor is None:
        return
    watch = ChainWatch(rpc.url)
    watch.indexed(cursor.last_ledger, cursor.anchor)
    latest = await rpc.get_latest_ledger()
    await watch.judge(latest, rpc.get_ledger)
    if latest.sequence < cursor.last_ledger:
        raise RpcBehind(f"{rpc.url}'s newest ledger, {latest.sequence}, is behind the index (ledger "
                        f"{cursor.last_ledger}): its storage cannot be compared with it. A node behind its peers: "
                        "verify again in a moment, or against another RPC server; if it stays behind, the network "
                        "was reset or this is another network on the same passphrase")


def _after(event_id: str | None, ledger: int) -> bool:
    return event_id is not None and ids.ledger_of(event_id) > ledger


async def _indexed_config(conn: asyncpg.Connection, contract_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {', '.join(CONFIG_COMPARED)}, last_event_id FROM protocol_config "
                               "WHERE contract_id = $1", contract_id)


def _compare_config(contract_id: str, row: asyncpg.Record | None, snapshot: storage.Snapshot) -> list[Difference]:
    config = snapshot.instance.config if snapshot.instance else None
    if config is None and row is None:
        return []
    if config is None or row is None:
        return [Difference(contract_id, "config", "row", "present" if row else "none", "present" if config else "none")]
    chain = {"admin": config.admin, "treasury": config.treasury, "fee_rate_bps": config.fee_rate_bps,
             "is_paused": config.is_paused, "emergency_guardian": config.emergency_guardian}
    mine = {**row, "is_paused": bool(row["is_paused"])}  # never seen paused: not paused
    return [Difference(contract_id, "config", name, mine[name], chain[name]) for name in CONFIG_COMPARED
            if mine[name] != chain[name] and not (name == "is_paused" and chain[name] is None)]


async def _wait_for_index(conn: asyncpg.Connection, contract_ids: Sequence[str], ledger: int, seconds: float) -> None:
    """Until the worker has indexed `ledger` (its cursor is at or after it); NotCaughtUp at once when no
    worker holds the writer lock, as soon as the cursor of other contracts is seen moving while this one
    does not (the one writer indexes those), or after `seconds`."""
    deadline = asyncio.get_running_loop().time() + seconds
    said = False
    seen: tuple[object, object] | None = None  # when this cursor and the others were last written
    others_moved = 0
    while True:
        row = await conn.fetchrow(
            "SELECT max(last_ledger) FILTER (WHERE contract_ids = $1) AS reached, "
            "max(updated_at) FILTER (WHERE contract_ids = $1) AS this, "
            "max(updated_at) FILTER (WHERE contract_ids <> $1) AS others FROM indexer_cursor",
            store.cursor_key(contract_ids))
        reached = row["reached"]
        if (reached or 0) >= ledger:
            return
        behind = f"the index is at ledger {reached or 'none'}, not yet at {ledger} where the chain was read"
        if await store.writer_lock_holder(conn) is None:
            raise NotCaughtUp(f"{behind}, and no worker is writing this database: run the worker (flowfi index) and "
                              "verify again")
        if seen is not None:
            others_moved = 0 if row["this"] != seen[0] else others_moved + (row["others"] != seen[1])
        seen = row["this"], row["others"]
        if others_moved == OTHER_WRITES_SEEN:
            raise NotCaughtUp(f"{behind}, and the worker writing this database indexes other contracts (their cursor "
                              f"moved {others_moved} times, this one did not): run the worker of these contracts "
                              "(flowfi index) in its place, a database has one writer, and verify again")
        if not said and seconds > 0:
            log.info("the chain was read at ledger %d and the index is at %s: waiting up to %g s for the worker to "
                     "get there", ledger, reached or "none", seconds)
            said = True
        if asyncio.get_running_loop().time() > deadline:
            raise NotCaughtUp(f"{behind}: run the worker (flowfi index) and verify again")
        await asyncio.sleep(0.2)
