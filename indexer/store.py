"""Writing one page of decoded events to PostgreSQL: all of it in one transaction, or none of it.

A page's transaction holds the raw events, the typed events and whom they concern, the dead letters,
the new state of every stream and of the protocol config the page touched, and the cursor to resume
from (and, for a page a backfill read from a data lake, the backfill's progress row); its NOTIFY (the
page's last event id) is delivered at commit. Events already stored are skipped by id, so writing a page
twice changes nothing.

Writing is two steps. `prepare_page` reads what the index holds of the page (which events are stored,
the state of the streams it names), folds the state forward in Python (`indexer.state.fold`) and
renders every row as COPY text (see copy_text.py); `commit_page` sends them, a handful of round trips
whatever the page's size. `write_page` does both in one transaction. The worker prepares a page while
the one before commits, on a connection of its own: a `PreparedState` carries what the pages prepared
and not yet committed leave (each stream's state, the last event id), so that a page is prepared from
every page before it, committed or not.

A page holds whole transactions (the worker sees to it), so a creation fee and its stream arrive
together. The cursor's row also keeps the chain's anchor (a ledger the index went through, with its hash
and close time: see indexer/identity.py), replaced when a page brings a newer one.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

import asyncpg
import orjson
from sqlalchemy import ARRAY, Numeric

from indexer import ids, tables
from indexer import state as stream_state
from indexer.copy_text import NULL, boolean, integer_array, optional_text, text, text_array, timestamp
from indexer.decode import Decoded
from indexer.events import (
    EVENT_KINDS,
    AdminTransferred,
    ChainEvent,
    ContractUpgraded,
    EmergencyGuardianUpdated,
    FeeConfigUpdated,
    FlowFiEvent,
    Initialized,
    ProtocolEvent,
    ProtocolPaused,
    ProtocolPauseStatus,
    StateMigrated,
    StreamEvent,
    all_fields,
    field_types,
    party_fields,
    required_fields,
)
from indexer.rpc import EventPage, LedgerInfo
from indexer.state import StoredSchedule, StreamKey, StreamState
from indexer.storage import TokenMetadata
from indexer.tables import EVENTS_CHANNEL

TYPED_FIELDS = all_fields()
# Both event tables' rows start with the event's location, in the same order: it is encoded once.
LOCATION_COLUMNS = ("id", "ledger", "ledger_closed_at", "tx_hash", "contract_id")
RAW_COLUMNS = (*LOCATION_COLUMNS, "topic_xdr", "value_xdr", "topic", "value")
EVENT_COLUMNS = (*LOCATION_COLUMNS, "kind", *TYPED_FIELDS)
PARTY_COLUMNS = ("address", "event_id")
DEAD_LETTER_COLUMNS = ("event_id", "reason")
STREAM_COLUMNS = tuple(StreamState.__dataclass_fields__)
assert tuple(c.name for c in tables.streams.columns) == STREAM_COLUMNS
_STREAM_NUMERIC = frozenset(c.name for c in tables.streams.columns if isinstance(c.type, Numeric))
_STREAM_ARRAYS = frozenset(c.name for c in tables.streams.columns if isinstance(c.type, ARRAY))


@dataclass(frozen=True, slots=True)
class Cursor:
    rpc_cursor: str
    last_event_id: str | None
    last_ledger: int
    anchor: LedgerInfo | None = None  # a ledger the index went through; None: not recorded yet


@dataclass(frozen=True, slots=True)
class BackfillProgress:
    """What a backfill records with each page it writes: its source and range."""

    source: str
    first_ledger: int
    end_ledger: int | None


@dataclass(frozen=True, slots=True)
class PageWritten:
    new_events: int
    dead_letters: int
    last_event_id: str | None


def cursor_key(contract_ids: Sequence[str]) -> str:
    return ",".join(sorted(contract_ids))


# The advisory lock that lets one worker at a time write the database, whatever contracts it indexes: one
# writer commits its events in chain order, which the API's live feed follows (it publishes the events
# after the last one it published; an event committed after a later one would never be published).
WRITER_LOCK_KEY = int.from_bytes(hashlib.sha256(b"flowfi-writer").digest()[:8], "big", signed=True)


class WriterBusy(Exception):
    """Another session holds the writer lock: a worker is writing the database. `holder` names it."""

    def __init__(self, holder: str, then: str) -> None:
        super().__init__(f"A worker is writing this database ({holder} holds the writer lock): stop it first, "
                         f"then {then}")
        self.holder = holder


async def take_writer_lock(conn: asyncpg.Connection, then: str, for_the_session: bool = False) -> None:
    """Take the writer lock on `conn` for the transaction under way (or `for_the_session`), or WriterBusy
    naming its holder and saying to stop the worker first, `then` what to do."""
    take = "pg_try_advisory_lock" if for_the_session else "pg_try_advisory_xact_lock"
    holder = None
    for _ in range(2):  # a holder that let the lock go between the two questions leaves it free to take
        if await conn.fetchval(f"SELECT {take}($1)", WRITER_LOCK_KEY):
            return
        holder = await writer_lock_holder(conn)
        if holder is not None:
            break
    raise WriterBusy(holder or "a session that held it only a moment", then)


async def writer_lock_holder(conn: asyncpg.Connection) -> str | None:
    """Which session holds the writer lock ("PostgreSQL session N (application, role R, from ADDRESS)"), or
    None when none does. Any role may take an advisory lock: this tells a worker from, say, a reader's
    session. N is the server's process for the session, not the client's: pg_terminate_backend(N) ends it."""
    row = await conn.fetchrow(
        "SELECT l.pid, a.application_name, a.usename, CASE WHEN a.client_addr IS NOT NULL THEN host(a.client_addr) "
        "WHEN a.client_port = -1 THEN 'the local socket' ELSE 'an address this role may not see' END AS client "
        "FROM pg_locks AS l LEFT JOIN pg_stat_activity AS a USING (pid) "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND (l.classid::bigint << 32 | l.objid::bigint) = $1",
        WRITER_LOCK_KEY,
    )
    if row is None:
        return None
    application = row["application_name"] or "no application name"
    return f"PostgreSQL session {row['pid']} ({application}, role {row['usename']}, from {row['client']})"


async def load_upgrades(conn: asyncpg.Connection) -> dict[str, list[str]]:
    """The event ids of each contract's code upgrades."""
    rows = await conn.fetch("SELECT contract_id, event_id FROM contract_upgrades WHERE kind = 'code' ORDER BY event_id")
    upgrades: dict[str, list[str]] = {}
    for row in rows:
        upgrades.setdefault(row["contract_id"], []).append(row["event_id"])
    return upgrades


