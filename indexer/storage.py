"""The FlowFi contract's own storage, read through Stellar RPC's getLedgerEntries: the truth that events
leave out (a cliff set at creation, a step vesting stream's steps) and that `bootstrap` and `verify`
compare the index with.

What the contract keeps (contracts/stream_contract/src/storage.rs, types.rs):
    instance    StreamCounter u64 · ProtocolConfig (3 fields in 8723543, 5 later) · ContractVersion u32 ·
                ContractWasmHash · ConditionalMilestones(id) · AttestedIds(id); the instance's code hash
    persistent  Stream(id): 12 fields in 8723543, 17 later (cliff, schedule, arbiter, dispute, allowance)
Keys are `#[contracttype]` enum variants: ScVec[Symbol(name), args...]. A closed stream's entry is
deleted; one whose TTL ran out is archived, and RPC still returns it (liveUntilLedgerSeq 0).

A stream's token is another contract: Stellar Asset Contracts, and tokens built with soroban-token-sdk,
keep `METADATA` {decimal u32, name String, symbol String} in their instance storage (what their
decimals(), name() and symbol() return), read here for amounts people can read.

getLedgerEntries answers at the server's newest ledger, whatever the caller's position: what it says
of a stream's schedule is fixed at creation (cliff, steps, milestone amounts), its balances are not.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from stellar_sdk import StrKey, scval, xdr

from indexer import ids
from indexer.accrual import FINISHED, end_time
from indexer.decode import decode
from indexer.layouts import contract_data_value
from indexer.rpc import MAX_LEDGER_KEYS, MAX_PAGE_SIZE, RpcClient
from indexer.scval import Sc, ScValError, parse_scval
from indexer.state import FROM_STORAGE, StoredSchedule, StreamState

log = logging.getLogger(__name__)


class StorageError(ValueError):
    """An entry that is not what the contract stores (another contract at that address, or a build this
    indexer does not know: `flowfi bootstrap` and `verify` stop at it, the worker goes on without it)."""


@dataclass(frozen=True, slots=True)
class StoredStream:
    """A Stream entry as the contract stores it, in either shape (12 or 17 fields: the 5 later ones
    default as the contract defaults a legacy record)."""

    stream_id: int
    sender: str
    recipient: str
    token_address: str
    rate_per_second: int
    deposited_amount: int
    withdrawn_amount: int
    start_time: int
    last_update_time: int
    is_active: bool
    paused: bool
    paused_at: int | None
    status: str  # Active, Paused, Cancelled, Completed
    cliff_time: int | None
    schedule: str  # linear, steps or hybrid
    steps: tuple[tuple[int, int], ...]
    cliff_amount: int
    arbiter: str | None
    dispute: str | None  # None, requested, approved, rejected
    allowance: bool
    fields: int  # 12 (8723543's shape) or 17
    live_until_ledger: int | None  # 0: archived

    def schedule_facts(self) -> StoredSchedule:
        """What the state needs from storage where creation events do not say it."""
        return StoredSchedule(found=True, cliff_time=self.cliff_time if self.schedule == "linear" else None,
                              steps=self.steps)


@dataclass(frozen=True, slots=True)
class StoredConfig:
    admin: str
    treasury: str
    fee_rate_bps: int
    is_paused: bool | None  # None in 8723543's 3-field shape
    emergency_guardian: str | None


@dataclass(frozen=True, slots=True)
class StoredInstance:
    """The contract instance: its code and its instance storage."""

    wasm_hash: str | None  # hex; None for a built-in executable
    stream_counter: int
    config: StoredConfig | None
    contract_version: int | None
    recorded_wasm_hash: str | None
    conditional_streams: frozenset[int]  # those with ConditionalMilestones(id)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Storage read at one ledger (the server's newest when asked)."""

    ledger: int
    instance: StoredInstance | None
    streams: dict[int, StoredStream]  # the ids asked for that have an entry
    missing: tuple[int, ...]  # ids asked for that have none (closed, or never created)
    closed_at: int = 0  # the ledger's close time, unix seconds (known for a consistent snapshot)
    last_ledger: int = 0  # of a read that spanned several ledgers, the last one (else 0 or `ledger`)


