"""An events-table row as the JSON that SSE frames and `GET /events` carry.

The keys are the FlowFi backend's (streamId, sender, recipient, tokenAddress, ratePerSecond, ...),
derived from the contract's field names (`indexer.events.payload_key`), plus id, type, contractId,
ledger, ledgerClosedAt and transactionHash. Amounts, u64 ids and times are decimal strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from indexer.events import BY_SSE_NAME, ScType, field_types, party_fields, payload_key, to_json_value

# The columns a payload is built from; every query that feeds payloads selects these.
EVENT_COLUMNS = "id, kind, ledger, ledger_closed_at, tx_hash, contract_id, " + ", ".join(
    sorted({name for kind in BY_SSE_NAME.values() for name in field_types(kind)} | {"sender", "recipient"})
)

_FIELDS_BY_KIND: dict[str, dict[str, ScType]] = {
    name: dict(field_types(kind)) for name, kind in BY_SSE_NAME.items()
}
for _name, _kind in BY_SSE_NAME.items():
    if _kind.is_stream_event:
        # A stream event names its stream's parties even where the contract's event names only one.
        _FIELDS_BY_KIND[_name].setdefault("sender", ScType.ADDRESS)
        _FIELDS_BY_KIND[_name].setdefault("recipient", ScType.ADDRESS)


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
    for name, sc_type in _FIELDS_BY_KIND[kind].items():
        value = row[name]
        payload[payload_key(name)] = None if value is None else to_json_value(
            value if sc_type is ScType.ADDRESS else int(value), sc_type
        )
    return payload


def event_parties(row: Mapping[str, Any]) -> frozenset[str]:
    """The addresses an event concerns (see `indexer.events.party_fields`)."""
    return frozenset(row[name] for name in party_fields(BY_SSE_NAME[row["kind"]]) if row[name])
