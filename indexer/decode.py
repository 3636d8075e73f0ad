"""RPC events to typed FlowFi events: the one place where wire data becomes our typed records.

Each raw event decodes to a `Decoded`: its topic and value as JSON (for the raw table) and either the
typed `ChainEvent` or the reason it could not be typed (it then goes to the dead letters and the
cursor moves on). Fields are matched by name, by the rules of `indexer.events`: a required field must be
there, an optional one may be missing, an undeclared one is ignored, and none may have the wrong type.
"""

from __future__ import annotations

from typing import Any

import msgspec

from indexer import shapes
from indexer.events import BY_SYMBOLS, ChainEvent, FlowFiEvent, ScType, field_types, required_fields
from indexer.rpc import RawEvent
from indexer.scval import Sc, ScValError, parse_scval, to_json

# The ScVal tags each declared field type may arrive as.
_EXPECTED_TAGS = {
    ScType.U32: ("u32",), ScType.U64: ("u64",), ScType.I128: ("i128",), ScType.ADDRESS: ("address",),
    ScType.OPTION_ADDRESS: ("address", "void"), ScType.BOOL: ("bool",), ScType.BYTES: ("bytes",),
}
# Each kind's fields with the tags each may arrive as, and whether it must be there.
_EXPECTED_FIELDS = {
    kind: tuple((name, _EXPECTED_TAGS[sc_type], sc_type, name in required_fields(kind))
                for name, sc_type in field_types(kind).items())
    for kind in BY_SYMBOLS.values()
}

_TOPIC_CACHE_MAX = 65_536
_topic_cache: dict[str, tuple[Sc, Any]] = {}


class UndecodableEvent(ValueError):
    """Why an event cannot become a typed FlowFi event."""


class Decoded(msgspec.Struct, frozen=True, gc=False):
    """What decode makes of one raw event (see the module's docstring); a msgspec record, as the events are
    (see indexer.events)."""

    raw: RawEvent
    topic_json: list[Any] | None
    value_json: Any
    event: ChainEvent | None
    error: str | None


def decode(raw: RawEvent) -> Decoded:
    try:
        topic_parsed = [_topic(t) for t in raw.topic]
    except ScValError as exc:
        return Decoded(raw, None, None, None, f"XDR does not parse: {exc}")
    topic = [sc for sc, _ in topic_parsed]
    topic_json = [json for _, json in topic_parsed]
    kind = _known_kind(topic)
    seen = shapes.read(kind, raw.value, topic) if kind is not None else None
    if seen is not None:
        value_json, typed = seen
    else:
        try:
            value = parse_scval(raw.value)
        except ScValError as exc:
            return Decoded(raw, None, None, None, f"XDR does not parse: {exc}")
        value_json = to_json(value)
        try:
            typed = typed_event(topic, value)
        except UndecodableEvent as exc:
            return Decoded(raw, topic_json, value_json, None, str(exc))
        shapes.learn(type(typed), raw.value, value)
    chain_event = ChainEvent(
        id=raw.id,
        ledger=raw.ledger,
        ledger_closed_at=raw.ledger_closed_at,
        tx_hash=raw.tx_hash,
        contract_id=raw.contract_id,
        event=typed,
    )
    return Decoded(raw, topic_json, value_json, chain_event, None)


def _topic(b64: str) -> tuple[Sc, Any]:
    """A topic's parsed value and its JSON. Topics repeat (the event's Symbol, a stream's id), so each
    distinct one is parsed once; only values without lists are kept, as they are shared."""
    cached = _topic_cache.get(b64) if isinstance(b64, str) else None
    if cached is None:
        sc = parse_scval(b64)
        cached = (sc, to_json(sc))
        if isinstance(b64, str) and sc[0] not in ("vec", "map"):
            if len(_topic_cache) >= _TOPIC_CACHE_MAX:
                _topic_cache.clear()
            _topic_cache[b64] = cached
    return cached


def _kind(topic: list[Sc]) -> tuple[type[FlowFiEvent], str]:
    """The kind of event a topic names, and its name; UndecodableEvent when none."""
    if not topic:
        raise UndecodableEvent("the event has no topic")
    name_tag, name = topic[0]
    if name_tag != "symbol":
        raise UndecodableEvent(f"topic 0 is a {name_tag}, not a Symbol naming the event")
    kind = BY_SYMBOLS.get((name,))
    if kind is None and len(topic) > 1 and topic[1][0] == "symbol":
        kind = BY_SYMBOLS.get((name, topic[1][1]))
        name = f"{name} {topic[1][1]}"
    if kind is None:
        raise UndecodableEvent(f"unknown event {name!r}: not one of the FlowFi contract's events")
    return kind, name


def _known_kind(topic: list[Sc]) -> type[FlowFiEvent] | None:
    try:
        return _kind(topic)[0]
    except UndecodableEvent:
        return None


def typed_event(topic: list[Sc], value: Sc) -> FlowFiEvent:
    """The FlowFi event a parsed topic and value stand for, or UndecodableEvent saying why not."""
    kind, name = _kind(topic)
    tag, entries = value
    if tag != "map":
        raise UndecodableEvent(f"{name}: the data is a {tag}, not a map of fields")
    data = {key[1]: item for key, item in entries if key[0] == "symbol"}
    fields: dict[str, int | str | bool | None] = {}
    for field_name, expected_tags, sc_type, required in _EXPECTED_FIELDS[kind]:
        item = data.get(field_name)
        if item is None:
            if required:
                raise UndecodableEvent(f"{name}: required field {field_name!r} is missing")
            continue
        if item[0] not in expected_tags:
            raise UndecodableEvent(f"{name}: field {field_name!r} is a {item[0]}, expected {sc_type.value}")
        fields[field_name] = item[1].hex() if sc_type is ScType.BYTES else item[1]
    if kind.is_stream_event:
        at = len(kind.symbols)
        if len(topic) <= at or topic[at][0] != "u64":
            raise UndecodableEvent(f"{name}: topic {at} should be the stream id (u64), got {topic[at:]!r:.80}")
        if topic[at][1] != fields["stream_id"]:
            raise UndecodableEvent(
                f"{name}: topic stream id {topic[at][1]} differs from data stream_id {fields['stream_id']}"
            )
    return kind(**fields)  # type: ignore[arg-type]