@dataclass(frozen=True, slots=True)
class TokenMetadata:
    """A token's name, symbol and decimals, as its instance storage holds them."""

    name: str
    symbol: str
    decimals: int


class ChainMovedOn(Exception):
    """Storage could not be read at one ledger: the chain kept closing ledgers between requests."""


# --- keys -------------------------------------------------------------------------------------------------


def _contract_address(contract_id: str) -> xdr.SCAddress:
    return xdr.SCAddress(xdr.SCAddressType.SC_ADDRESS_TYPE_CONTRACT,
                         contract_id=xdr.ContractID(xdr.Hash(StrKey.decode_contract(contract_id))))


def _data_key(contract_id: str, key: xdr.SCVal) -> str:
    ledger_key = xdr.LedgerKey(
        xdr.LedgerEntryType.CONTRACT_DATA,
        contract_data=xdr.LedgerKeyContractData(
            contract=_contract_address(contract_id), key=key, durability=xdr.ContractDataDurability.PERSISTENT
        ),
    )
    return ledger_key.to_xdr()  # type: ignore[no-any-return]


def instance_key(contract_id: str) -> str:
    """The LedgerKey of a contract's instance (its code and instance storage), base64."""
    return _data_key(contract_id, xdr.SCVal(xdr.SCValType.SCV_LEDGER_KEY_CONTRACT_INSTANCE))


def stream_ledger_key(contract_id: str, stream_id: int) -> str:
    """The LedgerKey of DataKey::Stream(id), a persistent entry, base64. Built from its bytes: a page
    of creations asks for hundreds, and stellar-sdk's XDR classes take ~70 us for each."""
    head, tail = _stream_ledger_key_parts(contract_id)
    return base64.b64encode(head + stream_id.to_bytes(8, "big") + tail).decode("ascii")


@functools.lru_cache(maxsize=64)
def _stream_ledger_key_parts(contract_id: str) -> tuple[bytes, bytes]:
    """The bytes of a contract's Stream(id) key before and after the id's 8 bytes."""
    marker = 0x0102030405060708
    key = base64.b64decode(_data_key(contract_id, scval.to_vec([scval.to_symbol("Stream"), scval.to_uint64(marker)])))
    head, _, tail = key.partition(marker.to_bytes(8, "big"))
    return head, tail


# --- reading ----------------------------------------------------------------------------------------------


async def read(rpc: RpcClient, contract_id: str, stream_ids: Iterable[int], *, instance: bool = True,
               unreadable: dict[int, str] | None = None) -> Snapshot:
    """The contract's instance (when asked) and the Stream entries of `stream_ids`, in requests of at most
    200 keys. Every request answers at the server's newest ledger: the snapshot's ledger is the first
    request's, `last_ledger` the last one's (the same unless the chain moved on in between). A Stream entry
    this indexer cannot read raises StorageError, or, where `unreadable` is given, is put there with the
    reason (and counted missing)."""
    wanted = sorted(set(stream_ids))
    keys = {stream_ledger_key(contract_id, stream_id): stream_id for stream_id in wanted}
    requested = [instance_key(contract_id)] if instance else []
    requested += list(keys)
    found: dict[str, tuple[str, int | None]] = {}
    ledgers = []
    for start in range(0, len(requested), MAX_LEDGER_KEYS):
        answer = await rpc.get_ledger_entries(requested[start : start + MAX_LEDGER_KEYS])
        ledgers.append(answer.latest_ledger)
        found.update({entry.key: (entry.xdr, entry.live_until_ledger) for entry in answer.entries})

    def decoded() -> dict[int, StoredStream]:
        streams = {}
        for key, stream_id in keys.items():
            if key in found:
                try:
                    streams[stream_id] = decode_stream(stream_id, *found[key])
                except StorageError as exc:
                    if unreadable is None:
                        raise
                    unreadable[stream_id] = str(exc)
        return streams

    streams = await asyncio.to_thread(decoded)  # hundreds of entries: the event loop moves on meanwhile
    stored_instance = None
    if instance and (entry := found.get(instance_key(contract_id))) is not None:
        stored_instance = decode_instance(entry[0])
    missing = tuple(stream_id for stream_id in wanted if stream_id not in streams)
    return Snapshot(ledger=min(ledgers, default=0), instance=stored_instance, streams=streams, missing=missing,
                    last_ledger=max(ledgers, default=0))


