"""The ledgers in an object's bytes, and their events.

Three layouts occur, told apart by their first words:

    record-marked stream   4-byte length with the high bit set, then one LedgerCloseMeta; repeated
                           (what stellar-core and Galexie's tools write to files)
    LedgerCloseMetaBatch   first and last ledger, a count, the LedgerCloseMetas (a lake object)
    plain stream           LedgerCloseMetas one after another (each starts with its version: 0, 1 or 2)

Each ledger is read by `walk`; one holding XDR the walk does not know is read again by `reference`
(stellar-sdk), and bytes neither can read are an error naming the object and where in it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from indexer.lake import reference, skip
from indexer.lake.errors import LakeDataError
from indexer.lake.event import LedgerEvents
from indexer.lake.walk import walk_ledger

_U32 = skip.U32
_RECORD_LAST = 0x80000000


def object_ledgers(buf: bytes, name: str, want: frozenset[bytes] | None = None) -> Iterator[LedgerEvents]:
    """The events of every ledger in `buf`, the decompressed bytes of the object `name`."""
    if len(buf) < 12:
        raise LakeDataError(f"{name}: {len(buf)} bytes are too few to hold a ledger; the object is truncated")
    first, second, third = struct.unpack_from(">III", buf)
    if first & _RECORD_LAST:
        yield from _records(buf, name, want)
    elif third and second >= first and third == second - first + 1 and len(buf) >= 16 and _U32(buf, 12)[0] <= 2:
        yield from _batch(buf, name, want, first, third)
    elif first <= 2:
        pos = 0
        while pos < len(buf):
            events, pos = _ledger(buf, pos, None, name, want)
            yield events
    else:
        raise LakeDataError(f"{name} is not LedgerCloseMeta XDR (it starts with {buf[:8].hex()}): give a data lake "
                            "object or a file of LedgerCloseMeta")


def _records(buf: bytes, name: str, want: frozenset[bytes] | None) -> Iterator[LedgerEvents]:
    """RFC 5531 record marking: fragments whose 4-byte header holds a length, the high bit on the last."""
    pos = 0
    while pos < len(buf):
        start = pos
        fragments = []
        while True:
            if pos + 4 > len(buf):
                raise LakeDataError(f"{name}: the record at byte {start} is truncated")
            mark = _U32(buf, pos)[0]
            end = pos + 4 + (mark & ~_RECORD_LAST)
            if end > len(buf):
                raise LakeDataError(f"{name}: the record at byte {start} is truncated ({end - len(buf)} bytes "
                                    "missing); the file is incomplete")
            fragments.append((pos + 4, end))
            pos = end
            if mark & _RECORD_LAST:
                break
        if len(fragments) == 1:
            record, (lo, hi) = buf, fragments[0]
        else:
            record = b"".join(buf[a:b] for a, b in fragments)
            lo, hi = 0, len(record)
        yield _ledger(record, lo, hi, name, want)[0]


def _batch(buf: bytes, name: str, want: frozenset[bytes] | None, first: int, count: int) -> Iterator[LedgerEvents]:
    if want is not None and not any(buf.find(cid, 12) >= 0 for cid in want):
        # None of the contracts occurs in the whole batch; the batch header names its ledgers.
        for sequence in range(first, first + count):
            yield LedgerEvents(sequence, ())
        return
    pos = 12
    for _ in range(count):
        events, pos = _ledger(buf, pos, None, name, want)
        yield events
    if pos != len(buf):
        raise LakeDataError(f"{name}: {len(buf) - pos} bytes after the batch's last ledger; the object is corrupt")


def _ledger(
    buf: bytes, pos: int, end: int | None, name: str, want: frozenset[bytes] | None,
) -> tuple[LedgerEvents, int]:
    """One LedgerCloseMeta's events and where it ends: walked, or read by stellar-sdk when the walk cannot."""
    try:
        return walk_ledger(buf, pos, end, want)
    except (skip.Unsupported, struct.error, RecursionError):
        pass
    try:
        lcm, stop = reference.decode_ledger(buf, pos, end)
    except ValueError as exc:
        raise LakeDataError(f"{name}: the ledger at byte {pos} is not valid LedgerCloseMeta XDR ({exc}); the "
                            "object is truncated or corrupt") from exc
    return reference.ledger_events(lcm, want), stop
