"""Reading objects: zstd streams without a recorded size, truncation and corruption named, and downloads
running a bounded number ahead of the reader, in order."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import zstandard

from indexer.lake import LakeDataError
from indexer.lake.objects import decompress, fetch, prefetched
from tests.lake_files import DATALAKE, MAINNET_BATCH, decompressed


def test_a_galexie_object_decompresses_as_a_stream() -> None:
    data = (DATALAKE / MAINNET_BATCH).read_bytes()
    assert zstandard.get_frame_parameters(data).content_size == zstandard.CONTENTSIZE_UNKNOWN
    out = decompress(data, MAINNET_BATCH)
    assert len(out) == 372_492 and out[:8] == bytes.fromhex("032d7a00032d7a00")  # ledgers 53312000-53312000


def test_frames_one_after_another_are_read_as_one_stream() -> None:
    parts = [b"first ledger bytes " * 50, b"second " * 70]
    data = b"".join(zstandard.ZstdCompressor().compress(part) for part in parts)
    assert decompress(data, "x") == b"".join(parts)


def test_bytes_that_are_not_zstd_pass_through() -> None:
    assert decompress(b"\x80\x00\x00\x10rest", "x") == b"\x80\x00\x00\x10rest"


def test_a_truncated_object_is_an_error_naming_it() -> None:
    data = (DATALAKE / MAINNET_BATCH).read_bytes()
    with pytest.raises(LakeDataError, match=r"^FCD285FF--53312000\.xdr\.zstd: the zstd data ends too soon"):
        decompress(data[:-100], MAINNET_BATCH)


def test_a_corrupt_object_is_an_error_naming_it() -> None:
    data = bytearray((DATALAKE / MAINNET_BATCH).read_bytes())
    data[5000:5100] = bytes(100)
    with pytest.raises(LakeDataError, match=r"^FCD285FF--53312000\.xdr\.zstd: corrupt zstd data"):
        decompress(bytes(data), MAINNET_BATCH)
    assert decompressed(MAINNET_BATCH)  # the file itself is intact


def test_a_missing_local_file_is_none(tmp_path: Path) -> None:
    assert fetch(None, str(tmp_path / "nothing"), "nothing") is None


def test_prefetched_keeps_order_and_a_bounded_number_running() -> None:
    running = 0
    most = 0
    lock = threading.Lock()

    def work(n: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.01 * (n % 3))  # later jobs may finish first
        with lock:
            running -= 1
        return n * n

    assert list(prefetched(range(40), work, concurrency=4)) == [n * n for n in range(40)]
    assert 1 < most <= 4


def test_stopping_early_starts_no_more_work() -> None:
    started: list[int] = []

    def work(n: int) -> int:
        started.append(n)
        return n

    for n in prefetched(range(1000), work, concurrency=3):
        if n == 5:
            break
    assert len(started) <= 5 + 3 + 1
