"""Decoding the stored raw events again, after an upgrade of the indexer: nothing is refetched.

Every event the indexer ever received is kept raw in contract_events (its topic and value XDR), typed
or not. When a newer indexer knows more (an event kind it dead-lettered before, a field rule, a state
rule), `redecode` decodes the raw events again from a ledger on, in one transaction:
1. each event is decoded again: its typed row and dead letter are replaced by what decoding says now;
2. every stream with an event among them is rebuilt from all of its events, from its creation, with
   the schedule facts its row kept from the contract's storage (stored_schedule_of); given an RPC
   server, the streams whose schedule storage could not give (terms_source 'unavailable': an entry in a
   layout the indexer did not know, or gone when read) are read from storage again first: what storage
   says of a schedule is fixed at creation, so it is still right while the stream exists;
3. a contract with a protocol event among them has its protocol_config and contract_upgrades rebuilt
   from all of its protocol events (what bootstrap read from storage and no event set stays).
Running it twice changes nothing the second time. It takes the database's writer lock: it does not
run beside a worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from indexer import ids, state, storage, store
from indexer.decode import Decoded, decode
from indexer.events import ChainEvent, ProtocolEvent
from indexer.rpc import RawEvent, RpcClient
from indexer.state import UNAVAILABLE, StoredSchedule, StreamKey, stored_schedule_of

RAW_COLUMNS = "c.id, c.ledger, c.ledger_closed_at, c.tx_hash, c.contract_id, c.topic_xdr, c.value_xdr"
RAW_QUERY = (f"SELECT {RAW_COLUMNS} FROM contract_events AS c "
             "WHERE c.contract_id = ANY($1::text[]) AND c.id >= $2 ORDER BY c.id")
# The raw events of some streams (as typed before) that lie before a point.
EARLIER_OF_STREAMS = (
    f"SELECT {RAW_COLUMNS} FROM contract_events AS c JOIN events AS e USING (id) "
    "WHERE (e.contract_id, e.stream_id) IN (SELECT * FROM unnest($1::text[], $2::numeric[])) AND c.id < $3 "
    "ORDER BY c.id"
)


@dataclass
class Redecoded:
    events: int = 0
    typed_before: int = 0
    typed_now: int = 0
    streams_rebuilt: int = 0
    contracts_reconfigured: list[str] = field(default_factory=list)
    schedules_read: int = 0  # of streams whose schedule storage could not give before


def _raw(row: asyncpg.Record) -> RawEvent:
    closed_at: datetime = row["ledger_closed_at"]
    return RawEvent(id=row["id"], ledger=row["ledger"], ledger_closed_at=closed_at, contract_id=row["contract_id"],
                    tx_hash=row["tx_hash"], topic=tuple(row["topic_xdr"]), value=row["value_xdr"])


async def redecode(conn: asyncpg.Connection, contract_ids: Sequence[str], from_ledger: int = 0,
                   rpc: RpcClient | None = None) -> Redecoded:
    """Decode again the stored events of `contract_ids` from `from_ledger` on and rebuild what they touch;
    with `rpc`, read again from storage the schedules it could not give before."""
    result = Redecoded()
    async with conn.transaction():
        await store.take_writer_lock(conn, "redecode, then start it again")
        start = ids.before_ledger(from_ledger)
        decoded = [decode(_raw(row)) for row in await conn.fetch(RAW_QUERY, list(contract_ids), start)]
        result.events = len(decoded)
        if not decoded:
            return result
        chosen = [d.raw.id for d in decoded]
        result.typed_before = await conn.fetchval("SELECT count(*) FROM events WHERE id = ANY($1::text[])", chosen)
        typed = [d.event for d in decoded if d.event is not None]
        result.typed_now = len(typed)

        streams = {key for e in typed if (key := store.stream_key(e)) is not None}
        streams |= await _streams_of(conn, chosen)
        # Every event of the affected streams, from their creation, is folded again: their typed events
        # before from_ledger are decoded again too.
        history = [d for row in await conn.fetch(EARLIER_OF_STREAMS, [k[0] for k in streams], [k[1] for k in streams],
                                                start)
                   if (d := decode(_raw(row))).event is not None]
        earlier = [d.event for d in history if d.event is not None]
        rebuilt, parties_at, result.schedules_read = await _rebuild_streams(conn, streams, earlier + typed, rpc)
        result.streams_rebuilt = len(rebuilt)

        await conn.execute("DELETE FROM event_parties WHERE event_id = ANY($1::text[])", chosen)
        await conn.execute("DELETE FROM dead_letters WHERE event_id = ANY($1::text[])", chosen)
        await conn.execute("DELETE FROM events WHERE id = ANY($1::text[])", chosen)
        rows = store.page_rows(decoded, parties_at)
        rows.contract_events.clear()  # the raw rows stay as they are
        await store.copy_rows(conn, rows)
        await _refresh_earlier_parties(conn, history, parties_at)

        touched = sorted({e.contract_id for e in typed if isinstance(e.event, ProtocolEvent)})
        if touched:
            await _rebuild_protocol(conn, touched)
        result.contracts_reconfigured = touched
    return result


async def _streams_of(conn: asyncpg.Connection, event_ids: list[str]) -> set[StreamKey]:
    """The streams the chosen events belonged to as typed before (a kind may have become unknown)."""
    rows = await conn.fetch("SELECT DISTINCT contract_id, stream_id FROM events WHERE id = ANY($1::text[]) "
                            "AND stream_id IS NOT NULL", event_ids)
    return {(row["contract_id"], int(row["stream_id"])) for row in rows}


async def _rebuild_streams(
    conn: asyncpg.Connection, keys: set[StreamKey], chain_events: list[ChainEvent], rpc: RpcClient | None
) -> tuple[dict[StreamKey, state.StreamState], dict[str, tuple[str, str]], int]:
    """The affected streams folded again from all their events, replacing their rows; and how many of the
    schedules storage could not give before it gives now (read again through `rpc`)."""
    existing = await store.load_streams(conn, keys)
    stored = {key: schedule for key, current in existing.items()
              if (schedule := stored_schedule_of(current)) is not None}
    unavailable = sorted(key for key, current in existing.items() if current.terms_source == UNAVAILABLE)
    read_again = await _schedules(rpc, unavailable) if rpc is not None and unavailable else {}
    stored |= read_again
    streams: dict[StreamKey, state.StreamState] = {}
    chain_events.sort(key=lambda e: e.id)
    parties_at = state.fold(streams, [e for e in chain_events if store.stream_key(e) in keys], stored)
    # A stream whose creation the index has not seen has no row to rebuild (its events change no state).
    await store.upsert_streams(conn, streams.values())
    return streams, parties_at, len(read_again)


async def _schedules(rpc: RpcClient, keys: list[StreamKey]) -> dict[StreamKey, StoredSchedule]:
    """What storage says now of these streams' schedules, for those it can say it of."""
    found: dict[StreamKey, StoredSchedule] = {}
    for contract_id in sorted({contract_id for contract_id, _ in keys}):
        stream_ids = [stream_id for key_contract, stream_id in keys if key_contract == contract_id]
        schedules = await storage.schedules(rpc, contract_id, stream_ids)
        found |= {(contract_id, stream_id): schedule for stream_id, schedule in schedules.items() if schedule.found}
    return found


