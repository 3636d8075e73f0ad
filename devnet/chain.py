"""The local chain: ledgers that close, transactions applied in order, and the events they emit.

Transactions queued with `submit` (or injected raw events) are applied into the next ledger in arrival
order, then the configured background traffic. Each event gets the id Stellar RPC gives it:
"%019d-%010d" % (TOID, event index) with TOID = ledger << 32 | tx index << 12 | op index; transaction
indexes start at 1 and every transaction here has a single operation (index 0). The event index counts
every contract event of the operation: the token transfers a FlowFi call makes are events of the
tokens' contracts in the same operation, so FlowFi's own events have the gaps the chain gives them.
Ids sort as text in chain order, so events are kept in one sorted list and a getEvents page is two
bisections and a slice.

The chain also holds the ledger state getLedgerEntries reads (`ledger_entry`): the contract's and the
tokens' entries with their lifetimes. Devnet operators can switch a running 8723543 contract to
c9f5d2e (`upgrade`) and set what an account allows the contract to spend (`approve`).

Ledgers older than the retention window are dropped, as Stellar RPC drops them. Close times are unix
seconds and strictly increasing: by default max(previous + 1, wall clock); tests may pass their own. A
ledger's hash covers its sequence, the previous hash, its close time and its transactions, as a real
header's does: a chain that closes the same sequence again, later or with other transactions, gives it
another hash.

`saved_state` and `restore` (used by devnet.saved) take a chain apart and put it together again without
its lock, clock, traffic, lake sink or queued transactions, which belong to the running process.

All state is guarded by one lock: the RPC server may run in another thread than the code closing
ledgers (a test, or the devnet's ledger task).
"""

from __future__ import annotations

import bisect
import concurrent.futures
import dataclasses
import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from stellar_sdk import StrKey, xdr

from devnet import entries
from devnet.contract import FlowFiContract
from devnet.terms import BUILDS, NEWEST_BUILD, ContractError, ContractTrap, Emitted, InvalidInvocation, Transfer
from devnet.tokens import Tokens
from devnet.ttl import MIN_PERSISTENT_TTL
from devnet.xdr import encode_event, encode_transfer
from indexer import ids
from indexer.events import FlowFiEvent, event_fields_json
from indexer.networks import LOCAL_CONTRACT_ID, LOCAL_PASSPHRASE

DEFAULT_PASSPHRASE = LOCAL_PASSPHRASE
DEFAULT_CONTRACT_ID = LOCAL_CONTRACT_ID
DEFAULT_RETENTION = 120_960
PROTOCOL_VERSION = 23

