"""A faithful Python model of the FlowFi stream contract (contracts/stream_contract/src/lib.rs).

Every entry point checks what the contract checks, in the contract's order, and on success mutates the
state and returns the events the contract publishes, in publish order, as the dataclasses of
`indexer.events`. A rejected call raises before touching any state, as Soroban rolls a failed invocation
back entirely:
- `ContractError`: the contract returned one of its `StreamError` codes (errors.rs; no other codes);
- `ContractTrap`: the contract panicked (an arithmetic overflow with overflow checks on), which the host
  reports as a trap with no contract code.

`Stream` and `Config` hold what the contract stores, field for field. The formulas (claimable, fees,
end times) are the contract's own, written here from its source and not shared with the indexer, so that
the tests comparing the two compare two independent readings of the contract.

Authorization is by address: the devnet has no signatures, so "sender.require_auth()" means the caller
names the sender, and the model checks that the named address is the one the stream records.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from stellar_sdk import StrKey

from indexer.events import (
    AdminTransferred,
    FeeCollected,
    FeeConfigUpdated,
    FlowFiEvent,
    Initialized,
    StreamCancelled,
    StreamCompleted,
    StreamCreated,
    StreamPaused,
    StreamResumed,
    StreamToppedUp,
    TokensWithdrawn,
)

MAX_FEE_RATE_BPS = 1_000
I128_MIN, I128_MAX = -(2**127), 2**127 - 1
U64_MAX = 2**64 - 1
U32_MAX = 2**32 - 1
_INT_PARAMS = frozenset({"amount", "duration", "stream_id", "fee_rate_bps"})
_DECIMAL = re.compile(r"-?[0-9]+\Z")

# errors.rs, StreamError: the codes the contract returns.
ERROR_CODES = {
    "InvalidAmount": 1,
    "StreamNotFound": 2,
    "Unauthorized": 3,
    "StreamInactive": 4,
    "AlreadyInitialized": 5,
    "NotAdmin": 6,
    "InvalidFeeRate": 7,
    "NotInitialized": 8,
    "InvalidDuration": 9,
    "InvalidTokenAddress": 10,
    "InvalidRate": 11,
    "StreamPaused": 12,
    "StreamNotPaused": 13,
    "StreamAlreadyPaused": 14,
}


class ContractError(Exception):
    """A call the contract rejects with a `StreamError`: `name` is the variant, `code` its number."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.code = ERROR_CODES[name]
        self.message = message


class ContractTrap(Exception):
    """The contract panicked (arithmetic overflow): the host fails the call with no contract code."""

    name = "Trap"
    code = None

    def __init__(self, message: str) -> None:
        super().__init__(f"Trap: {message}")
        self.message = message


class InvalidInvocation(ValueError):
    """A call that cannot even be made: an unknown function or arguments of the wrong shape."""


class StreamStatus(enum.StrEnum):
    ACTIVE = "Active"
    PAUSED = "Paused"
    CANCELLED = "Cancelled"
    COMPLETED = "Completed"


@dataclass(slots=True)
class Stream:
    """A stream as the contract stores it (types.rs `Stream`), plus the token flows that an observer of
    the token sees (the refund and the fees paid), which the contract does not store."""

    stream_id: int
    sender: str
    recipient: str
    token_address: str
    rate_per_second: int
    deposited_amount: int
    withdrawn_amount: int
    start_time: int
    last_update_time: int
    is_active: bool = True
    paused: bool = False
    paused_at: int | None = None
    status: StreamStatus = StreamStatus.ACTIVE
    refunded: int = 0
    fees_paid: int = 0

    def to_json(self) -> dict[str, object]:
        """The stored fields, with amounts and times as decimal strings (they exceed 2**53)."""
        return {
            "stream_id": str(self.stream_id),
            "sender": self.sender,
            "recipient": self.recipient,
            "token_address": self.token_address,
            "rate_per_second": str(self.rate_per_second),
            "deposited_amount": str(self.deposited_amount),
            "withdrawn_amount": str(self.withdrawn_amount),
            "start_time": str(self.start_time),
            "last_update_time": str(self.last_update_time),
            "is_active": self.is_active,
            "paused": self.paused,
            "paused_at": None if self.paused_at is None else str(self.paused_at),
            "status": self.status.value,
        }


@dataclass(slots=True)
class Config:
    admin: str
    treasury: str
    fee_rate_bps: int


def _i128(value: int, what: str) -> int:
    """A plain i128 operation's result; the contract traps where it overflows."""
    if not I128_MIN <= value <= I128_MAX:
        raise ContractTrap(f"{what} overflows i128")
    return value