async def load_cursor(conn: asyncpg.Connection, contract_ids: Sequence[str]) -> Cursor | None:
    """Where to resume, or None to start afresh (no row yet, or one with no cursor)."""
    row = await conn.fetchrow(
        "SELECT rpc_cursor, last_event_id, last_ledger, anchor_ledger, anchor_hash, anchor_closed_at "
        "FROM indexer_cursor WHERE contract_ids = $1",
        cursor_key(contract_ids),
    )
    if row is None or not row["rpc_cursor"]:
        return None
    anchor = None
    if row["anchor_ledger"] is not None:
        anchor = LedgerInfo(row["anchor_ledger"], row["anchor_hash"], int(row["anchor_closed_at"].timestamp()))
    return Cursor(row["rpc_cursor"], row["last_event_id"], row["last_ledger"], anchor)


async def index_began(conn: asyncpg.Connection, contract_ids: Sequence[str]) -> int | None:
    """Where these contracts' index is known to begin: the ledger the first backfill began at, else that of
    the first event stored; None for an empty index."""
    value = await conn.fetchval(
        "SELECT coalesce((SELECT first_ledger FROM backfill_progress WHERE contract_ids = $1), "
        "(SELECT ledger FROM contract_events WHERE contract_id = ANY($2) ORDER BY id LIMIT 1))",
        cursor_key(contract_ids), list(contract_ids),
    )
    return None if value is None else int(value)


# Streams a PreparedState keeps beyond those of pages not yet committed (~1 KB each).
KEPT_STREAMS = 50_000