async def consistent(rpc: RpcClient, contract_id: str, stream_ids: Iterable[int] | None = None,
                     patience: float = 60.0) -> Snapshot:
    """The instance and streams (every id up to the stream counter, unless `stream_ids` are given) as
    storage holds them at one ledger, with that ledger's close time.

    A read of many streams takes many requests, and the chain moves on meanwhile (a ledger every 5 s).
    So the streams are read once, however many ledgers that spans, and then brought to one ledger in
    short rounds: each asks for the newest ledger, finds the streams the contract's events name since
    the oldest ledger anything was read at (a stream changes only with an event naming it), and reads
    those again with the instance. It ends when such a read answers at that newest ledger; a chain
    that never leaves the time for it raises ChainMovedOn after `patience` seconds."""
    given = None if stream_ids is None else sorted(set(stream_ids))
    if given is None:
        first = await read(rpc, contract_id, ())
        wanted = set(range(1, _stream_counter(first) + 1))
    else:
        wanted = set(given)
    snapshot = await read(rpc, contract_id, wanted)
    instance, streams, since = snapshot.instance, dict(snapshot.streams), snapshot.ledger
    deadline = time.monotonic() + patience
    rounds = 0
    while True:
        latest = await rpc.get_latest_ledger()
        named = await _streams_named(rpc, contract_id, after=since, until=latest.sequence)
        again = named & wanted if given is not None else named | (
            set(range(1, _stream_counter(snapshot) + 1)) - wanted)
        reread = await read(rpc, contract_id, again)
        instance = reread.instance
        streams.update(reread.streams)
        for stream_id in reread.missing:
            streams.pop(stream_id, None)
        wanted |= again
        snapshot = reread
        if reread.ledger == reread.last_ledger == latest.sequence and (
                given is not None or _stream_counter(reread) <= max(wanted, default=0)):
            missing = tuple(sorted(wanted - streams.keys()))
            return Snapshot(latest.sequence, instance, streams, missing, latest.close_time)
        rounds += 1
        if time.monotonic() > deadline:
            raise ChainMovedOn(f"the chain moved on while storage was read again, {rounds} times in {patience:.0f} s; "
                               "try again")
        since = latest.sequence  # what was read again answered at this ledger or later


def _stream_counter(snapshot: Snapshot) -> int:
    return snapshot.instance.stream_counter if snapshot.instance is not None else 0


async def _streams_named(rpc: RpcClient, contract_id: str, *, after: int, until: int) -> set[int]:
    """The ids of the streams the contract's events name in ledgers after..until (or a little later)."""
    named: set[int] = set()
    if until <= after:
        return named
    page = await rpc.get_events((contract_id,), start_ledger=after + 1, limit=MAX_PAGE_SIZE)
    while True:
        for decoded in map(decode, page.events):
            stream_id = getattr(decoded.event.event, "stream_id", None) if decoded.event is not None else None
            if stream_id is not None:
                named.add(int(stream_id))
        if len(page.events) < MAX_PAGE_SIZE or ids.ledger_of(page.cursor) >= until:
            return named
        page = await rpc.get_events((contract_id,), cursor=page.cursor, limit=MAX_PAGE_SIZE)


