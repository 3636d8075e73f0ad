"""A faithful Python model of the FlowFi stream contract (contracts/stream_contract/src/lib.rs).

Every entry point checks what the contract checks and, on success, mutates the state and returns the
events the contract publishes, in publish order, as the dataclasses of `indexer.events`. A rejected
call raises `ContractError` (named after the contract's `StreamError` variant) before touching any state,
as Soroban rolls a failed invocation back entirely.

Authorization is by address: the devnet has no signatures, so "sender.require_auth()" means the caller
names the sender, and the model checks that the named address is the one the stream records.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from stellar_sdk import StrKey

from indexer import accrual
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
I128_MAX = 2**127 - 1
U64_MAX = 2**64 - 1
U32_MAX = 2**32 - 1
_INT_PARAMS = frozenset({"amount", "duration", "stream_id", "fee_rate_bps"})
_DECIMAL = re.compile(r"-?[0-9]+\Z")


class ContractError(Exception):
    """A call the contract rejects. `name` is the contract's StreamError variant, `code` its number."""

    CODES = {
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
        "InvalidArguments": 100,
    }

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.code = self.CODES[name]
        self.message = message


class StreamStatus(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


@dataclass(slots=True)
class Stream:
    """A stream as the contract stores it, plus the totals an indexer derives (refunded, fees_paid)."""

    stream_id: int
    sender: str
    recipient: str
    token: str
    rate_per_second: int
    deposited: int
    withdrawn: int
    start_time: int
    last_update_time: int
    status: StreamStatus = StreamStatus.ACTIVE
    paused_at: int | None = None
    refunded: int = 0
    fees_paid: int = 0

    @property
    def is_active(self) -> bool:
        return self.status in (StreamStatus.ACTIVE, StreamStatus.PAUSED)

    @property
    def end_time(self) -> int | None:
        return end_time(self)

    def to_json(self) -> dict[str, object]:
        """The stream with amounts and times as decimal strings (they exceed 2**53)."""
        return {
            "stream_id": str(self.stream_id),
            "sender": self.sender,
            "recipient": self.recipient,
            "token": self.token,
            "rate_per_second": str(self.rate_per_second),
            "deposited": str(self.deposited),
            "withdrawn": str(self.withdrawn),
            "refunded": str(self.refunded),
            "fees_paid": str(self.fees_paid),
            "status": self.status.value,
            "start_time": str(self.start_time),
            "last_update_time": str(self.last_update_time),
            "paused_at": None if self.paused_at is None else str(self.paused_at),
            "end_time": None if (end := end_time(self)) is None else str(end),
        }


@dataclass(slots=True)
class Config:
    admin: str
    treasury: str
    fee_rate_bps: int


def claimable(stream: Stream, now: int) -> int:
    """What the recipient could withdraw at `now` (calculate_claimable): accrual stops at paused_at."""
    paused_at = None
    if stream.status is StreamStatus.PAUSED:
        paused_at = stream.paused_at if stream.paused_at is not None else stream.last_update_time
    return accrual.claimable(rate=stream.rate_per_second, deposited=stream.deposited,
                           withdrawn=stream.withdrawn, last_update_time=stream.last_update_time,
                           paused_at=paused_at, now=now)


def end_time(stream: Stream) -> int | None:
    """When the stream drains (derived; not stored on chain). None while paused; for a finished stream
    the time of its last withdrawal or its cancellation."""
    if stream.status is StreamStatus.PAUSED:
        return None
    if not stream.is_active:
        return stream.last_update_time
    return accrual.end_time(rate=stream.rate_per_second, deposited=stream.deposited,
                          withdrawn=stream.withdrawn, last_update_time=stream.last_update_time)


def _coerce(name: str, value: object) -> object:
    """Integer parameters may arrive as decimal strings (JSON cannot carry i128 as a number)."""
    if name in _INT_PARAMS and isinstance(value, str) and _DECIMAL.match(value):
        return int(value)
    return value


def _check_address(value: str, what: str) -> None:
    if not (StrKey.is_valid_ed25519_public_key(value) or StrKey.is_valid_contract(value)):
        raise ContractError("InvalidArguments", f"{what} is not a G... or C... address: {value!r}")


def _check_int(value: int, what: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ContractError("InvalidArguments", f"{what} must be an integer in [{low}, {high}]: {value!r}")


@dataclass
class FlowFiContract:
    """The contract's storage and entry points. Each entry point takes the ledger time as `now`."""

    config: Config | None = None
    streams: dict[int, Stream] = field(default_factory=dict)
    next_stream_id: int = 1

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
        _check_int(amount, "amount", -I128_MAX - 1, I128_MAX)
        _check_int(duration, "duration", 0, U64_MAX)
        if amount <= 0:
            raise ContractError("InvalidAmount", f"amount must be positive, got {amount}")
        if duration == 0:
            raise ContractError("InvalidDuration", "duration must be positive")
        if not StrKey.is_valid_contract(token_address):
            raise ContractError("InvalidTokenAddress", f"{token_address!r} is not a token contract")
        stream_id = self.next_stream_id
        fee, fee_events = self._fee(stream_id, token_address, amount)
        net = amount - fee
        rate = net // duration
        if rate == 0:
            raise ContractError("InvalidRate", f"net amount {net} over {duration} s streams 0 per second")
        self.next_stream_id += 1
        self.streams[stream_id] = Stream(
            stream_id=stream_id,
            sender=sender,
            recipient=recipient,
            token=token_address,
            rate_per_second=rate,
            deposited=net,
            withdrawn=0,
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
        _check_int(amount, "amount", -I128_MAX - 1, I128_MAX)
        if amount <= 0:
            raise ContractError("InvalidAmount", f"amount must be positive, got {amount}")
        stream = self._stream(stream_id)
        self._check_sender(stream, sender)
        self._check_active(stream)
        fee, fee_events = self._fee(stream_id, stream.token, amount)
        net = amount - fee
        stream.deposited += net
        stream.fees_paid += fee
        remaining = stream.deposited - stream.withdrawn - claimable(stream, now)
        topped_up = StreamToppedUp(
            stream_id=stream_id,
            sender=sender,
            amount=net,
            new_deposited_amount=stream.deposited,
            new_end_time=now + remaining // stream.rate_per_second,
        )
        return [*fee_events, topped_up]

    def withdraw(self, recipient: str, stream_id: int, *, now: int) -> list[FlowFiEvent]:
        stream = self._stream(stream_id)
        if stream.recipient != recipient:
            raise ContractError("Unauthorized", f"{recipient} is not the recipient of stream {stream_id}")
        self._check_active(stream)
        if stream.status is StreamStatus.PAUSED:
            raise ContractError("StreamPaused", f"stream {stream_id} is paused")
        amount = claimable(stream, now)
        if amount <= 0:
            raise ContractError("InvalidAmount", f"nothing to withdraw from stream {stream_id} yet")
        stream.withdrawn += amount
        stream.last_update_time = now
        events: list[FlowFiEvent] = [
            TokensWithdrawn(stream_id=stream_id, recipient=recipient, amount=amount, timestamp=now)
        ]
        if stream.withdrawn >= stream.deposited:
            stream.status = StreamStatus.COMPLETED
            events.append(
                StreamCompleted(stream_id=stream_id, recipient=recipient, total_withdrawn=stream.withdrawn)
            )
        return events

    def cancel_stream(self, sender: str, stream_id: int, *, now: int) -> list[FlowFiEvent]:
        stream = self._stream(stream_id)
        self._check_sender(stream, sender)
        self._check_active(stream)
        stream.withdrawn += claimable(stream, now)
        refunded = max(stream.deposited - stream.withdrawn, 0)
        stream.refunded = refunded
        stream.status = StreamStatus.CANCELLED
        stream.paused_at = None
        stream.last_update_time = now
        return [
            StreamCancelled(
                stream_id=stream_id,
                sender=sender,
                recipient=stream.recipient,
                amount_withdrawn=stream.withdrawn,
                refunded_amount=refunded,
            )
        ]

    def pause_stream(self, sender: str, stream_id: int, *, now: int) -> list[FlowFiEvent]:
        stream = self._stream(stream_id)
        self._check_sender(stream, sender)
        self._check_active(stream)
        if stream.status is StreamStatus.PAUSED:
            raise ContractError("StreamAlreadyPaused", f"stream {stream_id} is already paused")
        stream.status = StreamStatus.PAUSED
        stream.paused_at = now
        return [StreamPaused(stream_id=stream_id, sender=sender, paused_at=now)]

    def resume_stream(self, sender: str, stream_id: int, *, now: int) -> list[FlowFiEvent]:
        stream = self._stream(stream_id)
        self._check_sender(stream, sender)
        self._check_active(stream)
        if stream.status is not StreamStatus.PAUSED:
            raise ContractError("StreamNotPaused", f"stream {stream_id} is not paused")
        paused_at = stream.paused_at if stream.paused_at is not None else now
        accrued = claimable(stream, now)
        stream.last_update_time += max(now - paused_at, 0)
        remaining = max(stream.deposited - stream.withdrawn - accrued, 0)
        stream.status = StreamStatus.ACTIVE
        stream.paused_at = None
        return [
            StreamResumed(
                stream_id=stream_id, sender=sender, new_end_time=now + remaining // stream.rate_per_second
            )
        ]

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
        fee = amount * self.config.fee_rate_bps // 10_000
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
            raise ContractError("InvalidArguments", f"unknown function {function!r}")
        args = {name: _coerce(name, value) for name, value in args.items()}
        try:
            return getattr(self, function)(**args, now=now)  # type: ignore[no-any-return]
        except TypeError as exc:
            raise ContractError("InvalidArguments", f"{function}: {exc}") from None

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
