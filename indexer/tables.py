"""The database schema, defined once: alembic migrations are generated from these tables.

contract_events   every event of the indexed contract(s), as delivered (XDR) and decoded (JSON)
events            the typed FlowFi events; one NUMERIC/TEXT column per contract field (see events.py)
event_parties     which addresses each event concerns, for "everything about address X" in id order
streams           the current state of every stream, derived from its events (and, where the events do not
                  carry a stream's whole schedule, from the contract's storage)
protocol_config   the contract's current admin, treasury, fee rate, pause, guardian and code
contract_upgrades the contract's code changes (contract_upgraded) and data migrations (state_migrated)
dead_letters      events that could not be decoded or applied, with the reason
indexer_cursor    where the worker resumes
backfill_progress how far `flowfi backfill` has read a data lake

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
from indexer.events import EVENT_KINDS, ScType, all_fields

# Rung after each committed page; the payload is the page's last event id. A doorbell only: listeners
# always read the rows themselves (WHERE id > last seen), so a missed ring loses nothing.
EVENTS_CHANNEL = "flowfi_events"

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
        Column("ledger", BigInteger, nullable=False),
        Column("ledger_closed_at", DateTime(timezone=True), nullable=False),
        Column("tx_hash", Text, nullable=False),
        Column("contract_id", Text, nullable=False),
    ]


contract_events = Table(
    "contract_events",
    metadata,
    Column("id", Text, primary_key=True),
    *_event_location(),
    Column("topic_xdr", ARRAY(Text), nullable=False),
    Column("value_xdr", Text, nullable=False),
    Column("topic", JSONB, comment="decoded topic; NULL when the XDR does not parse"),
    Column("value", JSONB, comment="decoded value; NULL when the XDR does not parse"),
    Index(None, "ledger"),
)

# `kind` is the SSE name (stream.created, protocol.initialized, ...). For stream events `sender` and
# `recipient` are the stream's parties, filled from the stream even where the event itself names one.
events = Table(
    "events",
    metadata,
    Column("id", Text, primary_key=True, comment="the contract_events id"),
    Column("kind", Text, nullable=False),
    *_event_location(),
    *(Column(name, SQL_TYPES[sc_type]) for name, sc_type in all_fields(EVENT_KINDS).items()),
    Index(None, "stream_id", "id"),
    Index(None, "kind", "id"),
    Index(None, "ledger_closed_at"),
    Index(None, "ledger"),
)

event_parties = Table(
    "event_parties",
    metadata,
    Column("address", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    PrimaryKeyConstraint("address", "event_id"),
)

streams = Table(
    "streams",
    metadata,
    Column("contract_id", Text, nullable=False),
    Column("stream_id", U64_NUMERIC, nullable=False),
    Column("sender", Text, nullable=False),
    Column("recipient", Text, nullable=False),
    Column("token", Text, nullable=False),
    Column("rate_per_second", I128_NUMERIC, nullable=False),
    Column("deposited", I128_NUMERIC, nullable=False, comment="net of fees"),
    Column("withdrawn", I128_NUMERIC, nullable=False),
    Column("refunded", I128_NUMERIC, nullable=False),
    Column("fees_paid", I128_NUMERIC, nullable=False),
    Column("status", Text, nullable=False),
    Column("start_time", U64_NUMERIC, nullable=False, comment="ledger time, unix seconds"),
    Column("last_update_time", U64_NUMERIC, nullable=False, comment="accrual runs from here"),
    Column("paused_at", U64_NUMERIC, comment="set while paused"),
    Column("end_time", U64_NUMERIC,
           comment="when the deposit runs out, as the contract projects it at the stream's last event; while "
                   "paused, if resumed then; NULL while a milestone is unmet"),
    Column("schedule", Text, nullable=False, comment="linear, steps or hybrid (see indexer/accrual.py)"),
    Column("cliff_time", U64_NUMERIC,
           comment="nothing is claimable before it; hybrid streams unlock cliff_amount then"),
    Column("cliff_amount", I128_NUMERIC, comment="a hybrid stream's lump at cliff_time"),
    Column("step_times", ARRAY(U64_NUMERIC), nullable=False,
           comment="a steps stream's unlock times, in the contract's order (2^64-1: milestone not met)"),
    Column("step_amounts", ARRAY(I128_NUMERIC), nullable=False, comment="the amount each step unlocks"),
    Column("conditional", Boolean, nullable=False, comment="steps that unlock when milestones are met"),
    Column("allowance", Boolean, nullable=False, comment="created with no deposit; funded by top-ups only"),
    Column("terms_source", Text, nullable=False,
           comment="events; storage when part of the schedule came from the contract's storage; unavailable "
                   "when it should have and the entry was gone"),
    Column("dispute", Text, comment="requested, approved or rejected"),
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
)

protocol_config = Table(
    "protocol_config",
    metadata,
    Column("contract_id", Text, primary_key=True),
    Column("admin", Text, comment="NULL until initialized or admin_transferred is seen"),
    Column("treasury", Text, comment="NULL until initialized or fee_config_updated is seen"),
    Column("fee_rate_bps", BigInteger, comment="NULL until initialized or fee_config_updated is seen"),
    Column("is_paused", Boolean, comment="the protocol circuit breaker; NULL until a pause event is seen"),
    Column("emergency_guardian", Text, comment="may pause the protocol besides the admin"),
    Column("wasm_hash", Text, comment="the code the last contract_upgraded installed (hex)"),
    Column("data_version", BigInteger, comment="the storage layout version of the last state_migrated"),
    Column("updated_at", DateTime(timezone=True), nullable=False, comment="ledger close time"),
    Column("last_event_id", Text, comment="NULL when read from the contract's storage (flowfi bootstrap)"),
)

contract_upgrades = Table(
    "contract_upgrades",
    metadata,
    Column("event_id", Text, primary_key=True, comment="the contract_upgraded or state_migrated event"),
    Column("contract_id", Text, nullable=False),
    Column("ledger", BigInteger, nullable=False),
    Column("kind", Text, nullable=False, comment="code (contract_upgraded) or data (state_migrated)"),
    Column("wasm_hash", Text, comment="code: the new code's hash (hex)"),
    Column("data_version", BigInteger, comment="data: the new storage layout version"),
    Column("build", Text, comment="the contract build this code is known to be; NULL when unknown"),
    CheckConstraint("kind IN ('code', 'data')", name="kind"),
    Index(None, "contract_id", "event_id"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("event_id", Text, ForeignKey("contract_events.id"), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

indexer_cursor = Table(
    "indexer_cursor",
    metadata,
    Column("contract_ids", Text, primary_key=True, comment="the indexed contract ids, sorted, comma-joined"),
    Column("rpc_cursor", Text, nullable=False,
           comment="the getEvents cursor to resume from; empty to start again at the configured ledger"),
    Column("last_event_id", Text),
    Column("last_ledger", BigInteger, nullable=False, comment="the last ledger fully indexed"),
    Column("latest_ledger", BigInteger, nullable=False, comment="the RPC's newest ledger at that poll"),
    Column("latest_ledger_closed_at", DateTime(timezone=True)),
    Column("events_indexed", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# A backfill writes the worker's cursor with every batch (so that `flowfi index` continues where it stops)
# and, in the same transaction, its own row here.
backfill_progress = Table(
    "backfill_progress",
    metadata,
    Column("contract_ids", Text, primary_key=True, comment="the indexed contract ids, sorted, comma-joined"),
    Column("source", Text, nullable=False, comment="the data lake (or file) the last backfill read"),
    Column("first_ledger", BigInteger, nullable=False, comment="the first ledger a backfill wrote"),
    Column("end_ledger", BigInteger, comment="where the last backfill stops; NULL: where its lake ends"),
    Column("last_ledger", BigInteger, nullable=False, comment="the last ledger written"),
    Column("events_indexed", BigInteger, nullable=False, server_default="0"),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