class PreparedState:
    """What the pages a writer has prepared leave, for a writer that prepares a page while the one before
    commits: each stream's state (read from the index the first time a page names it, then moved on in
    memory) and the last event id. The states of pages not yet committed are always kept; of the others,
    the `limit` most recently changed. Good while its pages are committed in order: a page PostgreSQL rolled
    back over another session's is written again as prepared; after a lost connection, the writer
    drops this with the pages it prepared and prepares them again from the index."""

    def __init__(self, limit: int = KEPT_STREAMS) -> None:
        self.limit = limit
        self.last_event_id: str | None = None
        self._streams: OrderedDict[StreamKey, tuple[int, StreamState]] = OrderedDict()  # by the page that changed it
        self._prepared = 0
        self._committed = 0

    async def streams(self, conn: asyncpg.Connection, keys: set[StreamKey]) -> dict[StreamKey, StreamState]:
        """The state of the streams named that the index holds, as the pages prepared so far leave it."""
        found = {key: kept[1] for key in keys if (kept := self._streams.get(key)) is not None}
        found |= await load_streams(conn, keys - found.keys())
        return found

    def prepared(self, streams: Mapping[StreamKey, StreamState], last_event_id: str | None) -> None:
        """Keep what a page leaves: `streams`, its streams as fold moved them on, and its last event id."""
        self._prepared += 1
        for key, stream in streams.items():
            self._streams[key] = (self._prepared, stream)
            self._streams.move_to_end(key)
        while len(self._streams) > self.limit:
            key, (page, _) = next(iter(self._streams.items()))
            if page > self._committed:
                break
            del self._streams[key]
        if last_event_id is not None and (self.last_event_id is None or last_event_id > self.last_event_id):
            self.last_event_id = last_event_id

    def committed(self) -> None:
        """The oldest page prepared and not yet committed is committed."""
        self._committed += 1


@dataclass(frozen=True, slots=True)
class PreparedPage:
    """A page ready to commit: the events not stored yet, their rows, and the state they leave."""

    fresh: list[Decoded]
    rows: PageRows
    streams: list[str]  # the changed streams' rows, as COPY text
    protocol: ProtocolChanges
    last_event_id: str | None  # the page's, stored before or not

    @property
    def dead(self) -> list[Decoded]:
        return [d for d in self.fresh if d.event is None]


async def prepare_page(
    conn: asyncpg.Connection,
    decoded: Sequence[Decoded],
    stored: Mapping[StreamKey, StoredSchedule] | None = None,
    state: PreparedState | None = None,
) -> PreparedPage:
    """Read what the index holds of a page's events and render their rows and the state they leave.
    `stored` is what the contract's storage says of the schedules its creation events do not carry;
    `state`, what the pages prepared before it leave (None: the index is all there is). Only reads: a
    failed attempt may be tried again."""
    state = state if state is not None else PreparedState()
    seen = state.last_event_id
    fresh = await _skip_stored(conn, [d for d in decoded if seen is None or d.raw.id > seen])
    typed = [d.event for d in fresh if d.event is not None]
    streams = await state.streams(conn, {key for e in typed if (key := stream_key(e)) is not None})
    last_event_id = decoded[-1].raw.id if decoded else None
    # in a thread: meanwhile the event loop sends the statements of the page being committed
    return await asyncio.to_thread(_render, fresh, typed, streams, stored, state, last_event_id)


def _render(
    fresh: list[Decoded], typed: list[ChainEvent], streams: dict[StreamKey, StreamState],
    stored: Mapping[StreamKey, StoredSchedule] | None, state: PreparedState, last_event_id: str | None,
) -> PreparedPage:
    parties_at = stream_state.fold(streams, typed, stored)
    state.prepared(streams, last_event_id)
    return PreparedPage(fresh, page_rows(fresh, parties_at), stream_rows(streams.values()), protocol_changes(typed),
                        last_event_id)


