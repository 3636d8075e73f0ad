"""Rows as FlowFi's backend shaped them: its stream objects, its stored events (`eventType`, `amount`,
`metadata` as JSON text) and its SSE payloads.

Its conventions: camelCase keys; u64 values (stream ids, Unix-second times) as JSON numbers below 2^53
and decimal strings above; i128 amounts as decimal strings; `createdAt`/`updatedAt` as ISO times with
milliseconds. Times here are ledger close times, never this server's clock (the backend stamped most
events with its own clock; the chain's time is what it meant).

Event names: the backend knew the 11 events of build 8723543, and named them `CREATED`, `TOPPED_UP`, ...
(`stream.created`, `stream.topped_up`, ... over SSE; the fee and admin events too, as
`stream.fee_config_updated` and `stream.admin_transferred`). Every creation of the newer build is a
`CREATED` here as well, so that its apps see it; the other kinds keep this API's names, upper-cased
(`RATE_MODIFIED`, `PROTOCOL_PAUSE_STATUS`; over SSE `stream.rate_modified`, `protocol.pause_status`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from api.hub import LiveEvent
from api.payloads import event_payload
from api.sse import encode
from indexer.events import BY_SSE_NAME, CREATIONS, field_types, payload_key

SAFE_INTEGER = 2**53  # JavaScript's: the backend sent larger u64 values as strings

ORIGINAL_TYPES = ("CREATED", "TOPPED_UP", "WITHDRAWN", "CANCELLED", "COMPLETED", "PAUSED", "RESUMED",
                  "FEE_COLLECTED", "FEE_CONFIG_UPDATED", "ADMIN_TRANSFERRED")
_CREATION_KINDS = frozenset(kind.sse_name for kind in CREATIONS)


def _event_type(kind: str) -> str:
    if kind in _CREATION_KINDS:
        return "CREATED"
    group, _, name = kind.partition(".")
    if group == "stream" or name in ("fee_config_updated", "admin_transferred"):
        return name.upper()
    return f"PROTOCOL_{name.upper()}"


EVENT_TYPE: dict[str, str] = {kind: _event_type(kind) for kind in BY_SSE_NAME}
# Every eventType, the backend's first; and the kinds each stands for.
EVENT_TYPES: tuple[str, ...] = (*ORIGINAL_TYPES, *sorted(set(EVENT_TYPE.values()) - set(ORIGINAL_TYPES)))
KINDS_OF_TYPE: dict[str, tuple[str, ...]] = {
    event_type: tuple(kind for kind, t in EVENT_TYPE.items() if t == event_type) for event_type in EVENT_TYPES
}
SSE_NAME: dict[str, str] = {
    kind: f"stream.{event_type.lower()}" if event_type in ORIGINAL_TYPES else kind
    for kind, event_type in EVENT_TYPE.items()
}

# The field a stored event's `amount` holds (none: null).
_AMOUNT = {
    "stream.created": "deposited_amount", "stream.step_vesting_created": "deposited_amount",
    "stream.hybrid_cliff_created": "deposited_amount", "stream.topped_up": "amount", "stream.withdrawn": "amount",
    "stream.cancelled": "refunded_amount", "stream.completed": "total_withdrawn", "stream.fee_collected": "fee_amount",
    "stream.recipient_transferred": "settled_amount", "stream.milestone_unlocked": "amount",
}
# The backend's `metadata` keys (its stored events), by kind: (key, column). The fee and admin events
# had snake_case keys; the others camelCase. Kinds it did not know carry all their fields, camelCase.
_BACKEND_METADATA: dict[str, tuple[tuple[str, str], ...]] = {
    "stream.created": (("tokenAddress", "token_address"), ("ratePerSecond", "rate_per_second")),
    "stream.topped_up": (("newDepositedAmount", "new_deposited_amount"),),
    "stream.withdrawn": (("recipient", "recipient"),),
    "stream.cancelled": (("amountWithdrawn", "amount_withdrawn"), ("refundedAmount", "refunded_amount")),
    "stream.completed": (("recipient", "recipient"),),
    "stream.paused": (("sender", "sender"), ("pausedAt", "paused_at")),
    "stream.resumed": (("sender", "sender"), ("newEndTime", "new_end_time")),
    "stream.fee_collected": (("treasury", "treasury"), ("token", "token")),
    "protocol.fee_config_updated": tuple((name, name) for name in (
        "admin", "old_treasury", "new_treasury", "old_fee_rate_bps", "new_fee_rate_bps")),
    "protocol.admin_transferred": (("previous_admin", "previous_admin"), ("new_admin", "new_admin")),
}
_METADATA = {
    kind: _BACKEND_METADATA.get(kind)
    or tuple((payload_key(name), name) for name in field_types(event) if name != "stream_id")
    for kind, event in BY_SSE_NAME.items()
}
# u64 values the backend sent as numbers (newEndTime it sent as a string); in metadata and SSE payloads.
_NUMBERS = frozenset({"streamId", "startTime", "pausedAt"})

STATUS_NAMES = {"active": "Active", "paused": "Paused", "cancelled": "Cancelled", "completed": "Completed",
                "closed": "Closed"}
RUNNING = frozenset({"active", "paused"})  # the backend's isActive: not yet cancelled or completed
PAUSE_KINDS = ("stream.paused", "stream.resumed")
ENDINGS = ("stream.cancelled", "stream.completed")


def u64(value: Any) -> int | str | None:
    """A u64 as the backend sent it: a number when JavaScript holds it exactly, else a decimal string."""
    if value is None:
        return None
    number = int(value)
    return number if number < SAFE_INTEGER else str(number)


def seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def iso_ms(moment: datetime) -> str:
    """An ISO time as JavaScript's Date.toJSON writes it: milliseconds and Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _text(value: Any) -> str | None:
    return None if value is None else str(int(value))


