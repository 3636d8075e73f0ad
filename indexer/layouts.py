"""Parsing a contract's storage entry by the layout of one parsed before: the fast path of
`scval.parse_contract_data` for the entries the worker reads by the hundred (a stream's stored
schedule, for each creation whose event leaves it out).

The entries of one kind nearly always share a layout: the same key and the same struct, its fields in
the same order, each of the same type (an address of the same kind, an enum of the same variant).
Once the general parser has read an entry, its layout is kept: one struct format that reads the whole
entry, the bytes that must recur (every type tag, map and vector header, Symbol, enum variant and
address kind), and how the parsed value is built from the rest. An entry of the same length whose
recurring bytes are all there has that layout: one `unpack` reads it and the value is built without
the general parser's call per value. Anything else (another layout; in the key or the value, a bool
that is neither 0 nor 1 or an address that is not one) goes to the general parser, which decides, and
may teach a new layout.

Only entries made of the values FlowFi stores have a layout (integers up to 128 bits, bools, voids,
Symbols, addresses, and vectors and maps of them): one holding bytes, a string or another type is left
to the general parser. The tests check that both paths give the same result for a local network's
stream entries, random contract data and each of them corrupted byte by byte.
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from indexer.scval import ADDRESS_SIZE, Sc, ScValError, address_of, parse_contract_data

# A builder makes one parsed value from the items the layout's format unpacked.
Builder = Callable[[tuple[Any, ...]], Sc]

# Each integer's payload: its struct format (big-endian) and size in bytes.
_INTEGERS = {"u32": ("I", 4), "i32": ("i", 4), "u64": ("Q", 8), "i64": ("q", 8), "timepoint": ("Q", 8),
             "duration": ("Q", 8), "u128": ("QQ", 16), "i128": ("qQ", 16)}
# Layouts kept: per length (the oldest replaced by a new one), and lengths in all (all forgotten when
# full). A stream's entry has a few: by schedule, status, dispute, whether it has an arbiter, a cliff or
# a pause, and whether its parties are accounts or contracts.
_MAX_LAYOUTS_PER_LENGTH = 8
_MAX_LENGTHS = 1_024


class _NoLayout(Exception):
    """The entry holds a value that has no layout here (bytes, a string, a 256-bit integer...)."""


class _Invalid(Exception):
    """A payload the layout's types do not allow (the general parser says why)."""


@dataclass(frozen=True, slots=True)
class Layout:
    unpack: Callable[[bytes], tuple[Any, ...]]
    recurring: Callable[[tuple[Any, ...]], tuple[bytes, ...]]  # the items that must equal `expected`
    expected: tuple[bytes, ...]
    build: Builder  # the entry's value


_layouts: dict[int, list[Layout]] = {}


def contract_data_value(b64: str) -> Sc:
    """The value of a base64 LedgerEntryData holding contract data, as `scval.parse_contract_data` reads
    it (and ScValError where that raises it)."""
    try:
        buf = binascii.a2b_base64(b64, strict_mode=True)
    except (ValueError, TypeError):  # binascii.Error is a ValueError
        return parse_contract_data(b64)[1]
    for layout in _layouts.get(len(buf), ()):
        items = layout.unpack(buf)
        if layout.recurring(items) == layout.expected:
            try:
                return layout.build(items)
            except _Invalid:  # its layout is known: the general parser says what is wrong
                return parse_contract_data(b64)[1]
    key, value = parse_contract_data(b64)
    _learn(buf, key, value)
    return value