async def commit_page(
    conn: asyncpg.Connection,
    contract_ids: Sequence[str],
    page: EventPage,
    prepared: PreparedPage,
    progress: BackfillProgress | None = None,
    tokens: Mapping[str, TokenMetadata | None] | None = None,
    anchor: LedgerInfo | None = None,
) -> PageWritten:
    """Write a prepared page and move the cursor past it, in one transaction. `progress` is a backfill's
    record of how far it has read; `tokens`, the metadata of tokens the page names first; `anchor`, a
    newer anchor of the chain (without one the cursor keeps its own)."""
    fresh = prepared.fresh
    async with conn.transaction():
        await copy_rows(conn, prepared.rows)
        await write_streams(conn, prepared.streams)
        await write_protocol(conn, prepared.protocol)
        if tokens:
            await save_tokens(conn, tokens)
        await _save_cursor(conn, contract_ids, page, prepared.last_event_id, len(fresh), anchor)
        if progress is not None:
            await _save_progress(conn, contract_ids, progress, ledger_of_cursor(page), len(fresh))
        if fresh:
            await conn.execute("SELECT pg_notify($1, $2)", EVENTS_CHANNEL, fresh[-1].raw.id)
    return PageWritten(len(fresh), len(prepared.dead), fresh[-1].raw.id if fresh else None)


async def write_page(
    conn: asyncpg.Connection,
    contract_ids: Sequence[str],
    page: EventPage,
    decoded: Sequence[Decoded],
    stored: Mapping[StreamKey, StoredSchedule] | None = None,
    progress: BackfillProgress | None = None,
    tokens: Mapping[str, TokenMetadata | None] | None = None,
    anchor: LedgerInfo | None = None,
) -> PageWritten:
    """Store one page (of getEvents, or of whole ledgers from a data lake) and move the cursor past it, in
    one transaction: `prepare_page` and `commit_page` together."""
    async with conn.transaction():
        prepared = await prepare_page(conn, decoded, stored)
        return await commit_page(conn, contract_ids, page, prepared, progress, tokens, anchor)


async def save_tokens(conn: asyncpg.Connection, tokens: Mapping[str, TokenMetadata | None]) -> None:
    """A tokens row for each token, as its contract states its metadata (NULLs where it has none); a row
    already there (set by hand, or read before) is kept."""
    await conn.executemany(
        "INSERT INTO tokens (address, name, symbol, decimals, source) VALUES ($1, $2, $3, $4, 'chain') "
        "ON CONFLICT (address) DO NOTHING",
        [(address, m and m.name, m and m.symbol, m and m.decimals) for address, m in sorted(tokens.items())],
    )


async def refresh_tokens(conn: asyncpg.Connection, tokens: Mapping[str, TokenMetadata | None]) -> list[str]:
    """Write the metadata the chain states now over the rows read from it before (rows written by hand
    are kept); the addresses whose row changed."""
    wanted = sorted(tokens.items())
    rows = await conn.fetch(
        "UPDATE tokens AS t SET name = n.name, symbol = n.symbol, decimals = n.decimals, updated_at = now() "
        "FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS n(address, name, symbol, decimals) "
        "WHERE t.address = n.address AND t.source = 'chain' "
        "AND (t.name, t.symbol, t.decimals) IS DISTINCT FROM (n.name, n.symbol, n.decimals) RETURNING t.address",
        [address for address, _ in wanted], [m and m.name for _, m in wanted], [m and m.symbol for _, m in wanted],
        [m and m.decimals for _, m in wanted],
    )
    return sorted(row["address"] for row in rows)


async def load_token_addresses(conn: asyncpg.Connection) -> set[str]:
    return {row["address"] for row in await conn.fetch("SELECT address FROM tokens")}


async def _skip_stored(conn: asyncpg.Connection, decoded: Sequence[Decoded]) -> list[Decoded]:
    if not decoded:
        return []
    stored = {
        row["id"]
        for row in await conn.fetch(
            "SELECT id FROM contract_events WHERE id BETWEEN $1 AND $2",
            decoded[0].raw.id, decoded[-1].raw.id,
        )
    }
    return [d for d in decoded if d.raw.id not in stored]