def _u64_end_time(now: int, quotient: int) -> int:
    """`now + (quotient as u64)`: the cast keeps the low 64 bits, the addition traps on overflow."""
    end = now + (quotient & U64_MAX)
    if end > U64_MAX:
        raise ContractTrap("the end time overflows u64")
    return end


def claimable(stream: Stream, now: int) -> int:
    """calculate_claimable: accrual since the last update, frozen at paused_at while paused, capped by
    what is left; an overflowing product means everything left."""
    effective = now
    if stream.paused:
        effective = stream.paused_at if stream.paused_at is not None else stream.last_update_time
    elapsed = max(effective - stream.last_update_time, 0)
    remaining = max(stream.deposited_amount - stream.withdrawn_amount, 0)
    streamed = elapsed * stream.rate_per_second
    if streamed > I128_MAX:
        return remaining
    return min(streamed, remaining)


def _coerce(name: str, value: object) -> object:
    """Integer parameters may arrive as decimal strings (JSON cannot carry i128 as a number)."""
    if name in _INT_PARAMS and isinstance(value, str) and _DECIMAL.match(value):
        return int(value)
    return value


def _check_address(value: object, what: str) -> None:
    if not isinstance(value, str) or not (
        StrKey.is_valid_ed25519_public_key(value) or StrKey.is_valid_contract(value)
    ):
        raise InvalidInvocation(f"{what} is not a G... or C... address: {value!r:.80}")