async def schedules(rpc: RpcClient, contract_id: str, stream_ids: Sequence[int]) -> dict[int, StoredSchedule]:
    """What storage says of these streams' schedules (found=False for a stream whose entry is gone, or is
    not one this indexer can read: a build it does not know; that is logged, and the stream is indexed
    from its events rather than the index stopping at it)."""
    unreadable: dict[int, str] = {}
    snapshot = await read(rpc, contract_id, stream_ids, instance=False, unreadable=unreadable)
    for stream_id, reason in unreadable.items():
        log.warning("%s: the stored entry of stream %d cannot be read (%s); its schedule is taken from its "
                    "events alone (terms_source 'unavailable'): an indexer that knows this layout is needed "
                    "for what storage alone says of it (a cliff, steps)", contract_id, stream_id, reason)
    return {
        stream_id: snapshot.streams[stream_id].schedule_facts() if stream_id in snapshot.streams
        else StoredSchedule(found=False)
        for stream_id in stream_ids
    }


async def token_metadata(rpc: RpcClient, tokens: Iterable[str]) -> dict[str, TokenMetadata | None]:
    """Each token's metadata; None for one whose instance has none (a token of its own making) or that
    has no instance (not a contract)."""
    wanted = sorted(set(tokens))
    keys = {instance_key(token): token for token in wanted}
    found: dict[str, TokenMetadata | None] = dict.fromkeys(wanted)
    requested = list(keys)
    for start in range(0, len(requested), MAX_LEDGER_KEYS):
        answer = await rpc.get_ledger_entries(requested[start : start + MAX_LEDGER_KEYS])
        for entry in answer.entries:
            if (token := keys.get(entry.key)) is None:
                continue  # not asked for
            try:
                found[token] = decode_token_metadata(entry.xdr)
            except (ValueError, EOFError) as exc:  # a StorageError, or the XDR runtime's errors of bad input
                log.warning("the instance entry of the token %s does not read (%s): its metadata stays unknown",
                            token, exc)
    return found


# --- decoding ---------------------------------------------------------------------------------------------


def _contract_value(entry_xdr: str) -> xdr.SCVal:
    data = xdr.LedgerEntryData.from_xdr(entry_xdr)
    if data.contract_data is None:
        raise StorageError("the entry is not contract data")
    return data.contract_data.val


def _fields(value: Sc, what: str) -> dict[str, Sc]:
    tag, entries = value
    if tag != "map":
        raise StorageError(f"{what} is a {tag}, not the contract's struct (a map)")
    return {key[1]: item for key, item in entries if key[0] == "symbol"}


def _get(fields: dict[str, Sc], name: str, *tags: str) -> object:
    item = fields.get(name)
    if item is None:
        raise StorageError(f"the stored struct has no {name!r}")
    if item[0] not in tags:
        raise StorageError(f"the stored {name!r} is a {item[0]}, expected {' or '.join(tags)}")
    return item[1]


def _variant(value: Sc, what: str) -> tuple[str, list[Sc]]:
    """A `#[contracttype]` enum value: ScVec[Symbol(variant), args...]."""
    tag, items = value
    if tag != "vec" or not items or items[0][0] != "symbol":
        raise StorageError(f"{what} is not an enum variant")
    return items[0][1], items[1:]


def _optional(fields: dict[str, Sc], name: str, tag: str) -> object:
    return None if fields[name][0] == "void" else _get(fields, name, tag)


def decode_stream(stream_id: int, entry_xdr: str, live_until_ledger: int | None = None) -> StoredStream:
    """A Stream entry's value, in 8723543's 12-field shape or the later 17-field one."""
    try:
        value = contract_data_value(entry_xdr)
    except ScValError as exc:
        raise StorageError(f"stream {stream_id}'s entry is not contract data: {exc}") from exc
    fields = _fields(value, f"stream {stream_id}")
    if len(fields) not in (12, 17):
        raise StorageError(f"stream {stream_id} has {len(fields)} fields; this indexer knows 12 and 17")
    try:
        return _stored_stream(stream_id, fields, live_until_ledger)
    except StorageError as exc:
        raise StorageError(f"stream {stream_id}: {exc}") from exc
    except (KeyError, IndexError, TypeError, ValueError) as exc:  # a field missing, a variant of other arguments
        raise StorageError(f"stream {stream_id} is not a Stream this indexer knows ({exc!r})") from exc


