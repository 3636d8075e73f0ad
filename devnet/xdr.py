"""Encode FlowFi events into the XDR the contract publishes: topic ScVals and the data ScVal; and the
transfer events of the tokens' contracts.

Layout (contracts/stream_contract/src/events.rs): topic = [Symbol(name), U64(stream_id)] for stream
events and [Symbol(name)] (or the two Symbols of `("FlowFi", "ProtocolPaused")`) for protocol events;
data = ScMap of Symbol(field name) -> value, sorted by key, typed by `indexer.events.field_types`.

The bytes are those stellar-sdk produces (the tests check it against the published vectors and
against stellar-sdk's own encoder), but they are assembled from cached pieces: symbol and address
ScVals are encoded once by stellar-sdk, and integers are packed directly. The benchmark history encodes
hundreds of thousands of events, and building the full XDR object tree per event is ~20x slower.

A token transfer is published by the token's Stellar Asset Contract (CAP-67, protocol 23): topic
[Symbol("transfer"), Address from, Address to, String asset] with the asset as SEP-11 writes it
("CODE:ISSUER", the SAC's name), data the i128 amount; a transfer from the issuer is a mint
[Symbol("mint"), Address to, String asset] and one to the issuer a burn [Symbol("burn"), Address from,
String asset] (soroban-env-host, stellar_asset_contract/event.rs).
"""

from __future__ import annotations

import base64
import struct
from functools import cache
from typing import Any

from stellar_sdk import scval, xdr

from devnet.terms import Transfer
from devnet.tokens import Token
from indexer.events import FlowFiEvent, ScType, field_types

_SCV_U32 = struct.Struct(">iI")
_SCV_U64 = struct.Struct(">iQ")
_SCV_I128 = struct.Struct(">iqQ")
_SCV_MAP_HEADER = struct.Struct(">iII")
_U32_TYPE, _U64_TYPE, _I128_TYPE, _MAP_TYPE = 3, 5, 10, 17


@cache
def symbol_xdr(name: str) -> bytes:
    return scval.to_symbol(name).to_xdr_bytes()  # type: ignore[no-any-return]


@cache
def address_xdr(strkey: str) -> bytes:
    return scval.to_address(strkey).to_xdr_bytes()  # type: ignore[no-any-return]


def u64_xdr(value: int) -> bytes:
    return _SCV_U64.pack(_U64_TYPE, value)


_VOID = scval.to_void().to_xdr_bytes()
_TRUE, _FALSE = scval.to_bool(True).to_xdr_bytes(), scval.to_bool(False).to_xdr_bytes()


def _value_xdr(value: int | str | bool | None, sc_type: ScType) -> bytes:
    if sc_type is ScType.ADDRESS or sc_type is ScType.OPTION_ADDRESS:
        return _VOID if value is None else address_xdr(value)  # type: ignore[arg-type]
    if sc_type is ScType.BOOL:
        return _TRUE if value else _FALSE
    if sc_type is ScType.BYTES:
        assert isinstance(value, str)
        return scval.to_bytes(bytes.fromhex(value)).to_xdr_bytes()  # type: ignore[no-any-return]
    if sc_type is ScType.I128:
        assert isinstance(value, int)
        return _SCV_I128.pack(_I128_TYPE, value >> 64, value & 0xFFFF_FFFF_FFFF_FFFF)
    if sc_type is ScType.U64:
        return _SCV_U64.pack(_U64_TYPE, value)
    return _SCV_U32.pack(_U32_TYPE, value)


_Layout = tuple[tuple[str, bytes, ScType], ...]
_layouts: dict[str, _Layout] = {}


def _layout(kind: type[FlowFiEvent]) -> _Layout:
    """The data map's entries in key order: field name, encoded key, value type."""
    layout = _layouts.get(kind.topic)
    if layout is None:
        fields = sorted(field_types(kind).items())  # type: ignore[arg-type]
        layout = _layouts[kind.topic] = tuple((name, symbol_xdr(name), sc_type) for name, sc_type in fields)
    return layout


@cache
def topic_symbol_b64(topic: str) -> str:
    return base64.b64encode(symbol_xdr(topic)).decode()


def encode_topic(event: FlowFiEvent) -> list[str]:
    """The event's topics, each a base64 XDR ScVal: its Symbols, then a stream event's id."""
    head = [topic_symbol_b64(symbol) for symbol in event.symbols]
    if event.is_stream_event:
        return [*head, base64.b64encode(u64_xdr(event.stream_id)).decode()]  # type: ignore[attr-defined]
    return head


def encode_value(event: FlowFiEvent) -> str:
    """The event's data: an ScMap keyed by Symbol field names in sorted order, base64 XDR. An optional
    field the event does not have (an older build's) is left out, as that build leaves it out."""
    layout = [entry for entry in _layout(type(event))
              if entry[2] is ScType.OPTION_ADDRESS or getattr(event, entry[0]) is not None]
    parts = [_SCV_MAP_HEADER.pack(_MAP_TYPE, 1, len(layout))]
    for name, key, sc_type in layout:
        parts.append(key)
        parts.append(_value_xdr(getattr(event, name), sc_type))
    return base64.b64encode(b"".join(parts)).decode()