# --- pauses -------------------------------------------------------------------------------------------


@dataclass
class Pauses:
    """What the streams' pause and resume events say: how long each resume ended a pause for, and each
    stream's total. The chain stores neither: a resume lasts from the pause's `paused_at` to the resume's
    ledger time (the contract's `now - paused_at`); a pause still running counts once it is resumed, as
    in the backend. A resume whose pause the index has not seen (before its history) counts 0."""

    totals: dict[tuple[str, int], int] = field(default_factory=dict)
    by_resume: dict[str, tuple[int, int]] = field(default_factory=dict)  # event id -> (this one, total then)

    def total(self, contract_id: str, stream_id: int) -> int:
        return self.totals.get((contract_id, stream_id), 0)


async def pauses_of(pool: asyncpg.Pool | asyncpg.Connection, stream_ids: Iterable[int]) -> Pauses:
    """The pause history of the streams with these ids (of every contract), from their events."""
    ids = sorted({int(stream_id) for stream_id in stream_ids})
    pauses = Pauses()
    if not ids:
        return pauses
    rows = await pool.fetch(
        "SELECT id, contract_id, stream_id, kind, paused_at, ledger_closed_at FROM events "
        "WHERE stream_id = ANY($1::numeric[]) AND kind = ANY($2::text[]) ORDER BY id", ids, list(PAUSE_KINDS))
    pending: dict[tuple[str, int], int] = {}
    for row in rows:
        key = (row["contract_id"], int(row["stream_id"]))
        if row["kind"] == "stream.paused":
            pending[key] = int(row["paused_at"])
            continue
        paused_at = pending.pop(key, None)
        duration = 0 if paused_at is None else max(seconds(row["ledger_closed_at"]) - paused_at, 0)
        pauses.totals[key] = total = pauses.totals.get(key, 0) + duration
        pauses.by_resume[row["id"]] = (duration, total)
    return pauses


# --- streams ------------------------------------------------------------------------------------------


def stream_json(row: Mapping[str, Any], pauses: Pauses) -> dict[str, Any]:
    """A streams row as the backend's Stream, with `status` (which it lacked, and its stream page needs)."""
    status = row["status"]
    stream_id = int(row["stream_id"])
    return {
        "id": f"{row['contract_id']}:{stream_id}",
        "streamId": u64(stream_id),
        "contractId": row["contract_id"],
        "sender": row["sender"],
        "recipient": row["recipient"],
        "tokenAddress": row["token"],
        "tokenSymbol": row["token_symbol"],
        "tokenDecimals": row["token_decimals"],
        "ratePerSecond": _text(row["rate_per_second"]),
        "depositedAmount": _text(row["deposited"]),
        "withdrawnAmount": _text(row["withdrawn"]),
        "startTime": u64(row["start_time"]),
        "lastUpdateTime": u64(row["last_update_time"]),
        "endTime": u64(row["end_time"]),
        "pausedAt": u64(row["paused_at"]),
        "isActive": status in RUNNING,
        "isPaused": status == "paused",
        "totalPausedDuration": pauses.total(row["contract_id"], stream_id),
        "status": STATUS_NAMES[status],
        "createdAt": iso_ms(row["created_at"]),
        "updatedAt": iso_ms(row["updated_at"]),
    }


# --- events -------------------------------------------------------------------------------------------


def _metadata_value(key: str, value: Any) -> Any:
    return u64(value) if key in _NUMBERS else value


def event_json(row: Mapping[str, Any], pauses: Pauses) -> dict[str, Any]:
    """An events row as the backend's StreamEvent. `row` has api.payloads.EVENT_COLUMNS; protocol events
    belong to stream 0, the backend's "system stream"."""
    kind = row["kind"]
    metadata = {key: _metadata_value(key, row[column]) for key, column in _METADATA[kind]}
    if kind == "stream.resumed":
        metadata["pausedDuration"], metadata["totalPausedDuration"] = pauses.by_resume.get(row["id"], (0, 0))
    elif kind == "protocol.admin_transferred":
        metadata["transactionHash"] = row["tx_hash"]
    amount = _AMOUNT.get(kind)
    return {
        "id": row["id"],
        "streamId": 0 if row["stream_id"] is None else u64(row["stream_id"]),
        "eventType": EVENT_TYPE[kind],
        "amount": None if amount is None else row[amount],
        "transactionHash": row["tx_hash"],
        "ledgerSequence": row["ledger"],
        "timestamp": seconds(row["ledger_closed_at"]),
        "metadata": orjson.dumps(metadata).decode(),
        "createdAt": iso_ms(row["ledger_closed_at"]),
        "contractId": row["contract_id"],
    }


def sse_payload(row: Mapping[str, Any]) -> dict[str, Any]:
    """This API's payload of an event (api.payloads), with the backend's name in `type` (this API's in
    `kind`), its numbers, and `timestamp`: the ledger's close time in Unix seconds."""
    payload = event_payload(row)
    kind = payload["type"]
    payload["type"] = SSE_NAME[kind]
    payload["kind"] = kind
    for key in _NUMBERS.intersection(payload):
        payload[key] = u64(payload[key])
    payload["timestamp"] = seconds(row["ledger_closed_at"])
    return payload


def sse_frame(row: Mapping[str, Any]) -> bytes:
    return encode(row["id"], SSE_NAME[row["kind"]], orjson.dumps(sse_payload(row)))


def render_live(event: LiveEvent) -> bytes:
    """A live event's /v1 frame, made once and shared by every /v1 subscriber."""
    if event.rendered is None:
        assert event.row is not None
        event.rendered = sse_frame(event.row)
    return event.rendered
