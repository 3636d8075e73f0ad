from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from stellar_sdk import scval, xdr

from indexer.decode import decode
from indexer.events import (
    BY_TOPIC,
    EVENT_KINDS,
    StreamPaused,
    StreamToppedUp,
    event_fields_json,
    field_types,
    required_fields,
)
from indexer.rpc import RawEvent, raw_event

CLOSED_AT = datetime(2026, 7, 21, 18, 1, 10, tzinfo=UTC)
ACCOUNT = "GBDK4KAKYLSGPQSZB65NBASVBK7D6X7C6XCNA3EANO3KT7ZBDLGTP72S"


def raw(topic: list[str], value: str, event_id: str = "0000000004294971392-0000000000") -> RawEvent:
    return RawEvent(id=event_id, ledger=1, ledger_closed_at=CLOSED_AT, contract_id="C", tx_hash="ab",
                    topic=tuple(topic), value=value)


def b64(value: xdr.SCVal) -> str:
    return value.to_xdr()


def paused_value(**overrides: Any) -> str:
    fields = {"stream_id": scval.to_uint64(7), "sender": scval.to_address(ACCOUNT),
              "paused_at": scval.to_uint64(1000)}
    fields.update(overrides)
    fields = {k: v for k, v in fields.items() if v is not None}
    return b64(scval.to_map({scval.to_symbol(k): v for k, v in sorted(fields.items())}))


PAUSED_TOPIC = [b64(scval.to_symbol("stream_paused")), b64(scval.to_uint64(7))]


def test_every_vector_decodes_to_its_expected_fields(vectors: list[dict[str, Any]]) -> None:
    seen = set()
    for vector in vectors:
        decoded = decode(raw(vector["topic"], vector["value"]))
        assert decoded.error is None, vector["name"]
        assert decoded.event is not None
        assert decoded.event.event.topic == vector["name"]
        assert event_fields_json(decoded.event.event) == vector["expected"]
        assert decoded.value_json == vector["expected"]
        seen.add(vector["name"])
    assert seen == set(BY_TOPIC), "the vectors cover every event kind"
    assert len(EVENT_KINDS) == 25


def test_real_rpc_events_parse_and_foreign_events_are_dead_letters(rpc_examples: dict[str, Any]) -> None:
    for example in ("TwoNativeTransferEvents", "AnyTwoEvents"):
        for event in rpc_examples[example]["value"]["events"]:
            decoded = decode(raw_event(orjson.dumps(event)))
            assert decoded.topic_json is not None and decoded.topic_json[0] in ("transfer", "fee")
            assert decoded.event is None
            assert decoded.error is not None and "unknown event" in decoded.error
            assert decoded.raw.ledger_closed_at.tzinfo is not None


def test_fields_added_by_a_later_contract_version_are_ignored() -> None:
    decoded = decode(raw(PAUSED_TOPIC, paused_value(reason=scval.to_string("maintenance"))))
    assert decoded.event is not None
    assert decoded.event.event == StreamPaused(stream_id=7, sender=ACCOUNT, paused_at=1000)


@pytest.mark.parametrize(
    ("topic", "value", "reason"),
    [
        ([], paused_value(), "no topic"),
        ([b64(scval.to_symbol("stream_exploded")), b64(scval.to_uint64(7))], paused_value(), "unknown event"),
        ([b64(scval.to_string("stream_paused"))], paused_value(), "not a Symbol"),
        (PAUSED_TOPIC, paused_value(paused_at=None), "required field 'paused_at' is missing"),
        (PAUSED_TOPIC, paused_value(paused_at=scval.to_int128(5)), "'paused_at' is a i128, expected u64"),
        (PAUSED_TOPIC, paused_value(sender=scval.to_symbol("bob")), "'sender' is a symbol"),
        (PAUSED_TOPIC, b64(scval.to_vec([scval.to_uint64(7)])), "not a map"),
        (PAUSED_TOPIC[:1], paused_value(), "topic 1 should be the stream id"),
        ([PAUSED_TOPIC[0], b64(scval.to_uint64(8))], paused_value(), "differs from data stream_id 7"),
        (PAUSED_TOPIC, "not base64!", "XDR does not parse"),
        (PAUSED_TOPIC, paused_value()[:-8], "XDR does not parse"),
    ],
)
def test_malformed_events_give_a_reason(topic: list[str], value: str, reason: str) -> None:
    decoded = decode(raw(topic, value))
    assert decoded.event is None
    assert decoded.error is not None and reason in decoded.error


def without(value_b64: str, field: str) -> str:
    """A real event's data map with one field taken out."""
    value = xdr.SCVal.from_xdr(value_b64)
    assert value.map is not None
    value.map.sc_map = [entry for entry in value.map.sc_map if entry.key.sym.sc_symbol.decode() != field]
    return value.to_xdr()


def test_each_missing_field_is_refused_when_required_and_null_when_optional(vectors: list[dict[str, Any]]) -> None:
    """Older builds publish fewer fields: every field of every kind, taken out of a real-shaped event,
    either makes it a dead letter naming the field (required) or decodes to None (optional)."""
    optional_seen = 0
    for vector in vectors[::2]:
        kind = BY_TOPIC[vector["name"]]
        for field in field_types(kind):
            decoded = decode(raw(vector["topic"], without(vector["value"], field)))
            if field in required_fields(kind):
                assert decoded.event is None and decoded.error is not None, (kind.topic, field)
                assert f"required field {field!r} is missing" in decoded.error
            else:
                assert decoded.event is not None, (kind.topic, field, decoded.error)
                assert getattr(decoded.event.event, field) is None
                optional_seen += 1
    assert optional_seen >= 10


def test_a_top_up_from_before_new_end_time_existed_counts() -> None:
    value = b64(scval.to_map({scval.to_symbol("amount"): scval.to_int128(495),
                              scval.to_symbol("new_deposited_amount"): scval.to_int128(1485),
                              scval.to_symbol("sender"): scval.to_address(ACCOUNT),
                              scval.to_symbol("stream_id"): scval.to_uint64(7)}))
    topic = [b64(scval.to_symbol("stream_topped_up")), b64(scval.to_uint64(7))]
    decoded = decode(raw(topic, value))
    assert decoded.event is not None
    assert decoded.event.event == StreamToppedUp(stream_id=7, sender=ACCOUNT, amount=495, new_deposited_amount=1485)