def encode_event(event: FlowFiEvent) -> tuple[list[str], str]:
    """(topic, value) exactly as getEvents returns them for this event."""
    return encode_topic(event), encode_value(event)


@cache
def _string_b64(text: str) -> str:
    return scval.to_string(text).to_xdr()  # type: ignore[no-any-return]


def _address_b64(strkey: str) -> str:
    return base64.b64encode(address_xdr(strkey)).decode()


def encode_transfer(transfer: Transfer, token: Token) -> tuple[list[str], str]:
    """(topic, value) of the token's event for `transfer`, as getEvents returns them."""
    asset = _string_b64(token.name)
    if transfer.from_ == token.issuer != transfer.to:
        topic = [topic_symbol_b64("mint"), _address_b64(transfer.to), asset]
    elif transfer.to == token.issuer != transfer.from_:
        topic = [topic_symbol_b64("burn"), _address_b64(transfer.from_), asset]
    else:
        topic = [topic_symbol_b64("transfer"), _address_b64(transfer.from_), _address_b64(transfer.to), asset]
    amount = transfer.amount
    return topic, base64.b64encode(_SCV_I128.pack(_I128_TYPE, amount >> 64, amount & 0xFFFF_FFFF_FFFF_FFFF)).decode()


def scval_json(b64: str) -> object:
    """A base64 ScVal in the JSON form Stellar RPC sends with `xdrFormat: "json"` (SEP-51, as
    rs-stellar-xdr writes it): externally tagged snake_case variants, 64-bit and wider integers as
    decimal strings, bytes as lowercase hex."""
    return _json_of(xdr.SCVal.from_xdr(b64))


_SMALL_INTS = {xdr.SCValType.SCV_U32: "u32", xdr.SCValType.SCV_I32: "i32"}
# Integers wider than 32 bits travel as decimal strings, named by their type.
_WIDE_INTS = {
    xdr.SCValType.SCV_U64: "u64", xdr.SCValType.SCV_I64: "i64", xdr.SCValType.SCV_TIMEPOINT: "timepoint",
    xdr.SCValType.SCV_DURATION: "duration", xdr.SCValType.SCV_U128: "u128", xdr.SCValType.SCV_I128: "i128",
    xdr.SCValType.SCV_U256: "u256", xdr.SCValType.SCV_I256: "i256",
}


def scval_to_json(value: xdr.SCVal) -> object:
    """An ScVal in the JSON form of `xdrFormat: "json"`."""
    return _json_of(value)


def _json_of(value: xdr.SCVal) -> object:
    kind = value.type
    if kind == xdr.SCValType.SCV_CONTRACT_INSTANCE:
        instance = value.instance
        assert instance is not None
        executable: object = "stellar_asset"
        if instance.executable.wasm_hash is not None:
            executable = {"wasm": instance.executable.wasm_hash.hash.hex()}
        storage = None if instance.storage is None else [
            {"key": _json_of(entry.key), "val": _json_of(entry.val)} for entry in instance.storage.sc_map]
        return {"contract_instance": {"executable": executable, "storage": storage}}
    if kind == xdr.SCValType.SCV_VOID:
        return "void"
    if kind == xdr.SCValType.SCV_LEDGER_KEY_CONTRACT_INSTANCE:
        return "ledger_key_contract_instance"
    if kind == xdr.SCValType.SCV_BOOL:
        return {"bool": value.b}
    if kind in (xdr.SCValType.SCV_U32, xdr.SCValType.SCV_I32):
        return {_SMALL_INTS[kind]: scval.to_native(value)}
    if kind in _WIDE_INTS:
        return {_WIDE_INTS[kind]: str(scval.to_native(value))}
    native: Any = scval.to_native(value)
    if kind == xdr.SCValType.SCV_BYTES:
        return {"bytes": native.hex()}
    if kind == xdr.SCValType.SCV_STRING:
        return {"string": native.decode(errors="replace")}
    if kind == xdr.SCValType.SCV_SYMBOL:
        return {"symbol": native}
    if kind == xdr.SCValType.SCV_ADDRESS:
        return {"address": native.address}
    if kind == xdr.SCValType.SCV_VEC:
        return {"vec": None if value.vec is None else [_json_of(item) for item in value.vec.sc_vec]}
    if kind == xdr.SCValType.SCV_MAP:
        return {"map": None if value.map is None else
                [{"key": _json_of(entry.key), "val": _json_of(entry.val)} for entry in value.map.sc_map]}
    raise ValueError(f"{kind.name} has no JSON form here; neither the events nor the storage of FlowFi carry one")