@dataclass(slots=True)
class PageRows:
    """A page's rows for each event table, as COPY text lines."""

    contract_events: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    event_parties: list[str] = field(default_factory=list)
    dead_letters: list[str] = field(default_factory=list)


def page_rows(fresh: Iterable[Decoded], parties_at: Mapping[str, tuple[str, str]]) -> PageRows:
    rows = PageRows()
    for d in fresh:
        raw = d.raw
        event_id = text(raw.id)
        location = (f"{event_id}\t{raw.ledger}\t{timestamp(raw.ledger_closed_at)}\t{text(raw.tx_hash)}\t"
                    f"{text(raw.contract_id)}")
        if d.topic_json is None:  # the XDR does not parse: no JSON of either
            topic = value = NULL
        else:
            topic, value = _jsonb(d.topic_json), _jsonb(d.value_json)
        rows.contract_events.append(f"{location}\t{text_array(raw.topic)}\t{text(raw.value)}\t{topic}\t{value}\n")
        chain_event = d.event
        if chain_event is None:
            rows.dead_letters.append(f"{event_id}\t{optional_text(d.error)}\n")
            continue
        stream_parties = parties_at.get(chain_event.id)
        rows.events.append(location + _typed_fields(chain_event, stream_parties))
        rows.event_parties.extend(f"{address}\t{event_id}\n" for address in _parties(chain_event, stream_parties))
    return rows


def _jsonb(value: Any) -> str:
    """A jsonb field, or NULL where the value holds a NUL character, which jsonb cannot (the XDR beside
    it keeps the value, and the page goes in: one odd event must not stall the cursor)."""
    encoded = orjson.dumps(value)
    return NULL if b"\\u0000" in encoded else text(encoded.decode())


async def copy_rows(conn: asyncpg.Connection, rows: PageRows) -> None:
    for table, columns, lines in (
        ("contract_events", RAW_COLUMNS, rows.contract_events),
        ("events", EVENT_COLUMNS, rows.events),
        ("event_parties", PARTY_COLUMNS, rows.event_parties),
        ("dead_letters", DEAD_LETTER_COLUMNS, rows.dead_letters),
    ):
        if lines:
            # A buffer, not bytes: asyncpg would take bytes for a file's path.
            data = memoryview("".join(lines).encode())
            await conn.copy_to_table(table, source=data, columns=list(columns), format="text")


def _typed_layout(kind: type[FlowFiEvent]) -> tuple[str, Callable[[Any], tuple]]:
    """How an event of `kind` ends its events row: a format string of the kind and the typed columns,
    and a getter of its fields (as a tuple; every kind has at least two). In the format string {0} and
    {1} are a stream event's sender and recipient, {2}... the event's fields in declaration order, and
    the columns of other kinds' fields are NULL. The fields are integers and strkeys: nothing to escape;
    an optional field the event lacks is NULL."""
    names = tuple(field_types(kind))
    assert len(names) > 1
    slots = {name: f"{{{i}}}" for i, name in enumerate(names, 2)}
    if kind.is_stream_event:
        slots |= {"sender": "{0}", "recipient": "{1}"}
    template = f"\t{kind.sse_name}" + "".join(f"\t{slots.get(name, NULL)}" for name in TYPED_FIELDS) + "\n"
    getter = attrgetter(*names)
    if len(required_fields(kind)) == len(names):
        return template, getter
    return template, lambda event: tuple(NULL if value is None else value for value in getter(event))


_LAYOUTS = {kind: _typed_layout(kind) for kind in EVENT_KINDS}


def _typed_fields(chain_event: ChainEvent, stream_parties: tuple[str, str] | None) -> str:
    """The end of an event's events row. For stream events `sender` and `recipient` are the stream's
    parties at that event where the stream is known, else the event's own."""
    event = chain_event.event
    template, getter = _LAYOUTS[type(event)]
    sender = recipient = NULL
    if stream_parties is not None:
        sender, recipient = stream_parties
    elif isinstance(event, StreamEvent):
        sender, recipient = getattr(event, "sender", None) or NULL, getattr(event, "recipient", None) or NULL
    return template.format(sender, recipient, *getter(event))


_PARTY_FIELDS = {kind: party_fields(kind) for kind in EVENT_KINDS}