def iso_time(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Ledger:
    sequence: int
    close_time: int
    hash: str
    previous_hash: str

    def header(self) -> xdr.LedgerHeader:
        return xdr.LedgerHeader(
            ledger_version=xdr.Uint32(PROTOCOL_VERSION),
            previous_ledger_hash=xdr.Hash(bytes.fromhex(self.previous_hash)),
            scp_value=xdr.StellarValue(
                tx_set_hash=xdr.Hash(hashlib.sha256(self.hash.encode()).digest()),
                close_time=xdr.TimePoint(xdr.Uint64(self.close_time)),
                upgrades=[],
                ext=xdr.StellarValueExt(xdr.StellarValueType.STELLAR_VALUE_BASIC),
            ),
            tx_set_result_hash=xdr.Hash(bytes(32)),
            bucket_list_hash=xdr.Hash(bytes(32)),
            ledger_seq=xdr.Uint32(self.sequence),
            total_coins=xdr.Int64(1_000_000_000_000_000_000),
            fee_pool=xdr.Int64(0),
            inflation_seq=xdr.Uint32(0),
            id_pool=xdr.Uint64(0),
            base_fee=xdr.Uint32(100),
            base_reserve=xdr.Uint32(5_000_000),
            max_tx_set_size=xdr.Uint32(1000),
            skip_list=[xdr.Hash(bytes(32))] * 4,
            ext=xdr.LedgerHeaderExt(0),
        )

    def header_xdr(self) -> str:
        return self.header().to_xdr()  # type: ignore[no-any-return]

    def history_entry(self) -> xdr.LedgerHeaderHistoryEntry:
        """The header with this ledger's hash, as getLedgers' headerXdr and LedgerCloseMeta hold it."""
        return xdr.LedgerHeaderHistoryEntry(
            hash=xdr.Hash(bytes.fromhex(self.hash)),
            header=self.header(),
            ext=xdr.LedgerHeaderHistoryEntryExt(0),
        )

    def metadata_xdr(self) -> str:
        """A LedgerCloseMeta with this header and no transactions (the devnet keeps no tx meta)."""
        v0 = xdr.LedgerCloseMetaV0(
            ledger_header=self.history_entry(),
            tx_set=xdr.TransactionSet(xdr.Hash(bytes.fromhex(self.previous_hash)), []),
            tx_processing=[],
            upgrades_processing=[],
            scp_info=[],
        )
        return xdr.LedgerCloseMeta(0, v0=v0).to_xdr()  # type: ignore[no-any-return]


class StoredEvent:
    """An event as getEvents serves it; `json` is its response object, serialized once at close."""

    __slots__ = ("id", "ledger", "contract_id", "topic", "value", "json")

    def __init__(
        self, id: str, ledger: int, contract_id: str, topic: tuple[str, ...], value: str, json: bytes
    ) -> None:
        self.id = id
        self.ledger = ledger
        self.contract_id = contract_id
        self.topic = topic
        self.value = value
        self.json = json

    @classmethod
    def from_json(cls, encoded: bytes) -> StoredEvent:
        """The event whose getEvents object is `encoded` (as `json` holds it)."""
        body = json.loads(encoded)
        return cls(body["id"], body["ledger"], body["contractId"], tuple(body.get("topic", ())), body["value"],
                   encoded)


def _json_result(value: Any) -> Any:
    """A return value with its integers as decimal strings (u64 and i128 exceed 2**53)."""
    if isinstance(value, list):
        return [_json_result(item) for item in value]
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a transaction did: its place on chain, FlowFi's events and the token transfers with their
    ids, and the function's return value; or the contract's error."""

    tx_hash: str
    ledger: int
    tx_index: int
    closed_at: int
    events: tuple[tuple[str, FlowFiEvent], ...] = ()
    transfers: tuple[tuple[str, Transfer], ...] = ()
    result: Any = None
    error: ContractError | ContractTrap | InvalidInvocation | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "txHash": self.tx_hash,
            "ledger": self.ledger,
            "events": [
                {"id": eid, "type": event.sse_name, "data": event_fields_json(event)}
                for eid, event in self.events
            ],
            "transfers": [
                {"id": eid, "token": t.token, "from": t.from_, "to": t.to, "amount": str(t.amount)}
                for eid, t in self.transfers
            ],
            "result": _json_result(self.result),
        }


@dataclass(slots=True)
class _Pending:
    function: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    raw: list[tuple[str, tuple[str, ...], str]] | None = None
    successful: bool = True
    upgrade_to: str | None = None
    future: concurrent.futures.Future[Receipt] | None = None


class LedgerSink(Protocol):
    def write(self, ledger: Ledger, events: tuple[dict[str, Any], ...]) -> None: ...


class TrafficSource(Protocol):
    def next_call(self, contract: FlowFiContract, now: int) -> tuple[str, dict[str, Any]] | None: ...


# What belongs to the running process, or is saved apart as the history (see `Chain.saved_state`).
_NOT_SAVED = frozenset({"lock", "traffic", "lake", "_clock", "_pending", "_ledgers", "_ids", "_events", "_own_events"})


class Chain:
    """The ledger history, the contract's state, and the queue of transactions for the next ledger."""

    def __init__(
        self,
        *,
        contract_id: str = DEFAULT_CONTRACT_ID,
        passphrase: str = DEFAULT_PASSPHRASE,
        retention: int = DEFAULT_RETENTION,
        first_ledger: int = 1,
        genesis_time: int | None = None,
        clock: Callable[[], float] = time.time,
        build: str = NEWEST_BUILD,
        min_persistent_ttl: int = MIN_PERSISTENT_TTL,
    ) -> None:
        if not StrKey.is_valid_contract(contract_id):
            raise ValueError(f"not a contract id: {contract_id!r}")
        if retention < 1:
            raise ValueError("retention must be at least one ledger")
        self.contract_id = contract_id
        self.passphrase = passphrase
        self.retention = retention
        self.genesis_build = build  # the build deployed at the start (an upgrade changes contract.build)
        self.tokens = Tokens(passphrase, ledger=first_ledger, min_persistent_ttl=min_persistent_ttl)
        self.contract = FlowFiContract(build, address=contract_id, tokens=self.tokens, ledger=first_ledger,
                                       min_persistent_ttl=min_persistent_ttl)
        self.lock = threading.RLock()
        self.traffic: TrafficSource | None = None
        self.lake: LedgerSink | None = None  # where each closed ledger is also written (devnet.lake)
        self.traffic_per_ledger = 0.0
        self.failed_transactions = 0
        self._traffic_debt = 0.0
        self._clock = clock
        self._pending: list[_Pending] = []
        self._ledgers: deque[Ledger] = deque()
        self._ids: list[str] = []
        self._events: list[StoredEvent] = []
        self._own_events = 0
        self._network_id = hashlib.sha256(passphrase.encode()).hexdigest()
        close_time = int(clock()) if genesis_time is None else genesis_time
        previous = "00" * 32
        genesis = Ledger(first_ledger, close_time, self._ledger_hash(first_ledger, previous, close_time, []), previous)
        self._ledgers.append(genesis)

    # Saving and loading

    def saved_state(self) -> dict[str, Any]:
        """Everything `restore` needs besides the kept ledgers and their events (`history`): the contract's
        and the tokens' state and the chain's own counters. Take it, and use it, under `lock`."""
        return {name: value for name, value in vars(self).items() if name not in _NOT_SAVED}

    def history(self, after: int = 0) -> list[tuple[Ledger, list[StoredEvent]]]:
        """The kept ledgers after ledger `after`, each with its events."""
        with self.lock:
            first = max(after + 1 - self._ledgers[0].sequence, 0)
            ledgers = [self._ledgers[i] for i in range(first, len(self._ledgers))]
            if not ledgers:
                return []
            start = bisect.bisect_left(self._ids, ids.before_ledger(ledgers[0].sequence))
            found: list[tuple[Ledger, list[StoredEvent]]] = [(ledger, []) for ledger in ledgers]
            for event in self._events[start:]:
                found[event.ledger - ledgers[0].sequence][1].append(event)
            return found

    @classmethod
    def restore(cls, state: dict[str, Any], history: Iterable[tuple[Ledger, list[StoredEvent]]], *,
                clock: Callable[[], float] = time.time) -> Chain:
        """The chain `saved_state` and `history` describe, closing its next ledgers by `clock` (never before
        the last close time): no traffic, lake sink or queued transaction."""
        chain = cls.__new__(cls)
        vars(chain).update(state)
        chain.lock = threading.RLock()
        chain.traffic = None
        chain.lake = None
        chain._clock = clock
        chain._pending = []
        chain._ledgers = deque()
        chain._ids, chain._events = [], []
        for ledger, events in history:
            chain._ledgers.append(ledger)
            chain._events.extend(events)
        if not chain._ledgers:
            raise ValueError("a chain has at least one ledger")
        chain._ids = [event.id for event in chain._events]
        chain._own_events = sum(event.contract_id == chain.contract_id for event in chain._events)
        chain._trim()
        return chain

    # Reading

    @property
    def latest(self) -> Ledger:
        with self.lock:
            return self._ledgers[-1]

    @property
    def oldest(self) -> Ledger:
        with self.lock:
            return self._ledgers[0]

    def ledger(self, sequence: int) -> Ledger:
        """A ledger still kept (the oldest kept one for any sequence before it)."""
        with self.lock:
            return self._ledgers[max(sequence - self._ledgers[0].sequence, 0)]

    def ledger_range(self) -> tuple[Ledger, Ledger]:
        with self.lock:
            return self._ledgers[0], self._ledgers[-1]

    @property
    def event_count(self) -> int:
        """The FlowFi contract's events kept (what an indexer of it sees; the tokens' are not counted)."""
        with self.lock:
            return self._own_events

    def ledger_entry(self, key: xdr.LedgerKey) -> tuple[xdr.LedgerEntryData, int, int] | None:
        """The entry at `key` as of the latest ledger, with its lastModifiedLedgerSeq and
        liveUntilLedgerSeq (0 once archived), or None: the FlowFi contract's instance and streams, and
        the tokens' instances."""
        with self.lock:
            found = entries.find(self.contract, self.tokens, key, self._ledgers[-1].sequence)
            if found is None:
                return None
            value, last_modified, live_until = found
            return entries.entry_data(key, value), last_modified, live_until

    def scan(
        self,
        *,
        after: str,
        end_ledger: int,
        limit: int,
        match: Callable[[StoredEvent], bool] | None = None,
    ) -> list[StoredEvent]:
        """Up to `limit` matching events with id > `after` in ledgers before `end_ledger`."""
        with self.lock:
            lo = bisect.bisect_right(self._ids, after)
            hi = bisect.bisect_left(self._ids, ids.before_ledger(end_ledger), lo)
            if match is None:
                return self._events[lo : min(hi, lo + limit)]
            found: list[StoredEvent] = []
            for index in range(lo, hi):
                stored = self._events[index]
                if match(stored):
                    found.append(stored)
                    if len(found) >= limit:
                        break
            return found

    # Writing

    def submit(self, function: str, args: dict[str, Any]) -> concurrent.futures.Future[Receipt]:
        """Queue a contract call for the next ledger; the future resolves once that ledger closes."""
        future: concurrent.futures.Future[Receipt] = concurrent.futures.Future()
        with self.lock:
            self._pending.append(_Pending(function, dict(args), future=future))
        return future

    def upgrade(self, build: str) -> concurrent.futures.Future[Receipt]:
        """A devnet operator's action: switch the running 8723543 contract to `build` (c9f5d2e) in a
        transaction of the next ledger, which publishes contract_upgraded (see
        `FlowFiContract.upgrade_in_place`)."""
        if build not in BUILDS:
            raise ValueError(f"unknown build {build!r}; one of {', '.join(BUILDS)}")
        future: concurrent.futures.Future[Receipt] = concurrent.futures.Future()
        with self.lock:
            self._pending.append(_Pending("upgrade_in_place", {"build": build}, upgrade_to=build, future=future))
        return future

    def approve(self, token: str, owner: str, amount: int) -> None:
        """A devnet operator's action: from now on `owner` allows the FlowFi contract `amount` of `token`
        (every account allows it an unlimited amount until told otherwise)."""
        with self.lock:
            self.tokens.approve(token, owner, self.contract_id, amount)

    def inject_raw_event(
        self, topic: Iterable[str], value: str, *, contract_id: str | None = None, successful: bool = True
    ) -> None:
        """Put an arbitrary event (any XDR strings, valid or not) in its own tx in the next ledger; with
        `successful=False` as the event of a transaction that failed."""
        raw = [(contract_id or self.contract_id, tuple(topic), value)]
        with self.lock:
            self._pending.append(_Pending(raw=raw, successful=successful))

    def inject_event(self, event: FlowFiEvent, *, contract_id: str) -> None:
        """Emit a well-formed FlowFi event from another contract id in the next ledger."""
        topic, value = encode_event(event)
        self.inject_raw_event(topic, value, contract_id=contract_id)

    def execute(self, function: str, args: dict[str, Any], *, close_time: int | None = None) -> Receipt:
        """Submit one call and close the ledger holding it (for tests driving the chain by hand)."""
        future = self.submit(function, args)
        self.close_ledger(close_time)
        return future.result(timeout=0)

    def close_ledger(self, close_time: int | None = None) -> Ledger:
        """Apply the queued transactions (then the traffic) into a new ledger and close it."""
        with self.lock:
            previous = self._ledgers[-1]
            if close_time is None:
                close_time = max(previous.close_time + 1, int(self._clock()))
            elif close_time <= previous.close_time:
                raise ValueError(f"close time {close_time} is not after {previous.close_time}")
            sequence = previous.sequence + 1
            # the transactions see the ledger's sequence and close time; its hash covers them once applied
            ledger = Ledger(sequence, close_time, "", previous.hash)
            closed_at = iso_time(close_time)
            pending, self._pending = self._pending, []
            receipts: list[tuple[_Pending, Receipt]] = []
            first_event = len(self._events)
            tx_hashes: list[str] = []
            for tx in pending:
                receipts.append((tx, self._apply(tx, ledger, len(tx_hashes) + 1, closed_at)))
                tx_hashes.append(receipts[-1][1].tx_hash)
            if self.traffic is not None:
                self._traffic_debt += self.traffic_per_ledger
                while self._traffic_debt >= 1:
                    self._traffic_debt -= 1
                    call = self.traffic.next_call(self.contract, close_time)
                    if call is not None:
                        tx_hashes.append(self._apply(_Pending(*call), ledger, len(tx_hashes) + 1, closed_at).tx_hash)
            ledger = dataclasses.replace(ledger, hash=self._ledger_hash(sequence, previous.hash, close_time, tx_hashes))
            self._ledgers.append(ledger)
            closed_events = self._events[first_event:]
            self._trim()
        if self.lake is not None:
            self.lake.write(ledger, tuple(json.loads(event.json) for event in closed_events))
        for tx, receipt in receipts:
            if tx.future is not None and not tx.future.cancelled():
                tx.future.set_result(receipt)
        return ledger

    def _apply(self, tx: _Pending, ledger: Ledger, tx_index: int, closed_at: str) -> Receipt:
        digest = f"{self._network_id}:{ledger.sequence}:{tx_index}:{tx.function}:{tx.args}:{tx.raw}"
        tx_hash = hashlib.sha256(digest.encode()).hexdigest()
        if tx.raw is not None:
            for index, (contract_id, topic, value) in enumerate(tx.raw):
                self._store(ledger, tx_index, index, tx_hash, closed_at, contract_id, topic, value, tx.successful)
            return Receipt(tx_hash, ledger.sequence, tx_index, ledger.close_time)
        self.contract.ledger = ledger.sequence
        try:
            if tx.upgrade_to is not None:
                emitted = self.contract.upgrade_in_place(tx.upgrade_to, now=ledger.close_time)
            else:
                emitted = self.contract.invoke(tx.function, tx.args, now=ledger.close_time)
        except (ContractError, ContractTrap, InvalidInvocation) as exc:
            self.failed_transactions += 1
            return Receipt(tx_hash, ledger.sequence, tx_index, ledger.close_time, error=exc)
        events, transfers = self._place(emitted, ledger, tx_index, tx_hash, closed_at)
        result = self.contract.result_of(tx.function, emitted)
        return Receipt(tx_hash, ledger.sequence, tx_index, ledger.close_time, events, transfers, result)

    def _place(
        self, emitted: list[Emitted], ledger: Ledger, tx_index: int, tx_hash: str, closed_at: str
    ) -> tuple[tuple[tuple[str, FlowFiEvent], ...], tuple[tuple[str, Transfer], ...]]:
        """Store a call's events in publish order, FlowFi's and the tokens' alike."""
        events: list[tuple[str, FlowFiEvent]] = []
        transfers: list[tuple[str, Transfer]] = []
        for index, item in enumerate(emitted):
            if isinstance(item, Transfer):
                topics, value = encode_transfer(item, self.tokens.used(item.token, ledger.sequence))
                eid = self._store(ledger, tx_index, index, tx_hash, closed_at, item.token, tuple(topics), value)
                transfers.append((eid, item))
            else:
                topics, value = encode_event(item)
                eid = self._store(ledger, tx_index, index, tx_hash, closed_at, self.contract_id, tuple(topics), value)
                events.append((eid, item))
        return tuple(events), tuple(transfers)

    def _store(
        self,
        ledger: Ledger,
        tx_index: int,
        event_index: int,
        tx_hash: str,
        closed_at: str,
        contract_id: str,
        topic: tuple[str, ...],
        value: str,
        successful: bool = True,
    ) -> str:
        eid = ids.event_id(ledger.sequence, tx_index, 0, event_index)
        body: dict[str, Any] = {
            "type": "contract",
            "ledger": ledger.sequence,
            "ledgerClosedAt": closed_at,
            "contractId": contract_id,
            "id": eid,
            "operationIndex": 0,
            "transactionIndex": tx_index,
            "txHash": tx_hash,
            "inSuccessfulContractCall": successful,
        }
        if topic:
            body["topic"] = list(topic)
        body["value"] = value
        encoded = json.dumps(body, separators=(",", ":")).encode()
        self._ids.append(eid)
        self._events.append(StoredEvent(eid, ledger.sequence, contract_id, topic, value, encoded))
        self._own_events += contract_id == self.contract_id
        return eid

    def _trim(self) -> None:
        dropped = False
        while len(self._ledgers) > self.retention:
            self._ledgers.popleft()
            dropped = True
        if dropped:
            cut = bisect.bisect_left(self._ids, ids.before_ledger(self._ledgers[0].sequence))
            self._own_events -= sum(event.contract_id == self.contract_id for event in self._events[:cut])
            del self._ids[:cut]
            del self._events[:cut]

    def _ledger_hash(self, sequence: int, previous: str, close_time: int, tx_hashes: list[str]) -> str:
        digest = f"{self._network_id}:{sequence}:{previous}:{close_time}:{','.join(tx_hashes)}"
        return hashlib.sha256(digest.encode()).hexdigest()

    # Bulk history

    def generate_history(
        self,
        n_events: int,
        *,
        traffic: TrafficSource,
        tx_per_ledger: int = 50,
        seconds_per_ledger: int = 5,
    ) -> int:
        """Close ledgers of `tx_per_ledger` traffic transactions until `n_events` more events of the
        FlowFi contract exist.

        Close times advance by `seconds_per_ledger`, starting far enough in the past that the history
        ends around now (on a fresh chain the genesis ledger is moved back before it). Returns the
        number of events added.
        """
        with self.lock:
            start_count = self._own_events
            saved = self.traffic, self.traffic_per_ledger, self._traffic_debt
            self.traffic, self.traffic_per_ledger, self._traffic_debt = traffic, float(tx_per_ledger), 0.0
            try:
                # random traffic averages about 1.4 events per transaction
                estimate = int(n_events / (max(tx_per_ledger, 1) * 1.4)) + 1
                close_time = int(self._clock()) - estimate * seconds_per_ledger
                if len(self._ledgers) == 1 and not self._events:
                    genesis = self._ledgers[0]
                    self._ledgers[0] = dataclasses.replace(
                        genesis, close_time=min(genesis.close_time, close_time - seconds_per_ledger)
                    )
                close_time = max(self._ledgers[-1].close_time + 1, close_time)
                idle = 0
                while self._own_events - start_count < n_events:
                    before = self._own_events
                    self.close_ledger(close_time)
                    close_time += seconds_per_ledger
                    idle = 0 if self._own_events > before else idle + 1
                    if idle > 1000:
                        raise RuntimeError("the traffic finds no call to make: is the protocol paused by an admin "
                                           "it does not control?")
            finally:
                self.traffic, self.traffic_per_ledger, self._traffic_debt = saved
            return self._own_events - start_count
