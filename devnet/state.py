"""The contract's state, and what every entry point shares (storage.rs and lib.rs's helpers).

Each entry point runs as one transaction: streams are loaded as copies and written back only by a
save, and a call that fails (ContractError, ContractTrap, InvalidInvocation) leaves the state exactly
as it was, as Soroban rolls back a failed invocation. A successful call then updates the lifetimes of
the entries it touched at `ledger` (the sequence of the ledger being closed, set by the chain):
the instance (every call reads it), the streams it read, wrote or removed; c9f5d2e also extends the
TTL of streams it reads or saves and of the instance when it counts an id or saves the config.

Authorization is by address: the devnet has no signatures, so "sender.require_auth()" means the caller
names the sender, and the model checks that the named address is the one the stream records. Calls
that authorize as an address the arguments do not name (upgrade and migrate as the stored admin, an
attestation's oracle signer) are taken as authorized.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar

from stellar_sdk import StrKey

from devnet import calls
from devnet.terms import (
    BUILDS,
    NEWEST_BUILD,
    WASM_HASHES,
    ConditionalMilestone,
    Config,
    ContractError,
    Emitted,
    InvalidInvocation,
    Stream,
    Transfer,
    checked_i128,
    trap_i128,
    trap_u64,
)
from devnet.tokens import Tokens
from devnet.ttl import MIN_PERSISTENT_TTL, Lifetimes
from indexer.events import FeeCollected
from indexer.networks import LOCAL_CONTRACT_ID

# c9f5d2e's storage.rs: extend to 30 days of ledgers when 7 or fewer are left.
LIFETIME_THRESHOLD = 120_960
BUMP_AMOUNT = 518_400
INSTANCE = "instance"  # the instance entry, in `lifetimes`


def stream_key(stream_id: int) -> tuple[str, int]:
    """The persistent entry of DataKey::Stream(stream_id), in `lifetimes`."""
    return ("Stream", stream_id)


def _assign(target: Any, source: Any) -> None:
    """Copy a saved value into the object readers hold, so that references to it stay current."""
    for f in dataclasses.fields(source):
        setattr(target, f.name, getattr(source, f.name))


@dataclass(slots=True)
class _Call:
    """What a call changed so far: saved instance values to restore, and its storage writes."""

    saved: tuple[Any, ...]
    streams: dict[int, Stream | None] = field(default_factory=dict)
    milestones: dict[int, tuple[ConditionalMilestone, ...]] = field(default_factory=dict)
    attested: dict[int, tuple[bytes, ...]] = field(default_factory=dict)
    read: set[int] = field(default_factory=set)
    bumped: list[Hashable] = field(default_factory=list)
    instance_written: bool = False


S = TypeVar("S", bound="ContractState")
P = ParamSpec("P")


def entry_point(method: Callable[Concatenate[S, P], list[Emitted]]) -> Callable[Concatenate[S, P], list[Emitted]]:
    """A contract function: refused on a build that does not have it (`calls.FUNCTIONS`), and run as one
    transaction, applied whole when it returns, not at all when it raises."""
    builds = calls.FUNCTIONS[method.__name__][0]

    @functools.wraps(method)
    def call(self: S, *args: P.args, **kwargs: P.kwargs) -> list[Emitted]:
        if self.build not in builds:
            raise InvalidInvocation(f"unknown function {method.__name__!r}: build {self.build} does not have it")
        self._begin()
        try:
            emitted = method(self, *args, **kwargs)
        except BaseException:
            self._rollback()
            raise
        self._commit()
        return emitted

    return call


class ContractState:
    """The contract's storage: instance values, `streams` (the persistent Stream entries, by id), and the
    lifetimes of those entries. `build` is the code running at the contract's address."""

    def __init__(
        self,
        build: str = NEWEST_BUILD,
        *,
        address: str = LOCAL_CONTRACT_ID,
        tokens: Tokens | None = None,
        ledger: int = 0,
        min_persistent_ttl: int = MIN_PERSISTENT_TTL,
    ) -> None:
        if build not in BUILDS:
            raise ValueError(f"unknown build {build!r}; one of {', '.join(BUILDS)}")
        self.build = build
        self.address = address
        self.tokens = tokens if tokens is not None else Tokens(ledger=ledger, min_persistent_ttl=min_persistent_ttl)
        self.ledger = ledger
        self.config: Config | None = None
        self.streams: dict[int, Stream] = {}
        self.stream_counter = 0
        self.contract_version: int | None = None  # DataKey::ContractVersion (absent reads as 0)
        self.recorded_wasm_hash: bytes | None = None  # DataKey::ContractWasmHash, what upgrade() recorded
        self.wasm_hash = WASM_HASHES[build]  # the instance's executable
        self.milestones: dict[int, tuple[ConditionalMilestone, ...]] = {}
        self.attested: dict[int, tuple[bytes, ...]] = {}
        self.lifetimes = Lifetimes(min_persistent_ttl)
        self.lifetimes.write(INSTANCE, ledger)
        self._call: _Call | None = None

    @property
    def newest(self) -> bool:
        return self.build == NEWEST_BUILD

    # One transaction per call

    def _begin(self) -> None:
        config = None if self.config is None else dataclasses.replace(self.config)
        saved = (config, self.stream_counter, self.contract_version, self.recorded_wasm_hash, self.wasm_hash,
                 self.build)
        self._call = _Call(saved)

    def _rollback(self) -> None:
        assert self._call is not None
        config, self.stream_counter, self.contract_version, self.recorded_wasm_hash, self.wasm_hash, self.build = (
            self._call.saved)
        if config is None or self.config is None:
            self.config = config
        else:
            _assign(self.config, config)
        self._call = None

    def _commit(self) -> None:
        call, self._call = self._call, None
        assert call is not None
        ledger, lifetimes = self.ledger, self.lifetimes
        lifetimes.touch([INSTANCE, *(stream_key(i) for i in call.read | call.streams.keys())], ledger)
        if call.instance_written or call.milestones or call.attested:
            lifetimes.write(INSTANCE, ledger)
        for stream_id, stream in call.streams.items():
            if stream is None:
                self.streams.pop(stream_id, None)
                lifetimes.remove(stream_key(stream_id))
                continue
            current = self.streams.get(stream_id)
            if current is None:
                self.streams[stream_id] = stream
            else:
                _assign(current, stream)
            lifetimes.write(stream_key(stream_id), ledger)
        self.milestones.update(call.milestones)
        self.attested.update(call.attested)
        for key in call.bumped:
            lifetimes.extend(key, ledger, LIFETIME_THRESHOLD, BUMP_AMOUNT)

    def _running(self) -> _Call:
        if self._call is None:
            raise RuntimeError("storage is only used inside an entry point")
        return self._call

    # storage.rs

    def _try_load(self, stream_id: int) -> Stream | None:
        call = self._running()
        stored = call.streams[stream_id] if stream_id in call.streams else self.streams.get(stream_id)
        if stored is None:
            return None
        call.read.add(stream_id)
        if self.newest:
            call.bumped.append(stream_key(stream_id))
        return dataclasses.replace(stored)

    def _load(self, stream_id: int) -> Stream:
        stream = self._try_load(stream_id)
        if stream is None:
            raise ContractError("StreamNotFound", f"no stream {stream_id}")
        return stream

    def _save(self, stream: Stream) -> None:
        call = self._running()
        stream.legacy = not self.newest
        call.streams[stream.stream_id] = dataclasses.replace(stream)
        if self.newest:
            call.bumped.append(stream_key(stream.stream_id))

    def _remove(self, stream_id: int) -> None:
        self._running().streams[stream_id] = None

    def _exists(self, stream_id: int) -> bool:
        call = self._running()
        return (call.streams[stream_id] if stream_id in call.streams else self.streams.get(stream_id)) is not None

    def _bump(self, stream_id: int) -> None:
        call = self._running()
        call.read.add(stream_id)
        call.bumped.append(stream_key(stream_id))

    def _write_instance(self) -> None:
        self._running().instance_written = True

    def _next_stream_id(self) -> int:
        self.stream_counter = trap_u64(self.stream_counter + 1, "the stream counter")
        self._write_instance()
        if self.newest:
            self._running().bumped.append(INSTANCE)
        return self.stream_counter

    def _load_config(self) -> Config:
        if self.config is None:
            raise ContractError("NotInitialized", "the contract is not initialized")
        return self.config

    def _save_config(self, config: Config) -> None:
        config.legacy = not self.newest
        self.config = config
        self._write_instance()
        if self.newest:
            self._running().bumped.append(INSTANCE)

    def _admin_config(self, admin: str) -> Config:
        config = self._load_config()
        if config.admin != admin:
            raise ContractError("NotAdmin", f"{admin} is not the admin")
        return config

    def _milestones(self, stream_id: int) -> tuple[ConditionalMilestone, ...] | None:
        call = self._running()
        return call.milestones[stream_id] if stream_id in call.milestones else self.milestones.get(stream_id)

    def _set_milestones(self, stream_id: int, milestones: tuple[ConditionalMilestone, ...]) -> None:
        self._running().milestones[stream_id] = milestones

    def _attested(self, stream_id: int) -> tuple[bytes, ...]:
        call = self._running()
        return call.attested[stream_id] if stream_id in call.attested else self.attested.get(stream_id, ())

    def _set_attested(self, stream_id: int, attested: tuple[bytes, ...]) -> None:
        self._running().attested[stream_id] = attested

    # lib.rs's helpers

    def _add(self, a: int, b: int, what: str) -> int:
        """A plain `+` in 8723543 (traps), a `checked_add` in c9f5d2e (ArithmeticOverflow)."""
        return checked_i128(a + b, what) if self.newest else trap_i128(a + b, what)

    @staticmethod
    def _check_sender(stream: Stream, sender: str) -> None:
        if stream.sender != sender:
            raise ContractError("Unauthorized", f"{sender} is not the sender of stream {stream.stream_id}")

    @staticmethod
    def _check_active(stream: Stream) -> None:
        if not stream.is_active:
            raise ContractError("StreamInactive", f"stream {stream.stream_id} is {stream.status.value}")

    def _check_token(self, token: str) -> None:
        """`try_invoke(token, "decimals")`: a token contract answers it; an account or FlowFi does not."""
        if not StrKey.is_valid_contract(token) or token == self.address:
            raise ContractError("InvalidTokenAddress", f"{token} is not a token contract")

    def _require_not_protocol_paused(self) -> None:
        if self.config is not None and self.config.is_protocol_paused:
            raise ContractError("ProtocolPaused", "the protocol is paused")

    def _fee(self, amount: int) -> tuple[int, int, str | None]:
        """collect_fee: (net, fee, the treasury to pay when fee > 0). `amount * bps` is a plain multiply
        in 8723543 (traps) and a checked one in c9f5d2e (ArithmeticOverflow)."""
        config = self.config
        if config is None or config.fee_rate_bps == 0:
            return amount, 0, None
        product = amount * config.fee_rate_bps
        fee = (checked_i128(product, "the fee") if self.newest else trap_i128(product, "the fee")) // 10_000
        if fee <= 0:
            return amount, 0, None
        return amount - fee, fee, config.treasury

    def _fee_paid(self, stream_id: int, token: str, fee: int, treasury: str | None) -> list[Emitted]:
        """The fee's transfer to the treasury and its fee_collected, when there is a fee."""
        if treasury is None:
            return []
        return [Transfer(token, self.address, treasury, fee),
                FeeCollected(stream_id=stream_id, treasury=treasury, fee_amount=fee, token=token)]

    def _pay(self, token: str, to: str, amount: int) -> list[Emitted]:
        """A transfer from the contract, made only for a positive amount."""
        return [Transfer(token, self.address, to, amount)] if amount > 0 else []