def _parties(chain_event: ChainEvent, stream_parties: tuple[str, str] | None) -> set[str]:
    event = chain_event.event
    found = {value for name in _PARTY_FIELDS[type(event)] if (value := getattr(event, name, None)) is not None}
    if stream_parties is not None:
        found.update(stream_parties)
    return found


def stream_key(chain_event: ChainEvent) -> StreamKey | None:
    event = chain_event.event
    return (chain_event.contract_id, event.stream_id) if isinstance(event, StreamEvent) else None


async def load_streams(conn: asyncpg.Connection, keys: set[StreamKey]) -> dict[StreamKey, StreamState]:
    if not keys:
        return {}
    rows = await conn.fetch(
        f"SELECT {', '.join(STREAM_COLUMNS)} FROM streams "
        "WHERE (contract_id, stream_id) IN (SELECT * FROM unnest($1::text[], $2::numeric[]))",
        [k[0] for k in keys], [k[1] for k in keys],
    )
    return {(row["contract_id"], int(row["stream_id"])): _stream_from_row(row) for row in rows}


def _stream_from_row(row: asyncpg.Record) -> StreamState:
    values: dict[str, Any] = {}
    for column in STREAM_COLUMNS:
        value = row[column]
        if value is not None and column in _STREAM_NUMERIC:
            value = int(value)
        elif column in _STREAM_ARRAYS:
            value = tuple(int(item) for item in value)
        values[column] = value
    return StreamState(**values)


# The page's stream states go to a temporary table by COPY, and from there into streams in one
# statement: one row per stream, for less than binding them as parameters costs.
_STAGE_STREAMS = "CREATE TEMP TABLE IF NOT EXISTS streams_page (LIKE streams) ON COMMIT DELETE ROWS"
_UPSERT_STREAMS = (
    f"INSERT INTO streams ({', '.join(STREAM_COLUMNS)}) SELECT {', '.join(STREAM_COLUMNS)} FROM streams_page "
    "ON CONFLICT (contract_id, stream_id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in STREAM_COLUMNS if c not in ("contract_id", "stream_id"))
)


def stream_rows(states: Iterable[StreamState]) -> list[str]:
    return [_stream_row(s) for s in states]


def _stream_row(s: StreamState) -> str:
    """A streams row as COPY text, its columns in STREAM_COLUMNS' order (NUMERIC and BIGINT as digits, NULL
    where a nullable one is None). Written out rather than by an encoder a column: it is rendered for every
    stream a page changes, a third of its events."""
    return (
        f"{text(s.contract_id)}\t{s.stream_id}\t{text(s.sender)}\t{text(s.recipient)}\t{text(s.token)}\t"
        f"{s.rate_per_second}\t{s.deposited}\t{s.withdrawn}\t{s.refunded}\t{s.fees_paid}\t{text(s.status)}\t"
        f"{s.start_time}\t{s.last_update_time}\t{_number(s.paused_at)}\t{_number(s.end_time)}\t{text(s.schedule)}\t"
        f"{_number(s.cliff_time)}\t{_number(s.cliff_amount)}\t{integer_array(s.step_times)}\t"
        f"{integer_array(s.step_amounts)}\t{boolean(s.conditional)}\t{boolean(s.allowance)}\t{text(s.terms_source)}\t"
        f"{optional_text(s.dispute)}\t{_number(s.bootstrap_ledger)}\t{timestamp(s.created_at)}\t"
        f"{timestamp(s.updated_at)}\t{optional_text(s.first_event_id)}\t{optional_text(s.last_event_id)}\n"
    )


def _number(value: int | None) -> object:
    return NULL if value is None else value


async def write_streams(conn: asyncpg.Connection, rows: Sequence[str]) -> None:
    """Insert or replace streams rows (COPY text, see stream_rows)."""
    if rows:
        await conn.execute(_STAGE_STREAMS)
        await conn.copy_to_table("streams_page", source=memoryview("".join(rows).encode()), format="text",
                                 columns=list(STREAM_COLUMNS))
        await conn.execute(_UPSERT_STREAMS)