class _Learner:
    """Walks an entry's bytes beside its parsed value and writes down its layout."""

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.formats: list[str] = []
        self.expected: list[bytes] = []
        self.recurring_at: list[int] = []
        self.items = 0
        self.run_start: int | None = None  # where the recurring bytes not yet written down begin

    def recur(self, start: int) -> None:
        """The bytes from `start` to the next payload (or the end) must recur."""
        if self.run_start is None:
            self.run_start = start

    def payload(self, fmt: str, start: int, items: int) -> int:
        """A payload at `start` read with `fmt`: the index of its first item."""
        self.close(start)
        self.formats.append(fmt)
        first = self.items
        self.items += items
        return first

    def close(self, end: int) -> None:
        """The recurring bytes before `end` are written down."""
        if self.run_start is not None and end > self.run_start:
            self.formats.append(f"{end - self.run_start}s")
            self.expected.append(self.buf[self.run_start : end])
            self.recurring_at.append(self.items)
            self.items += 1
        self.run_start = None

    def value(self, pos: int, sc: Sc) -> tuple[Builder, int]:
        """How the value `sc` at `pos` is built, and the offset just after it."""
        buf, (tag, value) = self.buf, sc
        self.recur(pos)  # the type tag, and what follows it up to a payload: those bytes recur
        pos += 4
        if tag in _INTEGERS:
            fmt, size = _INTEGERS[tag]
            at = self.payload(fmt, pos, len(fmt))
            if size == 16:
                return (lambda items: (tag, (items[at] << 64) | items[at + 1])), pos + size
            return (lambda items: (tag, items[at])), pos + size
        if tag == "bool":
            at = self.payload("I", pos, 1)
            return (lambda items: _checked_bool(items[at])), pos + 4
        if tag == "address":
            kind = buf[pos : pos + 4]
            size = ADDRESS_SIZE[kind[3]]
            at = self.payload(f"{size - 4}s", pos + 4, 1)
            return (lambda items: _checked_address(kind + items[at])), pos + size
        if tag in ("void", "symbol"):
            end = pos if tag == "void" else pos + 4 + ((struct.unpack_from(">I", buf, pos)[0] + 3) & ~3)
            return (lambda items: sc), end
        if tag in ("vec", "map"):
            pos += 8 if struct.unpack_from(">I", buf, pos)[0] else 4  # "present", then the count if present
            if tag == "vec":
                builders = []
                for item in value:
                    build, pos = self.value(pos, item)
                    builders.append(build)
                return (lambda items: ("vec", [build(items) for build in builders])), pos
            pairs = []
            for key, item in value:
                build_key, pos = self.value(pos, key)
                build_item, pos = self.value(pos, item)
                pairs.append((build_key, build_item))
            if all(key[0] == "symbol" for key, _ in value):  # a struct: its keys recur, so are built once
                names = [key for key, _ in value]
                values = [build for _, build in pairs]
                return (lambda items: ("map", list(zip(names, [build(items) for build in values], strict=True)))), pos
            return (lambda items: ("map", [(k(items), v(items)) for k, v in pairs])), pos
        raise _NoLayout(tag)


def _checked_bool(word: int) -> Sc:
    if word > 1:
        raise _Invalid
    return ("bool", word == 1)


def _checked_address(key: bytes) -> Sc:
    try:
        return ("address", address_of(key))
    except ScValError:
        raise _Invalid from None


def _learn(buf: bytes, key: Sc, value: Sc) -> None:
    """Keep the layout of an entry the general parser has read as `key` and `value`, where it has one."""
    learner = _Learner(buf)
    learner.recur(0)  # the entry's type, its extension and the contract
    try:
        build_key, pos = learner.value(8 + ADDRESS_SIZE[buf[11]], key)
        learner.recur(pos)  # the durability
        build_value, end = learner.value(pos + 4, value)
    except _NoLayout:
        return
    if end != len(buf):
        return
    learner.close(end)
    at = learner.recurring_at
    recurring = itemgetter(*at) if len(at) > 1 else lambda items: (items[at[0]],)  # always a tuple

    def build(items: tuple[Any, ...]) -> Sc:
        build_key(items)  # the key's bools and addresses are checked too
        return build_value(items)

    layout = Layout(struct.Struct(">" + "".join(learner.formats)).unpack, recurring, tuple(learner.expected), build)
    if len(_layouts) >= _MAX_LENGTHS:
        _layouts.clear()
    known = _layouts.setdefault(len(buf), [])
    if len(known) >= _MAX_LAYOUTS_PER_LENGTH:
        del known[0]
    known.append(layout)