def _check_int(value: object, what: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInvocation(f"{what} must be an integer in [{low}, {high}]: {value!r:.80}")


@dataclass
class FlowFiContract:
    """The contract's storage and entry points (build 8723543). Each entry point takes the ledger time
    as `now`."""

    config: Config | None = None
    streams: dict[int, Stream] = field(default_factory=dict)
    stream_counter: int = 0

    # Protocol administration

    def initialize(self, admin: str, treasury: str, fee_rate_bps: int, *, now: int) -> list[FlowFiEvent]:
        _check_address(admin, "admin")
        _check_address(treasury, "treasury")
        _check_int(fee_rate_bps, "fee_rate_bps", 0, U32_MAX)
        if self.config is not None:
            raise ContractError("AlreadyInitialized", "the contract is already initialized")
        if fee_rate_bps > MAX_FEE_RATE_BPS:
            raise ContractError("InvalidFeeRate", f"fee_rate_bps {fee_rate_bps} exceeds {MAX_FEE_RATE_BPS}")
        self.config = Config(admin, treasury, fee_rate_bps)
        return [Initialized(admin=admin, treasury=treasury, fee_rate_bps=fee_rate_bps)]

    def update_fee_config(
        self, admin: str, treasury: str, fee_rate_bps: int, *, now: int
    ) -> list[FlowFiEvent]:
        _check_address(admin, "admin")
        _check_address(treasury, "treasury")
        _check_int(fee_rate_bps, "fee_rate_bps", 0, U32_MAX)
        config = self._admin_config(admin)
        if fee_rate_bps > MAX_FEE_RATE_BPS:
            raise ContractError("InvalidFeeRate", f"fee_rate_bps {fee_rate_bps} exceeds {MAX_FEE_RATE_BPS}")
        event = FeeConfigUpdated(
            admin=admin,
            old_treasury=config.treasury,
            new_treasury=treasury,
            old_fee_rate_bps=config.fee_rate_bps,
            new_fee_rate_bps=fee_rate_bps,
        )
        config.treasury, config.fee_rate_bps = treasury, fee_rate_bps
        return [event]

    def transfer_admin(self, current_admin: str, new_admin: str, *, now: int) -> list[FlowFiEvent]:
        _check_address(current_admin, "current_admin")
        _check_address(new_admin, "new_admin")
        config = self._admin_config(current_admin)
        config.admin = new_admin
        return [AdminTransferred(previous_admin=current_admin, new_admin=new_admin)]

    def _admin_config(self, admin: str) -> Config:
        if self.config is None:
            raise ContractError("NotInitialized", "the contract is not initialized")
        if self.config.admin != admin:
            raise ContractError("NotAdmin", f"{admin} is not the admin")
        return self.config

    # Streams

    def create_stream(
        self, sender: str, recipient: str, token_address: str, amount: int, duration: int, *, now: int
    ) -> list[FlowFiEvent]:
        _check_address(sender, "sender")
        _check_address(recipient, "recipient")
        _check_address(token_address, "token_address")
        _check_int(amount, "amount", I128_MIN, I128_MAX)
        _check_int(duration, "duration", 0, U64_MAX)
        if amount <= 0:
            raise ContractError("InvalidAmount", f"amount must be positive, got {amount}")
        if duration == 0:
            raise ContractError("InvalidDuration", "duration must be positive")
        if not StrKey.is_valid_contract(token_address):
            raise ContractError("InvalidTokenAddress", f"{token_address} is not a token contract")
        stream_id = self.stream_counter + 1
        fee, fee_events = self._fee(stream_id, token_address, amount)
        net = amount - fee
        rate = net // duration
        if rate == 0:
            raise ContractError("InvalidRate", f"net amount {net} over {duration} s streams 0 per second")
        self.stream_counter = stream_id
        self.streams[stream_id] = Stream(
            stream_id=stream_id,
            sender=sender,
            recipient=recipient,
            token_address=token_address,
            rate_per_second=rate,
            deposited_amount=net,
            withdrawn_amount=0,
            start_time=now,
            last_update_time=now,
            fees_paid=fee,
        )
        created = StreamCreated(
            stream_id=stream_id,
            sender=sender,
            recipient=recipient,
            rate_per_second=rate,
            token_address=token_address,
            deposited_amount=net,
            start_time=now,
        )
        return [*fee_events, created]

    def top_up_stream(self, sender: str, stream_id: int, amount: int, *, now: int) -> list[FlowFiEvent]:
        _check_address(sender, "sender")
        _check_int(amount, "amount", I128_MIN, I128_MAX)
        if amount <= 0:
            raise ContractError("InvalidAmount", f"amount must be positive, got {amount}")
        stream = self._stream(stream_id)
        self._check_sender(stream, sender)
        self._check_active(stream)
        fee, fee_events = self._fee(stream_id, stream.token_address, amount)
        net = amount - fee
        deposited = _i128(stream.deposited_amount + net, "the deposit")
        accrued = claimable(dataclasses.replace(stream, deposited_amount=deposited), now)  # on the new deposit
        left = max(max(deposited - stream.withdrawn_amount, 0) - accrued, 0)
        new_end_time = _u64_end_time(now, left // stream.rate_per_second)
        stream.deposited_amount = deposited
        stream.fees_paid += fee
        topped_up = StreamToppedUp(
            stream_id=stream_id, sender=sender, amount=net, new_deposited_amount=deposited, new_end_time=new_end_time
        )
        return [*fee_events, topped_up]

    def withdraw(self, recipient: str, stream_id: int, *, now: int) -> list[FlowFiEvent]:
        _check_address(recipient, "recipient")
        stream = self._stream(stream_id)
        if stream.recipient != recipient:
            raise ContractError("Unauthorized", f"{recipient} is not the recipient of stream {stream_id}")
        self._check_active(stream)
        if stream.paused:
            raise ContractError("StreamPaused", f"stream {stream_id} is paused")
        amount = claimable(stream, now)
        if amount <= 0:
            raise ContractError("InvalidAmount", f"nothing to withdraw from stream {stream_id} yet")
        stream.withdrawn_amount = _i128(stream.withdrawn_amount + amount, "the withdrawn total")
        stream.last_update_time = now
        events: list[FlowFiEvent] = [
            TokensWithdrawn(stream_id=stream_id, recipient=recipient, amount=amount, timestamp=now)
        ]
        if stream.withdrawn_amount >= stream.deposited_amount:
            stream.is_active = False
            stream.status = StreamStatus.COMPLETED
            events.append(
                StreamCompleted(stream_id=stream_id, recipient=recipient, total_withdrawn=stream.withdrawn_amount)
            )
        return events

    def cancel_stream(self, sender: str, stream_id: int, *, now: int) -> list[FlowFiEvent]:
        """Pays the recipient what has accrued and refunds the rest. `paused` and `paused_at` are left
        as they were (lib.rs 536-538), which is what lets resume_stream run on the cancelled stream."""
        _check_address(sender, "sender")
        stream = self._stream(stream_id)
        self._check_sender(stream, sender)
        self._check_active(stream)
        accrued = claimable(stream, now)
        if accrued > 0:
            stream.withdrawn_amount = min(stream.withdrawn_amount + accrued, I128_MAX)
        refunded = max(stream.deposited_amount - stream.withdrawn_amount, I128_MIN)
        stream.is_active = False
        stream.status = StreamStatus.CANCELLED
        stream.last_update_time = now
        stream.refunded = max(refunded, 0)
        return [
            StreamCancelled(
                stream_id=stream_id,
                sender=sender,
                recipient=stream.recipient,
                amount_withdrawn=stream.withdrawn_amount,
                refunded_amount=refunded,
            )
        ]

    def pause_stream(self, sender: str, stream_id: int, *, now: int) -> list[FlowFiEvent]:
        _check_address(sender, "sender")
        stream = self._stream(stream_id)
        self._check_sender(stream, sender)
        self._check_active(stream)
        if stream.paused:
            raise ContractError("StreamAlreadyPaused", f"stream {stream_id} is already paused")
        stream.paused = True
        stream.paused_at = now
        stream.status = StreamStatus.PAUSED
        return [StreamPaused(stream_id=stream_id, sender=sender, paused_at=now)]

    def resume_stream(self, sender: str, stream_id: int, *, now: int) -> list[FlowFiEvent]:
        """Checks only `paused` (lib.rs 625), not `is_active`: a stream cancelled while paused resumes
        to status Active while staying inactive, with nothing left to claim."""
        _check_address(sender, "sender")
        stream = self._stream(stream_id)
        self._check_sender(stream, sender)
        if not stream.paused:
            raise ContractError("StreamNotPaused", f"stream {stream_id} is not paused")
        paused_at = stream.paused_at if stream.paused_at is not None else now
        accrued = claimable(stream, now)
        last_update_time = min(stream.last_update_time + max(now - paused_at, 0), U64_MAX)
        left = max(max(stream.deposited_amount - stream.withdrawn_amount, 0) - accrued, 0)
        new_end_time = _u64_end_time(now, left // stream.rate_per_second)
        stream.last_update_time = last_update_time
        stream.paused = False
        stream.paused_at = None
        stream.status = StreamStatus.ACTIVE
        return [StreamResumed(stream_id=stream_id, sender=sender, new_end_time=new_end_time)]

    def _stream(self, stream_id: int) -> Stream:
        _check_int(stream_id, "stream_id", 0, U64_MAX)
        stream = self.streams.get(stream_id)
        if stream is None:
            raise ContractError("StreamNotFound", f"no stream {stream_id}")
        return stream

    @staticmethod
    def _check_sender(stream: Stream, sender: str) -> None:
        if stream.sender != sender:
            raise ContractError("Unauthorized", f"{sender} is not the sender of stream {stream.stream_id}")

    @staticmethod
    def _check_active(stream: Stream) -> None:
        if not stream.is_active:
            raise ContractError("StreamInactive", f"stream {stream.stream_id} is {stream.status.value}")

    def _fee(self, stream_id: int, token: str, amount: int) -> tuple[int, list[FlowFiEvent]]:
        """The protocol fee on `amount` and its event (collect_fee): none when unset or rounding to 0."""
        if self.config is None or self.config.fee_rate_bps == 0:
            return 0, []
        fee = _i128(amount * self.config.fee_rate_bps, "the fee") // 10_000
        if fee <= 0:
            return 0, []
        event = FeeCollected(stream_id=stream_id, treasury=self.config.treasury, fee_amount=fee, token=token)
        return fee, [event]

    # Invocation by name, as a transaction names it

    FUNCTIONS = (
        "initialize",
        "update_fee_config",
        "transfer_admin",
        "create_stream",
        "top_up_stream",
        "withdraw",
        "cancel_stream",
        "pause_stream",
        "resume_stream",
    )

    def invoke(self, function: str, args: Mapping[str, object], *, now: int) -> list[FlowFiEvent]:
        """Call an entry point by name with arguments by the contract's parameter names."""
        if function not in self.FUNCTIONS:
            raise InvalidInvocation(f"unknown function {function!r:.80}; the contract has {', '.join(self.FUNCTIONS)}")
        args = {name: _coerce(name, value) for name, value in args.items()}
        try:
            return getattr(self, function)(**args, now=now)  # type: ignore[no-any-return]
        except TypeError as exc:
            raise InvalidInvocation(f"{function}: {exc}") from None

    def result_of(self, function: str, events: list[FlowFiEvent]) -> int | None:
        """The entry point's return value as the contract returns it (stream id, amount, end time)."""
        last = events[-1] if events else None
        if function == "create_stream" and isinstance(last, StreamCreated):
            return last.stream_id
        if function == "withdraw" and events and isinstance(events[0], TokensWithdrawn):
            return events[0].amount
        if function == "resume_stream" and isinstance(last, StreamResumed):
            return last.new_end_time
        return None
