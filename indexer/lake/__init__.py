"""The data-lake reader: Stellar ledgers from a SEP-54 data lake (as Galexie writes them) or from files of
LedgerCloseMeta, turned into contract events exactly as Stellar RPC's getEvents gives them.

    source ─▶ layout (which objects) ─▶ objects (fetch, decompress; in parallel) ─▶ ledgers (framing)
           ─▶ walk (XDR to events; skip steps over the rest; reference is stellar-sdk's reading) ─▶ LedgerEvents

`read_ledgers` is the one way in; it yields each ledger read, in order, with its events (`LakeEvent`,
which gives getEvents' JSON or the RPC client's `RawEvent`). `newest_ledger` says where a lake ends, and
`check_network` refuses a lake of another network. Failures are `LakeError`s (errors.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from stellar_sdk import StrKey

from indexer.lake import objects
from indexer.lake.errors import (
    LakeDataError,
    LakeEndsBefore,
    LakeError,
    LakeNetworkMismatch,
    LakeSourceError,
    LakeUnavailable,
)
from indexer.lake.event import LakeEvent, LedgerEvents
from indexer.lake.layout import GENESIS, Lake, SingleObject, open_source
from indexer.lake.ledgers import object_ledgers

__all__ = ["LakeDataError", "LakeEndsBefore", "LakeError", "LakeEvent", "LakeNetworkMismatch", "LakeSourceError",
           "LakeUnavailable", "LedgerEvents", "check_network", "newest_ledger", "read_ledgers"]


def read_ledgers(
    source: str,
    *,
    contracts: Iterable[str] = (),
    start: int | None = None,
    end: int | None = None,
    concurrency: int = objects.DEFAULT_CONCURRENCY,
    network: str | None = None,
) -> Iterator[LedgerEvents]:
    """The ledgers of `source` from `start` to `end` (inclusive; default: all it holds), each with its
    events, or only the events of `contracts` (C... addresses) when some are given.

    On a lake root only the objects holding start..end are read. Without `end`, a lake that can be listed
    is read to its newest ledger as of now; one on a plain web server is read until its first missing
    object. With `network` (a passphrase), a lake whose manifest names another network is refused."""
    want = _contract_ids(contracts)
    if start is not None and end is not None and start > end:
        raise LakeSourceError(f"the start ledger {start} is after the end ledger {end}")
    where = open_source(source)
    if network is not None:
        _check(where, network)
    if isinstance(where, Lake):
        yield from _lake(where, want, start, end, concurrency)
        return
    data = objects.read(where.store, where.key, where.name)
    if data is None:
        raise LakeSourceError(f"{where.name} does not exist")
    yield from _whole_range(object_ledgers(data, where.name, want), where.name, start, end)


def _whole_range(ledgers: Iterable[LedgerEvents], name: str, start: int | None,
                 end: int | None) -> Iterator[LedgerEvents]:
    """The ledgers start..end of an object or a file. From a `start`, each of them: LakeSourceError for one
    it lacks (it may hold any ledgers, where a lake's objects are found by the ledgers they hold); without
    one, those it holds up to `end`, the last of them `end` itself."""
    expected, last = start, None
    for ledger in ledgers:
        if (start is not None and ledger.sequence < start) or (end is not None and ledger.sequence > end):
            continue
        if expected is not None:
            if ledger.sequence != expected:
                raise LakeSourceError(f"{name} has no ledger {expected} (the next it holds is {ledger.sequence}): "
                                      "give the lake's root, or a range the file holds")
            expected += 1
        last = ledger.sequence
        yield ledger
    if expected is not None and expected == start:
        raise LakeEndsBefore(f"{name} has no ledger {start} or later: give the lake's root, or a range the file "
                             "holds")
    missing = None
    if expected is not None and end is not None and expected <= end:
        missing = str(expected)
    elif end is not None and (last is None or last < end):
        missing = str(end) if last is None else str(last + 1)
    if missing is not None:
        raise LakeSourceError(f"{name} has no ledger {missing}: give the lake's root, or a range the file holds")


def newest_ledger(source: str) -> int | None:
    """The newest ledger of a lake that can be listed; None for one on a plain web server, and for an object
    or a file (known only by reading it)."""
    where = open_source(source)
    return where.newest_ledger() if isinstance(where, Lake) and where.listable else None


def check_network(source: str, passphrase: str) -> None:
    """LakeNetworkMismatch when `source` is a lake whose manifest names another network than `passphrase`.
    An object or a file says nothing of its network, and neither does a manifest without networkPassphrase."""
    _check(open_source(source), passphrase)


def _check(where: Lake | SingleObject, passphrase: str) -> None:
    if isinstance(where, Lake) and where.config.network_passphrase not in ("", passphrase):
        raise LakeNetworkMismatch(
            f"{where.name} holds the ledgers of the network {where.config.network_passphrase!r}, not of "
            f"{passphrase!r}: give the lake of the configured network, or set FLOWFI_NETWORK_PASSPHRASE"
        )


def _lake(lake: Lake, want: frozenset[bytes] | None, start: int | None, end: int | None,
          concurrency: int) -> Iterator[LedgerEvents]:
    if start is None:
        if not lake.listable:
            raise LakeSourceError(f"{lake.name} is on a web server, which cannot list its objects: give --start, "
                                  "the first ledger to read")
        start = lake.oldest_ledger()
    if end is None and lake.listable:
        end = lake.newest_ledger()
        if start > end:
            raise LakeSourceError(f"{lake.name} ends at ledger {end}: ledger {start} is not there yet")
    config = lake.config

    def read(first: int) -> tuple[int, str, bytes | None]:
        key = config.object_key(first)
        return first, key, objects.read(lake.store, key, f"{lake.name}/{key}")

    for first, key, data in objects.prefetched(lake.batches(start, end), read, concurrency):
        name = f"{lake.name}/{key}"
        if data is None:
            if end is None and first > config.batch_start(start):
                return  # an open-ended read on a web server: the lake ends here
            raise LakeSourceError(f"{name} does not exist: the lake has no ledger {max(first, start)}; read a range "
                                  "the lake holds")
        last = first + config.ledgers_per_batch - 1
        expected = max(first, GENESIS)  # the network's first batch starts before its first ledger
        for ledger in object_ledgers(data, name, want):
            if not first <= ledger.sequence <= last:
                raise LakeDataError(f"{name} holds ledger {ledger.sequence}, outside its range {first}-{last}; the "
                                    "lake is corrupt")
            if ledger.sequence != expected and not (expected == GENESIS and ledger.sequence < GENESIS):
                raise LakeDataError(f"{name} holds ledger {ledger.sequence} where ledger {expected} belongs; the "
                                    "lake is corrupt")
            expected = ledger.sequence + 1
            if ledger.sequence > (end if end is not None else last):
                return
            if ledger.sequence >= start:
                yield ledger
        if expected <= last:
            raise LakeDataError(f"{name} ends at ledger {expected - 1}, short of its range {first}-{last}; the lake "
                                "is corrupt")


def _contract_ids(contracts: Iterable[str]) -> frozenset[bytes] | None:
    """The 32-byte ids of C... addresses; None for none (every contract)."""
    ids = set()
    for text in contracts:
        try:
            ids.add(StrKey.decode_contract(text))
        except ValueError as exc:
            raise LakeSourceError(f"{text!r} is not a contract address (C..., 56 characters)") from exc
    return frozenset(ids) if ids else None
