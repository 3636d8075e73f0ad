"""The database schema, defined once: alembic migrations are generated from these tables.

contract_events   every event of the indexed contract(s), as delivered (XDR) and decoded (JSON)
events            the typed FlowFi events; one NUMERIC/TEXT column per contract field (see events.py)
event_parties     which addresses each event concerns, for "everything about address X" in id order
streams           the current state of every stream, derived from its events (and, where the events do not
                  carry a stream's whole schedule, from the contract's storage)
protocol_config   the contract's current admin, treasury, fee rate, pause, guardian and code
contract_upgrades the contract's code changes (contract_upgraded) and data migrations (state_migrated)
dead_letters      events that could not be decoded, with the reason
indexer_cursor    where the worker resumes
backfill_progress how far `flowfi backfill` has read a data lake
tokens            each token's name, symbol and decimals, for amounts people can read

Every table and column carries its meaning as a comment (COMMENT ON, written by the migrations): the data
dictionary analysts read in the database itself and in docs/SCHEMA.md. Amounts are i128 in the token's
smallest unit (NUMERIC(39,0)); times are ledger close times.

The RPC event id ("%019d-%010d", chain order when sorted as text) is the primary key of every event
table, the page cursor of the API and the SSE id. There is no second sequence.
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeEngine

from indexer.accrual import SCHEDULES
from indexer.events import EVENT_KINDS, ScType, all_fields, field_comment

# Rung after each committed page; the payload is the page's last event id. A doorbell only: listeners
# always read the rows themselves (WHERE id > last seen), so a missed ring loses nothing.
EVENTS_CHANNEL = "flowfi_events"
# The read-only role for analysts, granted SELECT on every table and view by `flowfi migrate`.
READER_ROLE = "flowfi_reader"

I128_NUMERIC = Numeric(39, 0)
U64_NUMERIC = Numeric(20, 0)

SQL_TYPES: dict[ScType, TypeEngine] = {
    ScType.I128: I128_NUMERIC,
    ScType.U64: U64_NUMERIC,
    ScType.U32: BigInteger(),
    ScType.ADDRESS: Text(),
    ScType.OPTION_ADDRESS: Text(),
    ScType.BOOL: Boolean(),
    ScType.BYTES: Text(),  # lowercase hex
}

STREAM_STATUSES = ("active", "paused", "cancelled", "completed", "closed")

# The units every amount and time column shares, for the comments.
AMOUNT = "i128, in the token's smallest unit"
TIME = "u64, unix seconds, ledger time"
# Where a stream's schedule came from: its events, the contract's storage, or neither yet.
TERMS_SOURCES = ("events", "storage", "unavailable")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


def _event_location() -> list[Column]:
    return [
        Column("ledger", BigInteger, nullable=False, comment="the ledger (sequence number) holding the event"),
        Column("ledger_closed_at", DateTime(timezone=True), nullable=False, comment="the ledger's close time"),
        Column("tx_hash", Text, nullable=False, comment="the transaction that published the event (hex)"),
        Column("contract_id", Text, nullable=False, comment="the contract that published it (C... strkey)"),
    ]


def _event_field_column(name: str, sc_type: ScType) -> Column:
    comment = field_comment(name)
    if name in ("sender", "recipient"):
        which = " (in stream.recipient_transferred the new one)" if name == "recipient" else ""
        comment = (f"For stream events the stream's {name} at that event, whichever kind{which}; NULL for protocol "
                   f"events. Where the stream has no row in streams (created before the indexed history began), "
                   f"the event's own field: {comment}")
    return Column(name, SQL_TYPES[sc_type], comment=comment)


def _ledger_order_index(column: str) -> Index:
    """An index of a column that grows with the event id (a ledger, its close time): BRIN, which keeps
    each block range's least and greatest value. Rows arrive in id order, so a range of ledgers or
    times is a few block ranges, for a few bytes per range and next to nothing per insert, where a
    B-tree would add an entry per event to every page's write."""
    return Index(None, column, postgresql_using="brin", postgresql_with={"pages_per_range": 32, "autosummarize": "on"})


