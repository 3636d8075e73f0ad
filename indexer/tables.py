"""The database schema, defined once: alembic migrations are generated from these tables.

contract_events   every event of the indexed contract(s), as delivered (XDR) and decoded (JSON)
events            the typed FlowFi events; one NUMERIC/TEXT column per contract field (see events.py)
event_parties     which addresses each event concerns, for "everything about address X" in id order
streams           the current state of every stream, derived from its events
protocol_config   the contract's current admin, treasury and fee rate
dead_letters      events that could not be decoded or applied, with the reason
indexer_cursor    where the worker resumes

The RPC event id ("%019d-%010d", chain order when sorted as text) is the primary key of every event
table, the page cursor of the API and the SSE id. There is no second sequence.
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
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
}

STREAM_STATUSES = ("active", "paused", "cancelled", "completed")

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
    Column("end_time", U64_NUMERIC, comment="derived; NULL while paused"),
    Column("created_at", DateTime(timezone=True), nullable=False, comment="ledger close time"),
    Column("updated_at", DateTime(timezone=True), nullable=False, comment="ledger close time"),
    Column("first_event_id", Text, nullable=False),
    Column("last_event_id", Text, nullable=False),
    PrimaryKeyConstraint("contract_id", "stream_id"),
    CheckConstraint(f"status IN {STREAM_STATUSES!r}", name="status"),
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
    Column("admin", Text, nullable=False),
    Column("treasury", Text, nullable=False),
    Column("fee_rate_bps", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, comment="ledger close time"),
    Column("last_event_id", Text, nullable=False),
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
