"""Where a source's ledgers are: a data lake's manifest and object names (SEP-54, as Galexie writes them),
and the stores that hold them.

A lake root holds `.config.json` and the ledgers beside it, grouped into batches (one object each) and
batches into partitions (folders):

    <root>/.config.json      {"networkPassphrase", "compression": "zstd", "ledgersPerBatch", "batchesPerPartition"}
    <root>/FFFFFFFF--0-63999/FFFFFC1A--997.xdr.zst
           ^ 0xFFFFFFFF - first, first-last ledger of the partition (no folder when a partition holds one batch)
                             ^ 0xFFFFFFFF - first, first[-last] ledger of the batch

Reversed numbers make the newest names sort first. The object holding a ledger is found by arithmetic
alone, so a reader with a ledger range opens just the objects it needs, on any store; listing is only
needed to find a lake's oldest and newest ledgers when the range is open.

A source is a lake root, one object, or a file of LedgerCloseMeta: a local path, an `s3://bucket/path`
(read anonymously; the bucket's region is looked up unless AWS_REGION is set) or an `http(s)://` URL
(an S3 endpoint's URL is read as S3, so it can be listed; any other web server serves objects by name
only). Stores are obstore's: one Rust HTTP client with retries and backoff for S3 and HTTP alike, no
Python dependencies, and calls that release the GIL so that objects download in parallel threads.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from obstore.store import HTTPStore, LocalStore, S3Store

from indexer.lake.errors import LakeSourceError, LakeUnavailable

if TYPE_CHECKING:
    from obstore.store import S3Config

CONFIG_NAME = ".config.json"
_PARTITION = re.compile(r"[0-9A-F]{8}--(\d+)-(\d+)")
_BATCH = re.compile(r"[0-9A-F]{8}--(\d+)(?:-(\d+))?\.xdr\.zstd?")
_S3_HOST = re.compile(r"(^|\.)s3[.-]([a-z0-9-]+\.)?amazonaws\.com$")
_S3_PLACE_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT", "AWS_ENDPOINT_URL")
_MAX_UINT32 = 0xFFFFFFFF
GENESIS = 2  # the first ledger of every network

Store = LocalStore | S3Store | HTTPStore


@dataclass(frozen=True, slots=True)
class LakeConfig:
    """A lake's manifest, `.config.json`."""

    network_passphrase: str
    ledgers_per_batch: int
    batches_per_partition: int

    @classmethod
    def parse(cls, data: bytes, where: str) -> LakeConfig:
        try:
            manifest = json.loads(data)
            config = cls(
                network_passphrase=str(manifest.get("networkPassphrase", "")),
                ledgers_per_batch=int(manifest["ledgersPerBatch"]),
                batches_per_partition=int(manifest["batchesPerPartition"]),
            )
            compression = manifest.get("compression", "zstd")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise LakeSourceError(
                f"{where} is not a data lake manifest ({exc!r}); it needs ledgersPerBatch and batchesPerPartition"
            ) from exc
        if compression != "zstd":
            raise LakeSourceError(f"{where}: compression {compression!r} is not supported (only zstd)")
        if config.ledgers_per_batch < 1 or config.batches_per_partition < 1:
            raise LakeSourceError(f"{where}: ledgersPerBatch and batchesPerPartition must be at least 1")
        return config

    def batch_start(self, ledger: int) -> int:
        """The first ledger of the batch that holds `ledger`."""
        return ledger - ledger % self.ledgers_per_batch

    def object_key(self, ledger: int) -> str:
        """The name, under the root, of the object holding `ledger`."""
        first = self.batch_start(ledger)
        last = first + self.ledgers_per_batch - 1
        key = ""
        if self.batches_per_partition > 1:
            size = self.ledgers_per_batch * self.batches_per_partition
            start = ledger - ledger % size
            key = f"{_MAX_UINT32 - start:08X}--{start}-{start + size - 1}/"
        key += f"{_MAX_UINT32 - first:08X}--{first}"
        if last != first:
            key += f"-{last}"
        return key + ".xdr.zst"


@dataclass(frozen=True, slots=True)
class Lake:
    """A lake root: its store, manifest, and whether the store can list names."""

    name: str
    store: Store
    config: LakeConfig
    listable: bool

    def batches(self, start: int, end: int | None) -> range:
        """The first ledgers of the batches covering start..end (to the largest ledger when end is None)."""
        step = self.config.ledgers_per_batch
        return range(self.config.batch_start(start), _MAX_UINT32 if end is None else end + 1, step)

    def oldest_ledger(self) -> int:
        """The lake's oldest ledger: the first of its oldest batch."""
        partitions = self._names(None, folders=True)
        if self.config.batches_per_partition > 1:
            if not partitions:
                raise LakeSourceError(f"{self.name} holds no ledgers")
            oldest = max(partitions)  # reversed numbers: the oldest sorts last
            names = self._names(oldest, folders=False)
        else:
            names = self._names(None, folders=False)
        firsts = [int(m[1]) for name in names if (m := _BATCH.fullmatch(name.rsplit("/", 1)[-1]))]
        if not firsts:
            raise LakeSourceError(f"{self.name} holds no ledgers")
        return max(GENESIS, min(firsts))

    def newest_ledger(self) -> int:
        """The last ledger of the lake's newest batch."""
        if self.config.batches_per_partition > 1:
            partitions = self._names(None, folders=True)
            if not partitions:
                raise LakeSourceError(f"{self.name} holds no ledgers")
            names = self._names(min(partitions), folders=False)
        else:
            names = self._names(None, folders=False)
        lasts = [int(m[2] or m[1]) for name in names if (m := _BATCH.fullmatch(name.rsplit("/", 1)[-1]))]
        if not lasts:
            raise LakeSourceError(f"{self.name} holds no ledgers")
        return max(lasts)

    def _names(self, prefix: str | None, folders: bool) -> list[str]:
        import obstore

        try:
            listing = obstore.list_with_delimiter(self.store, prefix)
        except Exception as exc:  # obstore raises its own errors and builtin ones
            raise LakeUnavailable(f"cannot list {self.name}: {first_line(exc)}") from exc
        if folders:
            return [p for p in listing["common_prefixes"] if _PARTITION.fullmatch(p.rstrip("/").rsplit("/", 1)[-1])]
        return [o["path"] for o in listing["objects"]]


