"""Reading objects: fetching their bytes from a store, several at a time, and decompressing them.

Objects download and decompress in a small pool of threads, a bounded number ahead of the reader, and
come out in the order asked: obstore's calls and zstandard's decompression both release the GIL, so
while the reader walks one ledger the next ones arrive. (obstore's asyncio calls are not used: its
runtime can abort the interpreter at exit, which its blocking calls in threads never do.)

Galexie's zstd frames do not record their decompressed size, so they are decompressed as a stream;
several frames one after another are read as one, and a frame cut short is an error naming the object.
`zstandard` (the zstd bindings httpx and urllib3 use) decompresses the 40 MB of the largest test file
in about 0.1 s.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import obstore
import zstandard

from indexer.lake.errors import LakeDataError, LakeUnavailable
from indexer.lake.layout import Store, first_line

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
DEFAULT_CONCURRENCY = 8

K = TypeVar("K")
T = TypeVar("T")


def fetch(store: Store | None, key: str, name: str) -> bytes | None:
    """An object's bytes (`store` None: `key` is a local file's path); None when there is no such object."""
    try:
        if store is None:
            return Path(key).read_bytes()
        return bytes(obstore.get(store, key).bytes())
    except FileNotFoundError:
        return None
    except Exception as exc:  # obstore's errors after its own retries, and OSErrors
        raise LakeUnavailable(f"cannot read {name}: {first_line(exc)}; check the network and try again") from exc


def decompress(data: bytes, name: str) -> bytes:
    """The bytes of a zstd object (one frame or several), or `data` itself when it is not compressed."""
    if not data.startswith(ZSTD_MAGIC):
        return data
    parts = []
    decompressor = zstandard.ZstdDecompressor()
    while data:
        stream = decompressor.decompressobj()
        try:
            parts.append(stream.decompress(data))
        except zstandard.ZstdError as exc:
            raise LakeDataError(f"{name}: corrupt zstd data ({exc}); the object is damaged, fetch it again") from exc
        if not stream.eof:
            raise LakeDataError(f"{name}: the zstd data ends too soon; the object is truncated, fetch it again")
        data = stream.unused_data
    return b"".join(parts)


def read(store: Store | None, key: str, name: str) -> bytes | None:
    """An object fetched and decompressed; None when there is no such object."""
    data = fetch(store, key, name)
    return None if data is None else decompress(data, name)


def prefetched(jobs: Iterable[K], work: Callable[[K], T], concurrency: int = DEFAULT_CONCURRENCY) -> Iterator[T]:
    """work(job) for each job, in order, with up to `concurrency` jobs running ahead in threads. Stopping
    early (or an error) cancels what has not started."""
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="lake") as pool:
        pending: deque[Future[T]] = deque()
        queue = iter(jobs)
        try:
            for job in queue:
                pending.append(pool.submit(work, job))
                if len(pending) >= concurrency:
                    break
            while pending:
                result = pending.popleft().result()
                for job in queue:
                    pending.append(pool.submit(work, job))
                    break
                yield result
        finally:
            for future in pending:
                future.cancel()
