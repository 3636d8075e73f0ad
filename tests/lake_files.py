"""The data-lake test files (tests/data/datalake, provenance in tests/data/README.md) and their ledgers."""

from __future__ import annotations

import struct
from pathlib import Path

import zstandard

from indexer.lake import reference

DATALAKE = Path(__file__).parent / "data" / "datalake"
MAINNET_BATCH = "FCD285FF--53312000.xdr.zstd"
V23 = "load-test-ledgers-v23-standalone.xdr.zstd"
V28 = "load-test-ledgers-v28.xdr.zstd"
FEES = "test-lcm-21c43b92b819267f.xdr"
META_V3 = "test-lcm-318b008d239ea9d8.xdr"
TESTBUCKET = DATALAKE / "testbucket"
FILES = (MAINNET_BATCH, V23, V28, FEES, META_V3)
BUCKET_OBJECTS = tuple(sorted(p.relative_to(DATALAKE).as_posix() for p in TESTBUCKET.glob("*/*.xdr.zst")))


def decompressed(name: str) -> bytes:
    data = (DATALAKE / name).read_bytes()
    if data.startswith(b"\x28\xb5\x2f\xfd"):  # zstd
        data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def ledger_spans(buf: bytes) -> list[tuple[int, int]]:
    """Where each LedgerCloseMeta of a file starts and ends: from its record marks, or, in a batch, where
    stellar-sdk's decoding of the previous one stopped."""
    spans = []
    if buf[0] & 0x80:
        pos = 0
        while pos < len(buf):
            length = struct.unpack_from(">I", buf, pos)[0] & 0x7FFFFFFF
            spans.append((pos + 4, pos + 4 + length))
            pos += 4 + length
        return spans
    pos = 12
    for _ in range(struct.unpack_from(">I", buf, 8)[0]):
        stop = reference.decode_ledger(buf, pos)[1]
        spans.append((pos, stop))
        pos = stop
    return spans