contract_events = Table(
    "contract_events",
    metadata,
    Column("id", Text, primary_key=True,
           comment="the RPC event id, %019d-%010d: chain order when sorted as text; the key of every event table"),
    *_event_location(),
    Column("topic_xdr", ARRAY(Text), nullable=False, comment="the topic: one base64 ScVal XDR per element"),
    Column("value_xdr", Text, nullable=False, comment="the data: base64 ScVal XDR"),
    Column("topic", JSONB, comment="decoded topic; NULL when the XDR does not parse"),
    Column("value", JSONB, comment="decoded value; NULL when the XDR does not parse"),
    _ledger_order_index("ledger"),
    comment="every event of the indexed contract(s), as the RPC delivered it (XDR) and decoded (JSON), in chain "
            "order; one row per event, never changed",
)

# `kind` is the SSE name (stream.created, protocol.initialized, ...). For stream events `sender` and
# `recipient` are the stream's parties, filled from the stream even where the event itself names one.
events = Table(
    "events",
    metadata,
    Column("id", Text, primary_key=True, comment="the contract_events id"),
    Column("kind", Text, nullable=False,
           comment="the event's kind, as the API and live events name it: stream.created, protocol.initialized, ..."),
    *_event_location(),
    *(_event_field_column(name, sc_type) for name, sc_type in all_fields(EVENT_KINDS).items()),
    Index(None, "stream_id", "id"),
    Index(None, "kind", "id"),
    _ledger_order_index("ledger_closed_at"),
    _ledger_order_index("ledger"),
    comment="the FlowFi events, typed: one row per decoded contract_events row, one column per contract field "
            "(NULL where the kind has no such field); see the README's table of events",
)

event_parties = Table(
    "event_parties",
    metadata,
    Column("address", Text, nullable=False, comment="a G... or C... strkey"),
    Column("event_id", Text, nullable=False, comment="an events id that concerns the address"),
    PrimaryKeyConstraint("address", "event_id"),
    comment="which addresses each event concerns (a stream event's sender and recipient, the recipients a "
            "transfer names, every address of a protocol event): everything about an address, in chain order",
)