async def upsert_streams(conn: asyncpg.Connection, states: Iterable[StreamState]) -> None:
    await write_streams(conn, stream_rows(states))


def _config_changes(event: FlowFiEvent) -> dict[str, object]:
    """The protocol_config columns a protocol event sets."""
    match event:
        case Initialized():
            return {"admin": event.admin, "treasury": event.treasury, "fee_rate_bps": event.fee_rate_bps}
        case FeeConfigUpdated():
            return {"treasury": event.new_treasury, "fee_rate_bps": event.new_fee_rate_bps}
        case AdminTransferred():
            return {"admin": event.new_admin}
        case ProtocolPauseStatus():
            return {"is_paused": event.paused}
        case ProtocolPaused():
            return {"is_paused": event.is_paused}
        case EmergencyGuardianUpdated():
            return {"emergency_guardian": event.guardian}
        case ContractUpgraded():
            return {"wasm_hash": event.new_wasm_hash}
        case StateMigrated():
            return {"data_version": event.new_version}
    raise TypeError(f"{type(event).__name__} does not change the protocol's configuration")


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """What a page's protocol events set in one contract's protocol_config row: the columns (the later
    event's value where two set one), and the last of those events."""

    contract_id: str
    updated_at: datetime
    last_event_id: str
    columns: dict[str, object]


@dataclass(frozen=True, slots=True)
class ProtocolChanges:
    configs: list[ConfigChange]  # one per contract
    upgrades: list[tuple[object, ...]]  # contract_upgrades rows


def protocol_changes(typed: Iterable[ChainEvent]) -> ProtocolChanges:
    """What protocol events, in order, change: each contract's protocol_config, and its code upgrades and
    data migrations (contract_upgrades)."""
    configs: dict[str, ConfigChange] = {}
    upgrades: list[tuple[object, ...]] = []
    for chain_event in typed:
        event = chain_event.event
        if not isinstance(event, ProtocolEvent):
            continue
        changes = _config_changes(event)
        before = configs.get(chain_event.contract_id)
        configs[chain_event.contract_id] = ConfigChange(
            chain_event.contract_id, chain_event.ledger_closed_at, chain_event.id,
            (before.columns if before else {}) | changes,
        )
        if isinstance(event, ContractUpgraded | StateMigrated):
            upgrades.append((chain_event.id, chain_event.contract_id, chain_event.ledger,
                             "code" if isinstance(event, ContractUpgraded) else "data",
                             changes.get("wasm_hash"), changes.get("data_version")))
    return ProtocolChanges(list(configs.values()), upgrades)


async def write_protocol(conn: asyncpg.Connection, changes: ProtocolChanges) -> None:
    for config in changes.configs:
        columns = list(config.columns)
        placeholders = ", ".join(f"${i}" for i in range(4, 4 + len(columns)))
        await conn.execute(
            f"INSERT INTO protocol_config (contract_id, updated_at, last_event_id, {', '.join(columns)}) "
            f"VALUES ($1, $2, $3, {placeholders}) ON CONFLICT (contract_id) DO UPDATE SET "
            "updated_at = EXCLUDED.updated_at, last_event_id = EXCLUDED.last_event_id, "
            + ", ".join(f"{column} = EXCLUDED.{column}" for column in columns),
            config.contract_id, config.updated_at, config.last_event_id, *config.columns.values(),
        )
    if changes.upgrades:
        await conn.executemany(
            "INSERT INTO contract_upgrades (event_id, contract_id, ledger, kind, wasm_hash, data_version) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING",
            changes.upgrades,
        )


async def apply_protocol_events(conn: asyncpg.Connection, typed: Iterable[ChainEvent]) -> None:
    """Move each contract's protocol_config on by its protocol events, in order, and record code
    upgrades and data migrations in contract_upgrades."""
    await write_protocol(conn, protocol_changes(typed))


