"""Decoding an event's value by the layout of one decoded before: the fast path of `indexer.decode`.

Events of one kind nearly always share a layout: the same fields in the same order, each value of the
same type (and an address of the same kind, so of the same size). Once the general path (scval's
parser, then `decode.typed_event`) has decoded an event, its layout is kept as a `Shape`: one struct
format that reads the whole value, the bytes that must recur (the map's header, each field's name and
type tag, an address's kind), and where each field's value lies. A value of the same kind and length
whose recurring bytes are all there has that layout: one `unpack` reads it, with none of the general
path's calls per value. Anything else (another layout, a bool that is neither 0 nor 1, a stream id that
differs from the topic's) goes to the general path, which decides, and may teach a new layout.

Only values made of fixed-size scalars have a shape (u32, u64, i128, bool, void, address): a layout with
bytes, strings or containers is left to the general path. The tests prove both paths give the same
result for every event, valid or not.
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from indexer.events import FlowFiEvent, field_types
from indexer.scval import ADDRESS_SIZE, Sc, ScValError, address_of

# Each scalar's payload: its struct format (big-endian), its size in bytes and the items it unpacks to.
# An address's payload here is what follows its kind word, which is read with the bytes that recur.
_PAYLOADS = {"u32": ("I", 4, 1), "bool": ("I", 4, 1), "u64": ("Q", 8, 1), "i128": ("qQ", 16, 2), "void": ("", 0, 0)}
_ADDRESS_REST = tuple(size - 4 for size in ADDRESS_SIZE)  # by address kind, less the kind word
# Layouts kept: per (kind, length), and (kind, length) pairs in all, emptied when full (a few dozen in
# practice). Bounded by sizes alone, never by walking the dict, which another thread may be changing.
_MAX_SHAPES_PER_LENGTH = 8
_MAX_LENGTHS = 1_024


@dataclass(frozen=True, slots=True)
class Shape:
    kind: type[FlowFiEvent]
    unpack: Callable[[bytes], tuple[Any, ...]]
    recurring: Callable[[tuple[Any, ...]], tuple[bytes, ...]]  # the items that must equal `expected`
    expected: tuple[bytes, ...]
    # per field: its name, its tag, the index of its first item, an address's kind word, whether declared
    fields: tuple[tuple[str, str, int, bytes, bool], ...]


_shapes: dict[tuple[type[FlowFiEvent], int], list[Shape]] = {}


def read(kind: type[FlowFiEvent], value_b64: str, topic: list[Sc]) -> tuple[dict[str, Any], FlowFiEvent] | None:
    """The value's JSON and the typed event, where it has a layout seen before; else None."""
    try:
        buf = binascii.a2b_base64(value_b64, strict_mode=True)
    except (binascii.Error, ValueError, TypeError):
        return None
    for shape in _shapes.get((kind, len(buf)), ()):
        items = shape.unpack(buf)
        if shape.recurring(items) == shape.expected:
            return _typed(shape, items, topic)
    return None


def _typed(shape: Shape, items: tuple[Any, ...], topic: list[Sc]) -> tuple[dict[str, Any], FlowFiEvent] | None:
    value_json: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    value: Any
    json: Any
    for name, tag, i, address_kind, declared in shape.fields:
        if tag == "address":
            try:
                value = json = address_of(address_kind + items[i])
            except ScValError:
                return None
        elif tag == "i128":
            value = (items[i] << 64) | items[i + 1]
            json = str(value)
        elif tag == "u64":
            value = items[i]
            json = str(value)
        elif tag == "u32":
            value = json = items[i]
        elif tag == "bool":
            if items[i] > 1:
                return None
            value = json = items[i] == 1
        else:  # void
            value = json = None
        value_json[name] = json
        if declared:
            fields[name] = value
    kind = shape.kind
    if kind.is_stream_event:
        at = len(kind.symbols)
        if len(topic) <= at or topic[at] != ("u64", fields["stream_id"]):
            return None
    return value_json, kind(**fields)


def learn(kind: type[FlowFiEvent], value_b64: str, value: Sc) -> None:
    """Keep the layout of a value the general path has decoded as an event of `kind`, where it has one."""
    tag, entries = value
    if tag != "map" or not entries:
        return
    names = [key[1] for key, _ in entries]
    if any(key[0] != "symbol" for key, _ in entries) or len(set(names)) != len(names):
        return
    if any(item[0] not in _PAYLOADS and item[0] != "address" for _, item in entries):
        return
    buf = binascii.a2b_base64(value_b64)
    formats, expected, recurring_at, fields = [">12s"], [buf[:12]], [0], []
    declared = field_types(kind)
    item, pos = 1, 12
    for (_, name), (value_tag, _) in entries:
        n = struct.unpack_from(">I", buf, pos + 4)[0]
        end = pos + 8 + ((n + 3) & ~3) + 4  # the key, then the value's type tag
        address_kind = b""
        if value_tag == "address":
            address_kind = buf[end : end + 4]
            end += 4
            size = _ADDRESS_REST[address_kind[3]]
            payload, items = f"{size}s", 1
        else:
            payload, size, items = _PAYLOADS[value_tag]
        formats.append(f"{end - pos}s")
        expected.append(buf[pos:end])
        recurring_at.append(item)
        fields.append((name, value_tag, item + 1, address_kind, name in declared))
        formats.append(payload)
        item += 1 + items
        pos = end + size
    if pos != len(buf):
        return
    shape = Shape(kind, struct.Struct("".join(formats)).unpack, itemgetter(*recurring_at), tuple(expected),
                  tuple(fields))
    if len(_shapes) >= _MAX_LENGTHS:
        _shapes.clear()
    known = _shapes.setdefault((kind, len(buf)), [])
    if len(known) < _MAX_SHAPES_PER_LENGTH:
        known.append(shape)