async def _refresh_earlier_parties(
    conn: asyncpg.Connection, history: list[Decoded], parties_at: dict[str, tuple[str, str]]
) -> None:
    """The earlier events of a rebuilt stream keep their rows, with the parties the rebuild gives them."""
    chosen = [d for d in history if d.event is not None and d.event.id in parties_at]
    if not chosen:
        return
    event_ids = [d.raw.id for d in chosen]
    await conn.execute("DELETE FROM event_parties WHERE event_id = ANY($1::text[])", event_ids)
    await conn.execute("DELETE FROM events WHERE id = ANY($1::text[])", event_ids)
    rows = store.page_rows(chosen, parties_at)
    rows.contract_events.clear()
    await store.copy_rows(conn, rows)


async def _rebuild_protocol(conn: asyncpg.Connection, contract_ids: list[str]) -> None:
    """Every column of protocol_config that a protocol event sets is set again, by the last such event; a
    column that none sets keeps its value, read from the contract's storage by `flowfi bootstrap` (the
    events since do not say it)."""
    await conn.execute("DELETE FROM contract_upgrades WHERE contract_id = ANY($1::text[])", contract_ids)
    decoded = [decode(_raw(row)) for row in await conn.fetch(RAW_QUERY, contract_ids, "")]
    await store.apply_protocol_events(conn, [d.event for d in decoded
                                             if d.event is not None and isinstance(d.event.event, ProtocolEvent)])