def _stored_stream(stream_id: int, fields: dict[str, Sc], live_until_ledger: int | None) -> StoredStream:
    status, _ = _variant(fields["status"], "status")
    schedule, cliff_amount = "linear", 0
    steps: tuple[tuple[int, int], ...] = ()
    cliff_time = arbiter = dispute = None
    allowance = False
    if len(fields) == 17:
        cliff_time = _optional(fields, "cliff_time", "u64")
        arbiter = _optional(fields, "arbiter", "address")
        allowance = bool(_get(fields, "is_allowance_based", "bool"))
        variant, args = _variant(fields["schedule"], "schedule")
        if variant == "StepTranches":
            schedule = "steps"
            steps = tuple(
                (int(_get(step, "unlock_time", "u64")), int(_get(step, "unlock_amount", "i128")))  # type: ignore[call-overload]
                for step in (_fields(item, "a vesting step") for item in args[0][1])
            )
        elif variant == "HybridCliffLinear":
            (cliff_tag, cliff_time), (amount_tag, cliff_amount) = args
            if (cliff_tag, amount_tag) != ("u64", "i128"):
                raise StorageError(f"its HybridCliffLinear holds a {cliff_tag} and a {amount_tag}")
            schedule = "hybrid"
        elif variant != "Linear":
            raise StorageError(f"the schedule {variant!r} is unknown to this indexer")
        dispute_variant, dispute_args = _variant(fields["dispute_status"], "dispute_status")
        dispute = {"None": None, "Requested": "requested"}.get(dispute_variant)
        if dispute_variant == "Resolved":
            dispute = "approved" if dispute_args[0][1] else "rejected"
    return StoredStream(
        stream_id=stream_id,
        sender=str(_get(fields, "sender", "address")),
        recipient=str(_get(fields, "recipient", "address")),
        token_address=str(_get(fields, "token_address", "address")),
        rate_per_second=int(_get(fields, "rate_per_second", "i128")),  # type: ignore[call-overload]
        deposited_amount=int(_get(fields, "deposited_amount", "i128")),  # type: ignore[call-overload]
        withdrawn_amount=int(_get(fields, "withdrawn_amount", "i128")),  # type: ignore[call-overload]
        start_time=int(_get(fields, "start_time", "u64")),  # type: ignore[call-overload]
        last_update_time=int(_get(fields, "last_update_time", "u64")),  # type: ignore[call-overload]
        is_active=bool(_get(fields, "is_active", "bool")),
        paused=bool(_get(fields, "paused", "bool")),
        paused_at=_optional(fields, "paused_at", "u64"),  # type: ignore[arg-type]
        status=status,
        cliff_time=cliff_time,  # type: ignore[arg-type]
        schedule=schedule,
        steps=steps,
        cliff_amount=int(cliff_amount),  # type: ignore[call-overload]
        arbiter=arbiter,  # type: ignore[arg-type]
        dispute=dispute,
        allowance=allowance,
        fields=len(fields),
        live_until_ledger=live_until_ledger,
    )


def decode_instance(entry_xdr: str) -> StoredInstance:
    value = _contract_value(entry_xdr)
    instance = value.instance
    if instance is None:
        raise StorageError("the entry is not a contract instance")
    executable = instance.executable
    wasm_hash = executable.wasm_hash.hash.hex() if executable.wasm_hash is not None else None
    storage: dict[str, tuple[list[Sc], Sc]] = {}
    conditional: set[int] = set()
    for entry in instance.storage.sc_map if instance.storage is not None else ():
        key = parse_scval(entry.key.to_xdr())
        if key[0] == "vec" and key[1] and key[1][0][0] == "symbol":
            name, args = key[1][0][1], key[1][1:]
            if name == "ConditionalMilestones" and args and args[0][0] == "u64":
                conditional.add(args[0][1])
            storage.setdefault(name, (args, parse_scval(entry.val.to_xdr())))
    config = None
    if "ProtocolConfig" in storage:
        fields = _fields(storage["ProtocolConfig"][1], "the protocol config")
        config = StoredConfig(
            admin=str(_get(fields, "admin", "address")),
            treasury=str(_get(fields, "treasury", "address")),
            fee_rate_bps=int(_get(fields, "fee_rate_bps", "u32")),  # type: ignore[call-overload]
            is_paused=bool(_get(fields, "is_protocol_paused", "bool")) if "is_protocol_paused" in fields else None,
            emergency_guardian=_optional(fields, "emergency_guardian", "address")  # type: ignore[arg-type]
            if "emergency_guardian" in fields else None,
        )
    counter = storage.get("StreamCounter")
    version = storage.get("ContractVersion")
    recorded = storage.get("ContractWasmHash")
    return StoredInstance(
        wasm_hash=wasm_hash,
        stream_counter=int(counter[1][1]) if counter else 0,
        config=config,
        contract_version=int(version[1][1]) if version else None,
        recorded_wasm_hash=bytes(recorded[1][1]).hex() if recorded else None,
        conditional_streams=frozenset(conditional),
    )