@dataclass(frozen=True, slots=True)
class SingleObject:
    """One object or file: a lake batch, or LedgerCloseMeta laid end to end (compressed or not)."""

    name: str
    store: Store | None  # None: a local file, read directly
    key: str


def open_source(text: str) -> Lake | SingleObject:
    """What `text` names: a lake root (it holds .config.json) or one object. LakeSourceError when it is
    neither, or cannot be reached."""
    if text.startswith("s3://"):
        bucket, _, path = text[5:].partition("/")
        if not bucket:
            raise LakeSourceError(f"{text!r} names no bucket; write s3://bucket/path/to/lake")
        config = _s3_config(bucket)
        return _remote(text, lambda prefix: S3Store(bucket, prefix=prefix or None, config=config),
                       path.strip("/"), listable=True)
    if text.startswith(("http://", "https://")):
        parts = urlsplit(text)
        base = f"{parts.scheme}://{parts.netloc}"
        options: dict[str, Any] = {"client_options": {"allow_http": True}} if parts.scheme == "http" else {}
        if _S3_HOST.search(parts.hostname or ""):
            return _remote(text, lambda prefix: S3Store.from_url(f"{base}/{prefix}".rstrip("/"), skip_signature=True,
                                                                 **options), parts.path.strip("/"), listable=True)
        return _remote(text, lambda prefix: HTTPStore(f"{base}/{prefix}".rstrip("/"), **options),
                       parts.path.strip("/"), listable=False)
    local = Path(text).expanduser()
    if local.is_dir():
        manifest = local / CONFIG_NAME
        if not manifest.is_file():
            raise LakeSourceError(f"{text} has no {CONFIG_NAME}: give a data lake root, one object or a file of "
                                  "LedgerCloseMeta")
        return Lake(text, LocalStore(local.resolve()), LakeConfig.parse(manifest.read_bytes(), str(manifest)),
                    listable=True)
    if local.is_file():
        return SingleObject(text, None, str(local))
    raise LakeSourceError(f"{text} does not exist: give a data lake root (a folder, s3://... or https://...), "
                          "one object or a file of LedgerCloseMeta")


def _remote(text: str, make: Any, path: str, listable: bool) -> Lake | SingleObject:
    """A remote source: one object when its last name looks like one, else a lake root."""
    import obstore

    head, _, last = path.rpartition("/")
    try:
        if ".xdr" in last:
            return SingleObject(text, make(head), last)
        store = make(path)
    except Exception as exc:  # obstore rejects a malformed URL or option
        raise LakeSourceError(f"cannot open {text}: {first_line(exc)}") from exc
    try:
        data = bytes(obstore.get(store, CONFIG_NAME).bytes())
    except FileNotFoundError as exc:
        raise LakeSourceError(f"{text} has no {CONFIG_NAME}: give a data lake root, or the URL of one object "
                              "(a name with .xdr in it)") from exc
    except Exception as exc:
        raise LakeUnavailable(f"cannot read {text}/{CONFIG_NAME}: {first_line(exc)}; check the address and the "
                              "network") from exc
    return Lake(text, store, LakeConfig.parse(data, f"{text}/{CONFIG_NAME}"), listable)


def _s3_config(bucket: str) -> S3Config:
    """Anonymous access, in the bucket's region unless the environment names a region or another endpoint."""
    config: S3Config = {"skip_signature": True}
    if not any(os.environ.get(name) for name in _S3_PLACE_VARIABLES):
        config["region"] = bucket_region(bucket)
    return config


def bucket_region(bucket: str, url: str | None = None) -> str:
    """The region of an S3 bucket, from the `x-amz-bucket-region` header S3 sends to anyone (even with a
    403 or a redirect)."""
    url = url or f"https://{bucket}.s3.amazonaws.com"
    try:
        response = httpx.head(url, timeout=15)
    except httpx.HTTPError as exc:
        raise LakeUnavailable(f"cannot reach {url} to find bucket {bucket}'s region ({exc!r}); set AWS_REGION "
                              "or check the network") from exc
    region = response.headers.get("x-amz-bucket-region")
    if not region:
        raise LakeSourceError(f"no S3 bucket {bucket!r} (HTTP {response.status_code} from {url}); check the name, "
                              "or set AWS_REGION")
    return region


def first_line(exc: BaseException) -> str:
    """An exception's message on one line (obstore's run to dozens)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