async def _save_cursor(
    conn: asyncpg.Connection, contract_ids: Sequence[str], page: EventPage, last_event_id: str | None,
    new_events: int, anchor: LedgerInfo | None,
) -> None:
    # a data lake's page does not know the chain's newest close time (0): the one known stays
    closed_at = (datetime.fromtimestamp(page.latest_ledger_close_time, UTC)
                 if page.latest_ledger_close_time else None)
    await conn.execute(
        """
        INSERT INTO indexer_cursor (contract_ids, rpc_cursor, last_event_id, last_ledger, last_ledger_closed_at,
                                    latest_ledger, latest_ledger_closed_at, events_indexed, updated_at,
                                    anchor_ledger, anchor_hash, anchor_closed_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now(), $9, $10, $11)
        ON CONFLICT (contract_ids) DO UPDATE SET
            rpc_cursor = $2,
            last_event_id = greatest($3, indexer_cursor.last_event_id),  -- a re-read after a restart: kept
            last_ledger = $4,
            last_ledger_closed_at = greatest($5, indexer_cursor.last_ledger_closed_at),  -- NULL: kept
            latest_ledger = $6,
            latest_ledger_closed_at = coalesce($7, indexer_cursor.latest_ledger_closed_at),
            events_indexed = indexer_cursor.events_indexed + $8, updated_at = now(),
            anchor_ledger = coalesce($9, indexer_cursor.anchor_ledger),
            anchor_hash = coalesce($10, indexer_cursor.anchor_hash),
            anchor_closed_at = coalesce($11, indexer_cursor.anchor_closed_at)
        """,
        cursor_key(contract_ids), page.cursor, last_event_id, ledger_of_cursor(page), _index_time(page),
        page.latest_ledger, closed_at, new_events, *_anchor_columns(anchor),
    )


def _index_time(page: EventPage) -> datetime | None:
    """The ledger time the index is at once the page is written (what the views and claimableNow call
    now): the chain's newest close time where the page reaches the chain's newest ledger; else its last
    event's (of the cursor's ledger or before, or of the ledger after it where the page ends within it),
    the state staying as that event leaves it. None: the page knows neither (the time known stays); and
    the time never goes back, as the state does not."""
    if page.latest_ledger_close_time and ledger_of_cursor(page) >= page.latest_ledger:
        return datetime.fromtimestamp(page.latest_ledger_close_time, UTC)
    return page.events[-1].ledger_closed_at if page.events else None


def _anchor_columns(anchor: LedgerInfo | None) -> tuple[int | None, str | None, datetime | None]:
    if anchor is None:
        return None, None, None
    return anchor.sequence, anchor.hash, datetime.fromtimestamp(anchor.close_time, UTC)


async def _save_progress(
    conn: asyncpg.Connection, contract_ids: Sequence[str], progress: BackfillProgress, last_ledger: int,
    new_events: int,
) -> None:
    await conn.execute(
        """
        INSERT INTO backfill_progress (contract_ids, source, first_ledger, end_ledger, last_ledger, events_indexed)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (contract_ids) DO UPDATE SET
            source = $2, first_ledger = least(backfill_progress.first_ledger, $3), end_ledger = $4,
            last_ledger = $5, events_indexed = backfill_progress.events_indexed + $6, updated_at = now()
        """,
        cursor_key(contract_ids), progress.source, progress.first_ledger, progress.end_ledger, last_ledger,
        new_events,
    )


def ledger_of_cursor(page: EventPage) -> int:
    """The last ledger a page's cursor has fully covered."""
    return ids.last_complete_ledger(page.cursor)


async def restart_cursor(conn: asyncpg.Connection, contract_ids: Sequence[str], ledger: int) -> None:
    """Make the worker continue from `ledger`, whatever the cursor says: the ledgers between are skipped, or
    read again (their stored events kept, not counted twice). The cursor row keeps its counts and anchor."""
    await conn.execute(
        "INSERT INTO indexer_cursor (contract_ids, rpc_cursor, last_ledger, latest_ledger) VALUES ($1, $2, $3, $3) "
        "ON CONFLICT (contract_ids) DO UPDATE SET rpc_cursor = EXCLUDED.rpc_cursor, last_ledger = EXCLUDED.last_ledger",
        cursor_key(contract_ids), ids.end_of_ledger(ledger - 1), ledger - 1,
    )
