"""What the data-lake reader gives out: each ledger it read, with its contract events as Stellar RPC's
getEvents returns them.

A `LakeEvent` holds every field of a getEvents event (base64 XDR format) under the same meaning;
`rpc_json()` gives the exact JSON object RPC sends, and `raw_event()` the `RawEvent` the RPC client
makes of it, so that events from the lake take the indexer's one decode and store path.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

from indexer.addresses import CONTRACT, strkey
from indexer.rpc import RawEvent

EVENT_TYPES = ("system", "contract")  # ContractEventType 0 and 1; diagnostic events (2) are never given out


class LakeEvent(NamedTuple):
    """One contract event, field for field as getEvents returns it. (A named tuple: the reader makes tens
    of thousands a second, and a tuple is built several times faster than a frozen dataclass.)"""

    type: str
    ledger: int
    ledger_closed_at: str
    contract_id: str
    id: str
    operation_index: int
    transaction_index: int
    tx_hash: str
    in_successful_contract_call: bool
    topic: tuple[str, ...]
    value: str

    def rpc_json(self) -> dict[str, Any]:
        """The event as Stellar RPC's getEvents sends it: its keys, in its order; `topic` omitted when the
        event has none."""
        out: dict[str, Any] = {
            "type": self.type,
            "ledger": self.ledger,
            "ledgerClosedAt": self.ledger_closed_at,
            "contractId": self.contract_id,
            "id": self.id,
            "operationIndex": self.operation_index,
            "transactionIndex": self.transaction_index,
            "txHash": self.tx_hash,
            "inSuccessfulContractCall": self.in_successful_contract_call,
        }
        if self.topic:
            out["topic"] = list(self.topic)
        out["value"] = self.value
        return out

    def raw_event(self) -> RawEvent:
        """The event as the RPC client hands it to the decoder."""
        return RawEvent(
            id=self.id,
            ledger=self.ledger,
            ledger_closed_at=datetime.fromisoformat(self.ledger_closed_at),
            contract_id=self.contract_id,
            tx_hash=self.tx_hash,
            topic=self.topic,
            value=self.value,
            in_successful_contract_call=self.in_successful_contract_call,
        )


class LedgerEvents(NamedTuple):
    """One ledger read from the lake: its sequence and its events in id order (none when it has none, or
    none of the contracts asked for)."""

    sequence: int
    events: tuple[LakeEvent, ...]


def close_time_text(unix_seconds: int) -> str:
    """A ledger close time as getEvents writes it: RFC 3339 in UTC, e.g. 2026-07-21T18:01:10Z."""
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_CONTRACT_TEXT_MAX = 65_536
contract_text: dict[bytes, str] = {}  # C... strkeys by 32-byte contract id: a few contracts emit most events


def contract_strkey(raw: bytes) -> str:
    """C... for a 32-byte contract id, cached in `contract_text`."""
    if len(contract_text) >= _CONTRACT_TEXT_MAX:
        contract_text.clear()
    text = contract_text[raw] = strkey(CONTRACT, raw)
    return text