streams = Table(
    "streams",
    metadata,
    Column("contract_id", Text, nullable=False, comment="the contract (C... strkey)"),
    Column("stream_id", U64_NUMERIC, nullable=False, comment="u64, the contract's stream id"),
    Column("sender", Text, nullable=False, comment="who funds the stream (G... or C... strkey)"),
    Column("recipient", Text, nullable=False,
           comment="who receives it now (strkey); stream.recipient_transferred changes it"),
    Column("token", Text, nullable=False, comment="the token contract (C... strkey); see tokens"),
    Column("rate_per_second", I128_NUMERIC, nullable=False,
           comment="i128, the token's smallest unit per second; 0 for steps schedules"),
    Column("deposited", I128_NUMERIC, nullable=False,
           comment=f"{AMOUNT}: the creation's deposit plus the top-ups, net of fees"),
    Column("withdrawn", I128_NUMERIC, nullable=False,
           comment=f"{AMOUNT}: what the recipients received: withdrawals, settlements of recipient transfers and "
                   "the accrued payout at a cancellation"),
    Column("refunded", I128_NUMERIC, nullable=False, comment=f"{AMOUNT}: returned to the sender at a cancellation"),
    Column("fees_paid", I128_NUMERIC, nullable=False,
           comment=f"{AMOUNT}: protocol fees taken from the deposits (stream.fee_collected)"),
    Column("status", Text, nullable=False,
           comment="active, paused, cancelled, completed (withdrawn in full) or closed (storage deleted). Only a "
                   "withdrawal completes a stream: one that a recipient transfer settled in full stays active, "
                   "with nothing left, as on chain"),
    Column("start_time", U64_NUMERIC, nullable=False, comment=TIME),
    Column("last_update_time", U64_NUMERIC, nullable=False,
           comment=f"{TIME}: a linear stream accrues from here (withdrawals, resumes and rate changes move it)"),
    Column("paused_at", U64_NUMERIC, comment=f"{TIME}: set while paused, NULL otherwise"),
    Column("end_time", U64_NUMERIC,
           comment=f"{TIME}: when the deposit runs out, as the contract projects it at the stream's last event: "
                   "for a linear stream, when what is left will have accrued at its rate (while paused, if resumed "
                   "then); for a hybrid stream, cliff_time plus the rest at its rate, and for a steps stream its "
                   "last unlock, paused or not (get_projected_end_time: a pause does not move them). Rounded down "
                   "to the second: the last units, fewer than rate_per_second, may vest a second later. NULL while "
                   "a milestone is unmet"),
    Column("schedule", Text, nullable=False,
           comment="linear, steps or hybrid: how the deposit unlocks (see claimable in stream_balances)"),
    Column("cliff_time", U64_NUMERIC,
           comment=f"{TIME}: nothing is claimable before it; hybrid streams unlock cliff_amount then; NULL: no cliff"),
    Column("cliff_amount", I128_NUMERIC, comment=f"{AMOUNT}: a hybrid stream's lump at cliff_time; NULL for others"),
    Column("step_times", ARRAY(U64_NUMERIC), nullable=False,
           comment=f"{TIME}: a steps stream's unlock times, in the contract's order (2^64-1: milestone not met); "
                   "claimable counts them in this order up to the first still locked, so a milestone met after one "
                   "not yet met unlocks nothing until that one is; empty for other schedules"),
    Column("step_amounts", ARRAY(I128_NUMERIC), nullable=False,
           comment=f"{AMOUNT}: what each of step_times unlocks"),
    Column("conditional", Boolean, nullable=False, comment="steps that unlock when milestones are met"),
    Column("allowance", Boolean, nullable=False, comment="created with no deposit; funded by top-ups only"),
    Column("terms_source", Text, nullable=False,
           comment="events; storage when part of the schedule came from the contract's storage; unavailable "
                   "when it should have and the entry was gone or in a layout the indexer did not know (flowfi "
                   "redecode --storage reads it again)"),
    Column("dispute", Text, comment="requested, approved or rejected; NULL when none was requested"),
    Column("bootstrap_ledger", BigInteger,
           comment="set when the index took this stream from the contract's storage at that ledger (flowfi "
                   "bootstrap) rather than from its creation event"),
    Column("created_at", DateTime(timezone=True), nullable=False,
           comment="ledger close time of the creation (of start_time, for a stream taken from storage)"),
    Column("updated_at", DateTime(timezone=True), nullable=False, comment="ledger close time"),
    Column("first_event_id", Text, comment="NULL for a stream taken from storage"),
    Column("last_event_id", Text, comment="NULL for a stream taken from storage and unchanged since"),
    PrimaryKeyConstraint("contract_id", "stream_id"),
    CheckConstraint(f"status IN {STREAM_STATUSES!r}", name="status"),
    CheckConstraint(f"schedule IN {SCHEDULES!r}", name="schedule"),
    CheckConstraint(f"terms_source IN {TERMS_SOURCES!r}", name="terms_source"),
    Index(None, "sender", "stream_id"),
    Index(None, "recipient", "stream_id"),
    Index(None, "status", "stream_id"),
    Index(None, "token", "stream_id"),
    Index(None, "stream_id"),
    comment="the state of every stream, derived from its events (and from the contract's storage where they do "
            "not carry its whole schedule); one row per stream, updated as its events arrive. See stream_balances "
            "for what is claimable and locked now",
)

protocol_config = Table(
    "protocol_config",
    metadata,
    Column("contract_id", Text, primary_key=True, comment="the contract (C... strkey)"),
    Column("admin", Text, comment="NULL until initialized or admin_transferred is seen"),
    Column("treasury", Text, comment="NULL until initialized or fee_config_updated is seen"),
    Column("fee_rate_bps", BigInteger,
           comment="u32, the fee in basis points of every deposit and top-up; NULL until initialized or "
                   "fee_config_updated is seen"),
    Column("is_paused", Boolean, comment="the protocol circuit breaker; NULL until a pause event is seen"),
    Column("emergency_guardian", Text, comment="may pause the protocol besides the admin"),
    Column("wasm_hash", Text, comment="the code the last contract_upgraded installed (hex)"),
    Column("data_version", BigInteger, comment="the storage layout version of the last state_migrated"),
    Column("updated_at", DateTime(timezone=True), nullable=False, comment="ledger close time"),
    Column("last_event_id", Text, comment="NULL when read from the contract's storage (flowfi bootstrap)"),
    comment="each contract's current configuration, from its protocol events (or its storage): one row per contract",
)

