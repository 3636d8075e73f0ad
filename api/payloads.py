"""An events-table row as the JSON that SSE frames and `GET /events` carry.

The keys are the FlowFi backend's (streamId, sender, recipient, tokenAddress, ratePerSecond, ...),
derived from the contract's field names (`indexer.events.payload_key`), plus id, type, contractId,
ledger, ledgerClosedAt and transactionHash. Amounts, u64 ids and times are decimal strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from indexer.events import BY_SSE_NAME, FlowFiEvent, ScType, all_fields, field_types, party_fields, payload_key

_FIELDS: dict[str, ScType] = {**all_fields(), "sender": ScType.ADDRESS, "recipient": ScType.ADDRESS}


def _select(name: str, sc_type: ScType) -> str:
    # u64 and i128 arrive as decimal text, which is what the JSON carries: no Decimal on the way.
    return f"{name}::text AS {name}" if sc_type in (ScType.U64, ScType.I128) else name


# The keys every payload starts with, whatever its kind; the kind's fields follow (`payload_layout`).
ENVELOPE = ("id", "type", "contractId", "ledger", "ledgerClosedAt", "transactionHash")

# The token's metadata (the tokens table) of an event that concerns a token: the event's own, else its
# stream's. Null while unknown.
_TOKEN = ("(SELECT t.{} FROM tokens AS t WHERE t.address = coalesce(e.token_address, (SELECT s.token FROM "
          "streams AS s WHERE s.contract_id = e.contract_id AND s.stream_id = e.stream_id)))")

# The columns a payload is built from; every query that feeds payloads selects these, FROM events AS e.
EVENT_COLUMNS = "id, kind, ledger, ledger_closed_at, tx_hash, contract_id, " + ", ".join(
    _select(name, sc_type) for name, sc_type in sorted(_FIELDS.items())
) + f", {_TOKEN.format('symbol')} AS token_symbol, {_TOKEN.format('decimals')} AS token_decimals"


def payload_layout(kind: type[FlowFiEvent]) -> tuple[tuple[str, str, ScType], ...]:
    """(column, payload key, type) of each field of a kind's payload, after the envelope. A stream
    event names its stream's parties even where the contract's event names only one (they are NULL
    while its stream is unknown)."""
    names = list(field_types(kind))
    if kind.is_stream_event:
        names += [party for party in ("sender", "recipient") if party not in names]
    return tuple((name, payload_key(name), _FIELDS[name]) for name in names)


def carries_token(kind: type[FlowFiEvent]) -> bool:
    """Whether a kind's payload ends with its token's `tokenSymbol` and `tokenDecimals` (a stream's events
    and those naming a token)."""
    return kind.is_stream_event or "token_address" in field_types(kind)


TOKEN_KEYS = (("token_symbol", "tokenSymbol"), ("token_decimals", "tokenDecimals"))

_LAYOUTS = {name: tuple((column, key) for column, key, _ in payload_layout(kind))
            + (TOKEN_KEYS if carries_token(kind) else ()) for name, kind in BY_SSE_NAME.items()}


@lru_cache(maxsize=4096)
def iso_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def event_payload(row: Mapping[str, Any]) -> dict[str, Any]:
    kind = row["kind"]
    payload: dict[str, Any] = {
        "id": row["id"],
        "type": kind,
        "contractId": row["contract_id"],
        "ledger": row["ledger"],
        "ledgerClosedAt": iso_time(row["ledger_closed_at"]),
        "transactionHash": row["tx_hash"],
    }
    for column, key in _LAYOUTS[kind]:
        payload[key] = row[column]
    return payload


def event_parties(row: Mapping[str, Any]) -> frozenset[str]:
    """The addresses an event concerns (see `indexer.events.party_fields`)."""
    return frozenset(row[name] for name in party_fields(BY_SSE_NAME[row["kind"]]) if row[name])