def decode_token_metadata(entry_xdr: str) -> TokenMetadata | None:
    """The METADATA of a token's instance entry; None when it has none or not in the standard shape."""
    instance = _contract_value(entry_xdr).instance
    for entry in (instance.storage.sc_map if instance is not None and instance.storage is not None else ()):
        if parse_scval(entry.key.to_xdr()) != ("symbol", "METADATA"):
            continue
        try:
            fields = _fields(parse_scval(entry.val.to_xdr()), "a token's metadata")
            # anyone may name a token: a NUL, which PostgreSQL's text cannot hold, reads as U+FFFD
            return TokenMetadata(name=_text(_get(fields, "name", "string")),
                                 symbol=_text(_get(fields, "symbol", "string")),
                                 decimals=int(_get(fields, "decimal", "u32")))  # type: ignore[call-overload]
        except StorageError:
            return None
    return None


def _text(value: object) -> str:
    return str(value).replace("\0", "\ufffd")


def stream_state(contract_id: str, stored: StoredStream, conditional: bool, ledger: int, closed_at: int) -> StreamState:
    """What the index says of a stream the contract stores, read at `ledger` (closed at `closed_at`).

    The status is the contract's, except that a stream resumed after a cancel while paused (8723543:
    stored Active but inactive) is cancelled. A cancelled stream's refund is what it had left (the contract
    pays it out without adding it to withdrawn). Fees paid before this ledger are not in storage: 0."""
    status = stored.status.lower()
    if not stored.is_active and status in ("active", "paused"):
        status = "cancelled"
    running = stored.is_active and status in ("active", "paused")
    paused_at = (stored.paused_at if stored.paused_at is not None else stored.last_update_time) \
        if running and stored.paused else None
    state = StreamState(
        contract_id=contract_id,
        stream_id=stored.stream_id,
        sender=stored.sender,
        recipient=stored.recipient,
        token=stored.token_address,
        rate_per_second=stored.rate_per_second,
        deposited=stored.deposited_amount,
        withdrawn=stored.withdrawn_amount,
        refunded=max(stored.deposited_amount - stored.withdrawn_amount, 0) if status == "cancelled" else 0,
        fees_paid=0,
        status=status,
        start_time=stored.start_time,
        last_update_time=stored.last_update_time,
        paused_at=paused_at,
        end_time=None,
        schedule=stored.schedule,
        cliff_time=stored.cliff_time,
        cliff_amount=stored.cliff_amount if stored.schedule == "hybrid" else None,
        step_times=tuple(time for time, _ in stored.steps),
        step_amounts=tuple(amount for _, amount in stored.steps),
        conditional=conditional,
        allowance=stored.allowance,
        terms_source=FROM_STORAGE,
        dispute=stored.dispute,
        bootstrap_ledger=ledger,
        created_at=datetime.fromtimestamp(stored.start_time, UTC),
        updated_at=datetime.fromtimestamp(closed_at, UTC),
        first_event_id=None,
        last_event_id=None,
    )
    state.end_time = stored.last_update_time if status in FINISHED else end_time(state.terms(), closed_at)
    return state