contract_upgrades = Table(
    "contract_upgrades",
    metadata,
    Column("event_id", Text, primary_key=True, comment="the contract_upgraded or state_migrated event"),
    Column("contract_id", Text, nullable=False, comment="the contract (C... strkey)"),
    Column("ledger", BigInteger, nullable=False, comment="the ledger of the event: the new code runs from there"),
    Column("kind", Text, nullable=False, comment="code (contract_upgraded) or data (state_migrated)"),
    Column("wasm_hash", Text, comment="code: the new code's hash (hex)"),
    Column("data_version", BigInteger, comment="data: the new storage layout version"),
    CheckConstraint("kind IN ('code', 'data')", name="kind"),
    Index(None, "contract_id", "event_id"),
    comment="the contract's code changes and data migrations, in chain order",
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("event_id", Text, ForeignKey("contract_events.id"), primary_key=True,
           comment="the contract_events row that could not be decoded"),
    Column("reason", Text, nullable=False, comment="what is wrong with it"),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now(),
           comment="when the worker recorded it (the server's clock)"),
    comment="events kept raw because they could not be decoded as an event this indexer knows; `flowfi redecode` "
            "tries them again",
)

indexer_cursor = Table(
    "indexer_cursor",
    metadata,
    Column("contract_ids", Text, primary_key=True, comment="the indexed contract ids, sorted, comma-joined"),
    Column("rpc_cursor", Text, nullable=False,
           comment="the getEvents cursor to resume from; empty to start again at the configured ledger"),
    Column("last_event_id", Text, comment="the last event indexed; NULL before the first"),
    Column("last_ledger", BigInteger, nullable=False, comment="the last ledger fully indexed"),
    Column("last_ledger_closed_at", DateTime(timezone=True),
           comment="the ledger time the index is at, which the views and claimableNow call now: the chain's "
                   "newest close time once the worker has caught up; while it catches up, that of the newest "
                   "event indexed (of last_ledger or before, or of the ledger after it, which a page may end "
                   "within), never that of a ledger not indexed at all. It never goes back; NULL until known"),
    Column("latest_ledger", BigInteger, nullable=False, comment="the RPC's newest ledger at that poll"),
    Column("latest_ledger_closed_at", DateTime(timezone=True),
           comment="latest_ledger's close time; NULL until known"),
    Column("events_indexed", BigInteger, nullable=False, server_default="0", comment="events written so far"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now(),
           comment="when the worker last polled (the server's clock)"),
    # How the worker tells the chain it indexed from a network that was reset, or another one on the same
    # passphrase: a ledger it went through, as the RPC named it (see indexer/identity.py).
    Column("anchor_ledger", BigInteger,
           comment="a ledger the index went through (the cursor's, or one up to a minute older); NULL: none yet"),
    Column("anchor_hash", Text, comment="that ledger's hash (hex), as the RPC's getLedgers gave it"),
    Column("anchor_closed_at", DateTime(timezone=True), comment="that ledger's close time"),
    comment="where the worker resumes, one row per set of indexed contracts, and how far the chain is",
)

tokens = Table(
    "tokens",
    metadata,
    Column("address", Text, primary_key=True, comment="the token contract (C... strkey), as streams.token names it"),
    Column("name", Text, comment="the token's name (its name()); NULL until known"),
    Column("symbol", Text, comment="the token's symbol (its symbol()); NULL until known"),
    Column("decimals", BigInteger,
           comment="u32, the token's decimals(): N smallest units are N / 10^decimals tokens; NULL until known, "
                   "and the views' human amounts with it"),
    Column("source", Text, nullable=False,
           comment="where name, symbol and decimals were read: the token contract (chain) or set by hand (manual)"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now(),
           comment="when the row was written (the server's clock)"),
    comment="each token's name, symbol and decimals, for amounts people can read; one row per token contract",
)

# A backfill writes the worker's cursor with every batch (so that `flowfi index` continues where it stops)
# and, in the same transaction, its own row here.
backfill_progress = Table(
    "backfill_progress",
    metadata,
    Column("contract_ids", Text, primary_key=True, comment="the indexed contract ids, sorted, comma-joined"),
    Column("source", Text, nullable=False, comment="the data lake (or file) the last backfill read"),
    Column("first_ledger", BigInteger, nullable=False, comment="the first ledger a backfill wrote"),
    Column("end_ledger", BigInteger,
           comment="where the last backfill stops: its --to, else the lake's newest ledger when it started; NULL "
                   "when the lake held no ledger then"),
    Column("last_ledger", BigInteger, nullable=False, comment="the last ledger written"),
    Column("events_indexed", BigInteger, nullable=False, server_default="0",
           comment="events written by the backfills of this row"),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now(),
           comment="when the first backfill of this row started (the server's clock)"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now(),
           comment="when the last batch was written (the server's clock)"),
    comment="how far `flowfi backfill` has read a data lake, one row per set of indexed contracts",
)
