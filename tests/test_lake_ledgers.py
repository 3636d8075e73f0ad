"""The ledgers in an object's bytes: each framing, stellar-sdk taking over a ledger the walk cannot read,
and bytes that are not ledgers named with where they are."""

from __future__ import annotations

import struct

import pytest

from indexer.lake import LakeDataError, ledgers, skip
from indexer.lake.ledgers import object_ledgers as ledgers_in
from tests.lake_files import FEES, MAINNET_BATCH, META_V3, decompressed, ledger_spans


def _events(buf: bytes, name: str = "x") -> list[tuple[int, int]]:
    return [(ledger.sequence, len(ledger.events)) for ledger in ledgers_in(buf, name)]


def test_a_record_marked_stream_a_batch_and_a_plain_stream_give_the_same_ledgers() -> None:
    buf = decompressed(META_V3)
    spans = ledger_spans(buf)
    plain = b"".join(buf[start:end] for start, end in spans)
    first, last = _events(buf)[0][0], _events(buf)[-1][0]
    batch = struct.pack(">III", first, last, len(spans)) + plain
    assert _events(buf) == _events(plain) == _events(batch)
    assert sum(n for _, n in _events(buf)) == 12


def test_a_batch_without_the_wanted_contract_is_not_walked() -> None:
    buf = decompressed(MAINNET_BATCH)
    assert [(le.sequence, le.events) for le in ledgers_in(buf, "x", frozenset({bytes(32)}))] == [(53312000, ())]


def test_a_ledger_the_walk_cannot_read_is_read_by_stellar_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = decompressed(FEES)
    walked = list(ledgers_in(buf, FEES))

    def unknown(*args: object) -> None:
        raise skip.Unsupported("an arm from a later protocol")

    monkeypatch.setattr(ledgers, "walk_ledger", unknown)
    assert list(ledgers_in(buf, FEES)) == walked


def test_a_truncated_record_is_an_error_naming_the_file() -> None:
    buf = decompressed(FEES)
    with pytest.raises(LakeDataError, match=rf"^{FEES}: the record at byte \d+ is truncated"):
        list(ledgers_in(buf[:-10], FEES))


def test_corrupt_xdr_is_an_error_naming_the_object_and_where() -> None:
    buf = bytearray(decompressed(META_V3))
    start, end = ledger_spans(bytes(buf))[3]
    buf[start:start + 4] = struct.pack(">I", 9)  # a LedgerCloseMeta version that does not exist
    with pytest.raises(LakeDataError, match=rf"^{META_V3}: the ledger at byte {start} is not valid LedgerCloseMeta"):
        list(ledgers_in(bytes(buf), META_V3))


def test_bytes_that_are_not_ledgers_are_refused() -> None:
    with pytest.raises(LakeDataError, match="is not LedgerCloseMeta XDR"):
        list(ledgers_in(b"PK\x03\x04 a zip file, say" + bytes(20), "archive.zip"))
    with pytest.raises(LakeDataError, match="too few"):
        list(ledgers_in(b"\x00\x00", "tiny"))
