"""The FlowFi contract's events: the one definition of their names, fields and types.

Every event the contract publishes is listed here once, as a frozen record (a msgspec.Struct: one is
built for every event indexed, at a tenth of a frozen dataclass's cost) whose field annotations
name the Soroban type of each field. The decoder reads these annotations to check and convert the XDR,
the table module derives its typed columns from them, the local network encodes its events from them,
and the API derives its payload keys from them (`payload_key`). Nothing else spells an event's fields.

The kinds are those of every build of the contract: the 11 of 8723543 and the 14 that c9f5d2e adds
(recipient transfer, four kinds of creation, milestones, rate changes, disputes, closing, the protocol
circuit breaker, upgrade and migration).

Topic layout (contracts/stream_contract/src/events.rs): the topic starts with the event's Symbol name
(`symbols`: one Symbol, or two for `("FlowFi", "ProtocolPaused")`); stream events add the stream id (u64)
after it. The data is the struct as an ScMap keyed by Symbol field names, so fields are matched by name,
never by position.

Every field has one of three rules, because the contract's builds do not all publish the same fields:
- required: the stream state (or the event's meaning) needs it; an event without it is a dead letter.
  A field is required when it is declared without a default.
- optional: informational, or missing from some builds (`stream_topped_up` had no `new_end_time` before
  2026-07-29); declared `= None`, and None (NULL, JSON null) when the event lacks it.
- ignored: a field the schema does not declare (one a later build adds) is skipped.
A field that is present with the wrong type is never accepted: the event is then a dead letter.
"""

from __future__ import annotations

import enum
import types
from datetime import datetime
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin, get_type_hints

import msgspec


class ScType(enum.Enum):
    """The Soroban value types FlowFi's events use, with how each travels in JSON."""

    U32 = "u32"  # a JSON number
    U64 = "u64"  # a decimal string (exceeds 2**53)
    I128 = "i128"  # a decimal string: money, never a float
    ADDRESS = "address"  # a G... or C... strkey
    OPTION_ADDRESS = "Option<Address>"  # a strkey, or null for the contract's None
    BOOL = "bool"  # true or false
    BYTES = "BytesN<32>"  # lowercase hex (a wasm hash)


U64_MAX = 2**64 - 1  # the largest u64: a stream id, a time
LEDGER_MAX = 2**32 - 1  # the largest ledger sequence (a u32)
LAST_SECOND = 253_402_300_799  # 9999-12-31T23:59:59Z in seconds since 1970, the last a datetime holds
I128_MAX = 2**127 - 1  # the largest i128: an amount

U32 = Annotated[int, ScType.U32]
U64 = Annotated[int, ScType.U64]
I128 = Annotated[int, ScType.I128]
Address = Annotated[str, ScType.ADDRESS]
OptionAddress = Annotated[str | None, ScType.OPTION_ADDRESS]
Bool = Annotated[bool, ScType.BOOL]
Bytes = Annotated[str, ScType.BYTES]


class FlowFiEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Base of every event kind. `topic` names it (the contract's Symbol), `symbols` are the Symbols its
    topic starts with (`(topic,)` unless a kind says otherwise), `sse_name` is what browsers see. Each
    kind repeats frozen=True and kw_only=True (msgspec does not inherit kw_only, nor mypy frozen): its
    fields then follow its base's, in declaration order, required or not. Of numbers, strings and
    booleans only: never in a reference cycle, so not tracked by the cyclic collector."""

    topic: ClassVar[str]
    symbols: ClassVar[tuple[str, ...]] = ()
    sse_name: ClassVar[str]
    is_stream_event: ClassVar[bool]

    def __init_subclass__(cls, **options: Any) -> None:
        super().__init_subclass__(**options)
        if "topic" in cls.__dict__ and "symbols" not in cls.__dict__:
            cls.symbols = (cls.topic,)


class StreamEvent(FlowFiEvent, frozen=True, kw_only=True):
    """An event about one stream: the contract puts its id in the topic, after the name, and in the data."""

    is_stream_event: ClassVar[bool] = True
    stream_id: U64


class ProtocolEvent(FlowFiEvent, frozen=True, kw_only=True):
    """An event about the contract itself (configuration, pause, code): no stream id."""

    is_stream_event: ClassVar[bool] = False


class StreamCreated(StreamEvent, frozen=True, kw_only=True):
    topic: ClassVar[str] = "stream_created"
    sse_name: ClassVar[str] = "stream.created"
    sender: Address
    recipient: Address
    rate_per_second: I128
    token_address: Address
    deposited_amount: I128
    start_time: U64


class StreamToppedUp(StreamEvent, frozen=True, kw_only=True):
    topic: ClassVar[str] = "stream_topped_up"
    sse_name: ClassVar[str] = "stream.topped_up"
    sender: Address | None = None
    amount: I128
    new_deposited_amount: I128 | None = None
    new_end_time: U64 | None = None


class TokensWithdrawn(StreamEvent, frozen=True, kw_only=True):
    topic: ClassVar[str] = "tokens_withdrawn"
    sse_name: ClassVar[str] = "stream.withdrawn"
    recipient: Address | None = None
    amount: I128
    timestamp: U64


class StreamCompleted(StreamEvent, frozen=True, kw_only=True):
    topic: ClassVar[str] = "stream_completed"
    sse_name: ClassVar[str] = "stream.completed"
    recipient: Address | None = None
    total_withdrawn: I128


class StreamCancelled(StreamEvent, frozen=True, kw_only=True):
    topic: ClassVar[str] = "stream_cancelled"
    sse_name: ClassVar[str] = "stream.cancelled"
    sender: Address | None = None
    recipient: Address | None = None
    amount_withdrawn: I128
    refunded_amount: I128 | None = None


class StreamPaused(StreamEvent, frozen=True, kw_only=True):
    topic: ClassVar[str] = "stream_paused"
    sse_name: ClassVar[str] = "stream.paused"
    sender: Address | None = None
    paused_at: U64


class StreamResumed(StreamEvent, frozen=True, kw_only=True):
    topic: ClassVar[str] = "stream_resumed"
    sse_name: ClassVar[str] = "stream.resumed"
    sender: Address | None = None
    new_end_time: U64 | None = None


class FeeCollected(StreamEvent, frozen=True, kw_only=True):
    topic: ClassVar[str] = "fee_collected"
    sse_name: ClassVar[str] = "stream.fee_collected"
    treasury: Address | None = None
    fee_amount: I128
    token: Address | None = None


class Initialized(ProtocolEvent, frozen=True, kw_only=True):
    topic: ClassVar[str] = "initialized"
    sse_name: ClassVar[str] = "protocol.initialized"
    admin: Address
    treasury: Address
    fee_rate_bps: U32


class FeeConfigUpdated(ProtocolEvent, frozen=True, kw_only=True):
    topic: ClassVar[str] = "fee_config_updated"
    sse_name: ClassVar[str] = "protocol.fee_config_updated"
    admin: Address | None = None
    old_treasury: Address | None = None
    new_treasury: Address
    old_fee_rate_bps: U32 | None = None
    new_fee_rate_bps: U32


class AdminTransferred(ProtocolEvent, frozen=True, kw_only=True):
    topic: ClassVar[str] = "admin_transferred"
    sse_name: ClassVar[str] = "protocol.admin_transferred"
    previous_admin: Address | None = None
    new_admin: Address


# --- added after 8723543 (c9f5d2e) ---------------------------------------------------------------------


class RecipientTransferred(StreamEvent, frozen=True, kw_only=True):
    """The recipient handed the stream to another address; what had accrued (`settled_amount`) was paid to
    the old one, with no tokens_withdrawn."""

    topic: ClassVar[str] = "recipient_transferred"
    sse_name: ClassVar[str] = "stream.recipient_transferred"
    old_recipient: Address | None = None
    new_recipient: Address
    settled_amount: I128
    timestamp: U64


class StepVestingStreamCreated(StreamEvent, frozen=True, kw_only=True):
    """A stream that unlocks in steps; the steps themselves are in the contract's storage only."""

    topic: ClassVar[str] = "step_vesting_stream_created"
    sse_name: ClassVar[str] = "stream.step_vesting_created"
    sender: Address
    recipient: Address
    token_address: Address
    deposited_amount: I128
    step_count: U32 | None = None
    last_unlock_time: U64 | None = None


class HybridCliffStreamCreated(StreamEvent, frozen=True, kw_only=True):
    """A stream that unlocks `cliff_unlock_amount` at `cliff_time`, then streams the rest from there."""

    topic: ClassVar[str] = "hybrid_cliff_stream_created"
    sse_name: ClassVar[str] = "stream.hybrid_cliff_created"
    sender: Address
    recipient: Address
    token_address: Address
    deposited_amount: I128
    cliff_time: U64
    cliff_unlock_amount: I128
    rate_per_second: I128


class MilestoneConditionUnlocked(StreamEvent, frozen=True, kw_only=True):
    """A milestone of a conditional stream was met: its amount unlocks (in the contract's step order)."""

    topic: ClassVar[str] = "milestone_condition_unlocked"
    sse_name: ClassVar[str] = "stream.milestone_unlocked"
    milestone_id: U32
    amount: I128
    caller: Address | None = None
    timestamp: U64


class AllowanceStreamCreated(StreamEvent, frozen=True, kw_only=True):
    """A stream with no deposit (1 unit a second); only top-ups fund it."""

    topic: ClassVar[str] = "allowance_stream_created"
    sse_name: ClassVar[str] = "stream.allowance_created"
    sender: Address
    recipient: Address
    token_address: Address
    rate_per_second: I128
    start_time: U64


class StreamRateModified(StreamEvent, frozen=True, kw_only=True):
    """A new rate from `timestamp`, with no settlement: what had accrued streams later at the new rate."""

    topic: ClassVar[str] = "stream_rate_modified"
    sse_name: ClassVar[str] = "stream.rate_modified"
    sender: Address | None = None
    old_rate_per_second: I128 | None = None
    new_rate_per_second: I128
    new_end_time: U64 | None = None
    timestamp: U64


class DisputeRequested(StreamEvent, frozen=True, kw_only=True):
    topic: ClassVar[str] = "dispute_requested"
    sse_name: ClassVar[str] = "stream.dispute_requested"
    sender: Address | None = None
    arbiter: Address | None = None
    timestamp: U64 | None = None


class DisputeResolved(StreamEvent, frozen=True, kw_only=True):
    """An approved dispute is followed by the stream's stream_cancelled."""

    topic: ClassVar[str] = "dispute_resolved"
    sse_name: ClassVar[str] = "stream.dispute_resolved"
    arbiter: Address | None = None
    approved: Bool
    timestamp: U64 | None = None


class StreamClosed(StreamEvent, frozen=True, kw_only=True):
    """A finished stream's storage was deleted; its history stays here."""

    topic: ClassVar[str] = "stream_closed"
    sse_name: ClassVar[str] = "stream.closed"
    closer: Address | None = None
    timestamp: U64 | None = None


class ProtocolPauseStatus(ProtocolEvent, frozen=True, kw_only=True):
    topic: ClassVar[str] = "protocol_pause_status"
    sse_name: ClassVar[str] = "protocol.pause_status"
    caller: Address | None = None
    paused: Bool
    timestamp: U64 | None = None


class ProtocolPaused(ProtocolEvent, frozen=True, kw_only=True):
    """Published just before protocol_pause_status by the same call, under a two-Symbol topic."""

    topic: ClassVar[str] = "ProtocolPaused"
    symbols: ClassVar[tuple[str, ...]] = ("FlowFi", "ProtocolPaused")
    sse_name: ClassVar[str] = "protocol.paused"
    admin: Address | None = None
    is_paused: Bool


class EmergencyGuardianUpdated(ProtocolEvent, frozen=True, kw_only=True):
    topic: ClassVar[str] = "emergency_guardian_updated"
    sse_name: ClassVar[str] = "protocol.emergency_guardian_updated"
    admin: Address | None = None
    guardian: OptionAddress


class ContractUpgraded(ProtocolEvent, frozen=True, kw_only=True):
    """New code at the same address, from this event's ledger on (published before the swap)."""

    topic: ClassVar[str] = "contract_upgraded"
    sse_name: ClassVar[str] = "protocol.contract_upgraded"
    admin: Address | None = None
    old_wasm_hash: Bytes | None = None
    new_wasm_hash: Bytes
    timestamp: U64 | None = None


class StateMigrated(ProtocolEvent, frozen=True, kw_only=True):
    topic: ClassVar[str] = "state_migrated"
    sse_name: ClassVar[str] = "protocol.state_migrated"
    admin: Address | None = None
    old_version: U32 | None = None
    new_version: U32


EVENT_KINDS: tuple[type[FlowFiEvent], ...] = (
    StreamCreated,
    StreamToppedUp,
    TokensWithdrawn,
    StreamCompleted,
    StreamCancelled,
    StreamPaused,
    StreamResumed,
    FeeCollected,
    Initialized,
    FeeConfigUpdated,
    AdminTransferred,
    RecipientTransferred,
    StepVestingStreamCreated,
    HybridCliffStreamCreated,
    MilestoneConditionUnlocked,
    AllowanceStreamCreated,
    StreamRateModified,
    DisputeRequested,
    DisputeResolved,
    StreamClosed,
    ProtocolPauseStatus,
    ProtocolPaused,
    EmergencyGuardianUpdated,
    ContractUpgraded,
    StateMigrated,
)
# The kinds that start a stream, each from a different creation entry point.
CREATIONS: tuple[type[StreamEvent], ...] = (
    StreamCreated, StepVestingStreamCreated, HybridCliffStreamCreated, AllowanceStreamCreated,
)
BY_TOPIC: dict[str, type[FlowFiEvent]] = {kind.topic: kind for kind in EVENT_KINDS}
BY_SYMBOLS: dict[tuple[str, ...], type[FlowFiEvent]] = {kind.symbols: kind for kind in EVENT_KINDS}
BY_SSE_NAME: dict[str, type[FlowFiEvent]] = {kind.sse_name: kind for kind in EVENT_KINDS}


def _sc_type(hint: object) -> ScType:
    """The Soroban type an annotation names: `U64`, or `U64 | None` for an optional field."""
    if get_origin(hint) in (Union, types.UnionType):
        (hint,) = (arg for arg in get_args(hint) if arg is not type(None))
    return hint.__metadata__[0]  # type: ignore[attr-defined, no-any-return]


def _declared_fields(kind: type[FlowFiEvent]) -> dict[str, ScType]:
    hints = get_type_hints(kind, include_extras=True)
    return {f.name: _sc_type(hints[f.name]) for f in msgspec.structs.fields(kind)}


_FIELD_TYPES = {kind: _declared_fields(kind) for kind in EVENT_KINDS}
_REQUIRED = {
    kind: frozenset(f.name for f in msgspec.structs.fields(kind) if f.required)
    for kind in EVENT_KINDS
}


def field_types(kind: type[FlowFiEvent]) -> dict[str, ScType]:
    """The data fields of an event kind and their Soroban types, in declaration order."""
    return _FIELD_TYPES[kind]


def required_fields(kind: type[FlowFiEvent]) -> frozenset[str]:
    """The fields an event of `kind` must carry; the others are optional (see the module's docstring)."""
    return _REQUIRED[kind]


def all_fields(kinds: tuple[type[FlowFiEvent], ...] = EVENT_KINDS) -> dict[str, ScType]:
    """Every field name used by `kinds`, with its one type (a name never changes type across kinds)."""
    merged: dict[str, ScType] = {}
    for kind in kinds:
        for name, sc_type in field_types(kind).items():
            if merged.setdefault(name, sc_type) is not sc_type:
                raise TypeError(f"field {name!r} has two types: {merged[name]} and {sc_type}")
    return merged


_UNITS = {
    ScType.I128: "an amount in the token's smallest unit",
    ScType.ADDRESS: "a G... account or C... contract strkey",
    ScType.OPTION_ADDRESS: "a G... or C... strkey; NULL for the contract's None",
    ScType.BOOL: "true or false",
    ScType.BYTES: "32 bytes as lowercase hex",
}
# What a field's name does not tell, for the data dictionary (CONTRACT's semantics).
_NOTES = {
    "amount": "in stream.topped_up the deposit added, net of the fee; in stream.withdrawn what the recipient "
              "received; in stream.milestone_unlocked what the milestone unlocked",
    "deposited_amount": "net of the creation fee",
    "new_deposited_amount": "the stream's whole deposit after the top-up, net of fees",
    "total_withdrawn": "everything the recipient received from the stream",
    "amount_withdrawn": "everything the recipient received, including what had accrued and was paid at the "
                        "cancellation without a stream.withdrawn",
    "refunded_amount": "returned to the sender at the cancellation",
    "settled_amount": "what had accrued, paid to the old recipient (with no stream.withdrawn)",
    "fee_amount": "the protocol's fee on a deposit or top-up, paid to the treasury",
    "new_end_time": "when the deposit runs out, as the contract projects it",
}


def _unit(name: str, sc_type: ScType) -> str:
    """What a field's value counts: its name says it where its type cannot."""
    if sc_type is ScType.I128 and name.endswith("_per_second"):
        return "the token's smallest unit per second"
    if sc_type is ScType.U64:
        if name.endswith(("_time", "_at")) or name == "timestamp":
            return "unix seconds, ledger time"
        return "the contract's stream id" if name == "stream_id" else "a number"
    if sc_type is ScType.U32:
        return "basis points (1/100 of a percent)" if name.endswith("_bps") else "a number"
    return _UNITS[sc_type]


def field_comment(name: str, kinds: tuple[type[FlowFiEvent], ...] = EVENT_KINDS) -> str:
    """The data dictionary's entry for the events column of field `name`: its Soroban type and unit, what
    it means where the name does not tell, and the event kinds (`kind`) that set it, `?` marking those
    that may leave it out."""
    sc_type = all_fields(kinds)[name]
    having = [kind for kind in kinds if name in field_types(kind)]
    note = f" ({_NOTES[name]})" if name in _NOTES else ""
    stream_kinds = [kind for kind in kinds if kind.is_stream_event]
    if having == stream_kinds and all(name in required_fields(kind) for kind in having):
        setters = "every stream.* kind"
    else:
        setters = ", ".join(kind.sse_name + ("" if name in required_fields(kind) else "?") for kind in having)
    return f"{sc_type.value}, {_unit(name, sc_type)}{note}. Set by {setters}; NULL for other kinds" + (
        " and where a ? kind leaves it out" if "?" in setters else "")


def party_fields(kind: type[FlowFiEvent]) -> tuple[str, ...]:
    """The fields naming whom an event concerns: a stream event's sender and recipient (the stream's
    parties, filled from the stream where the event names only one) and the recipients a transfer names,
    every address of a protocol event."""
    if kind.is_stream_event:
        extra = tuple(name for name in ("old_recipient", "new_recipient") if name in field_types(kind))
        return ("sender", "recipient", *extra)
    return tuple(name for name, sc_type in field_types(kind).items()
                 if sc_type in (ScType.ADDRESS, ScType.OPTION_ADDRESS))


def payload_key(field_name: str) -> str:
    """The JSON key of a field, as the FlowFi backend sent it: stream_id -> streamId."""
    head, *rest = field_name.split("_")
    return head + "".join(word.capitalize() for word in rest)


JsonValue = int | str | bool | None


def to_json_value(value: JsonValue, sc_type: ScType) -> JsonValue:
    """A field's JSON form: u64 and i128 as decimal strings, u32 as a number, addresses as strkeys,
    bools as booleans, bytes as hex, an absent optional field (or the contract's None) as null."""
    if sc_type is ScType.U64 or sc_type is ScType.I128:
        return None if value is None else str(value)
    return value


def event_fields_json(event: FlowFiEvent) -> dict[str, JsonValue]:
    """The event's data fields as JSON, keyed by the contract's field names."""
    return {
        name: to_json_value(getattr(event, name), sc_type)
        for name, sc_type in field_types(type(event)).items()
    }


class ChainEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A decoded event with where it happened on chain. `id` is the ordering key everywhere."""

    id: str
    ledger: int
    ledger_closed_at: datetime
    tx_hash: str
    contract_id: str
    event: FlowFiEvent
