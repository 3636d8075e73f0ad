"""Lake: how fast the data-lake reader turns ledgers into events, against stellar-sdk's full decode.

The input is the largest test file: 30 protocol-28 ledgers of 14,760 Soroban transactions and 72,300
events, zstd-compressed (3.7 MB, 40 MB of XDR). The reader's figure is `read_ledgers` on the file, as
`flowfi lake events` runs it: read, decompress, walk every ledger, make every event (the best of a few
runs). In the same run, the baseline decodes the same ledgers with stellar-sdk: decompress, then
`LedgerCloseMeta.unpack` for each ledger, and nothing more (taking the events out of the decoded
objects, as `indexer/lake/reference.py` does, would cost it more again). Both report ledgers/s and
events/s (the events the ledgers hold); the ratio is of ledgers/s.

Also reported: the reader with a contract filter naming a contract absent from the file (how a backfill
of one contract passes the ledgers that do not hold it), and the parts alone (decompression, the walk).

    python -m bench lake
"""

from __future__ import annotations

import gc
import hashlib
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stellar_sdk import StrKey

from bench import Postgres
from indexer.lake import read_ledgers, reference
from indexer.lake.objects import decompress
from indexer.lake.walk import walk_ledger

FILE = Path(__file__).resolve().parent.parent / "tests" / "data" / "datalake" / "load-test-ledgers-v28.xdr.zstd"
ABSENT_CONTRACT = StrKey.encode_contract(hashlib.sha256(b"a contract of no ledger here").digest())
TARGET_RATIO = 20


def _best(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The shortest of `repeat` runs, and the last run's result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def _spans(buf: bytes, ledgers: int) -> list[tuple[int, int]]:
    """The first `ledgers` records of a record-marked stream."""
    spans: list[tuple[int, int]] = []
    pos = 0
    while pos < len(buf) and len(spans) < ledgers:
        length = struct.unpack_from(">I", buf, pos)[0] & 0x7FFFFFFF
        spans.append((pos + 4, pos + 4 + length))
        pos += 4 + length
    return spans


def _reader(source: str, contracts: tuple[str, ...] = ()) -> tuple[int, int]:
    ledgers = events = 0
    for ledger in read_ledgers(source, contracts=contracts):
        ledgers += 1
        events += len(ledger.events)
    return ledgers, events


def _sdk(data: bytes, ledgers: int) -> int:
    buf = decompress(data, FILE.name)
    spans = _spans(buf, ledgers)
    for start, end in spans:
        reference.decode_ledger(buf, start, end)
    return len(spans)


async def measure(postgres: Postgres, repeat: int = 3, baseline_ledgers: int = 30) -> dict[str, Any]:
    """`baseline_ledgers`: how many of the file's ledgers stellar-sdk decodes, best of two runs (all 30 take
    it 15 to 25 s a run)."""
    del postgres  # the reader needs no database
    data = FILE.read_bytes()
    reader_s, (ledgers, events) = _best(lambda: _reader(str(FILE)), repeat)
    filtered_s, (filtered_ledgers, filtered_events) = _best(lambda: _reader(str(FILE), (ABSENT_CONTRACT,)), repeat)
    decompress_s, buf = _best(lambda: decompress(data, FILE.name), repeat)
    spans = _spans(buf, ledgers)
    walk_s, _ = _best(lambda: sum(len(walk_ledger(buf, start, end)[0].events) for start, end in spans), repeat)
    sdk_s, sdk_ledgers = _best(lambda: _sdk(data, baseline_ledgers), 2)
    sdk_events = sum(len(walk_ledger(buf, start, end)[0].events) for start, end in spans[:sdk_ledgers])
    assert filtered_ledgers == ledgers and filtered_events == 0
    ledgers_per_s = ledgers / reader_s
    sdk_ledgers_per_s = sdk_ledgers / sdk_s
    ratio = ledgers_per_s / sdk_ledgers_per_s
    return {
        "file": FILE.name,
        "ledgers": ledgers,
        "events": events,
        "ledgers_per_s": round(ledgers_per_s, 1),
        "events_per_s": round(events / reader_s),
        "sdk_ledgers": sdk_ledgers,
        "sdk_ledgers_per_s": round(sdk_ledgers_per_s, 2),
        "sdk_events_per_s": round(sdk_events / sdk_s),
        "ratio": round(ratio, 1),
        "filtered_ledgers_per_s": round(filtered_ledgers / filtered_s),
        "decompress_s": round(decompress_s, 3),
        "walk_ledgers_per_s": round(ledgers / walk_s, 1),
        "met": ratio >= TARGET_RATIO,
    }
