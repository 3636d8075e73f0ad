"""The FlowFi contract's types, errors and formulas (types.rs, errors.rs and lib.rs's calculations).

Two builds of contracts/stream_contract are modelled:
- "8723543" (main, 2026-08-08): linear streams, 12-field `Stream`, 3-field `ProtocolConfig`, errors 1-14;
- "c9f5d2e" (the newest, the default): five schedules, 17-field `Stream`, 5-field `ProtocolConfig`,
  errors 1-44, upgrade and migrate.

The formulas are the contract's own, written here from its source and not shared with the indexer, so
that tests comparing the two compare two independent readings of the contract. Where the builds agree
(every 8723543 stream is a linear stream without a cliff) one function serves both.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from indexer.events import FlowFiEvent

BUILDS = ("8723543", "c9f5d2e")
OLD_BUILD, NEWEST_BUILD = BUILDS
# The devnet has no wasm: each build's code hash is a fixed pseudo hash, sha256 of the build's name.
WASM_HASHES = {build: hashlib.sha256(build.encode()).digest() for build in BUILDS}

MAX_FEE_RATE_BPS = 1_000
MAX_VESTING_STEPS = 12
MAX_CONDITIONAL_MILESTONES = 12
MAX_BATCH_WITHDRAW = 30
MAX_BATCH_CREATE = 50
CURRENT_DATA_VERSION = 2
I128_MIN, I128_MAX = -(2**127), 2**127 - 1
U64_MAX = 2**64 - 1
U32_MAX = 2**32 - 1

# errors.rs, StreamError: the codes the contract returns. 8723543 has 1-14 only; c9f5d2e all of them.
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
    "ProtocolPaused": 15,
    "EmptyVestingSchedule": 16,
    "TooManyVestingSteps": 17,
    "NonMonotonicVestingSteps": 18,
    "InvalidVestingStepAmount": 19,
    "VestingStepTotalMismatch": 20,
    "VestingStepBeforeStart": 21,
    "InvalidCliffParameters": 22,
    "BatchTooLarge": 23,
    "NotGuardian": 24,
    "UnsupportedMigration": 25,
    "StateVersionTooNew": 26,
    "TopUpUnsupported": 27,
    "RateModificationUnsupported": 28,
    "InvalidNewRate": 29,
    "DisputeNotSupported": 30,
    "NoActiveDispute": 31,
    "NotArbiter": 32,
    "AllowanceLocked": 33,
    "ArithmeticOverflow": 34,
    "StreamNotActive": 35,
    "StreamStillActive": 36,
    "InvalidMilestone": 37,
    "OraclePriceUnavailable": 38,
    "OraclePriceStale": 39,
    "ConditionNotMet": 40,
    "MilestoneAlreadyUnlocked": 41,
    "InvalidAttestation": 42,
    "MilestoneCallerUnauthorized": 43,
    "TooManyMilestones": 44,
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


@dataclass(frozen=True, slots=True)
class VestingStep:
    unlock_time: int
    unlock_amount: int


@dataclass(frozen=True, slots=True)
class Linear:
    """VestingSchedule::Linear: `rate_per_second` from `last_update_time`."""


@dataclass(frozen=True, slots=True)
class StepTranches:
    """VestingSchedule::StepTranches: each step's amount unlocks at its time (u64::MAX: a milestone not met)."""

    steps: tuple[VestingStep, ...]


@dataclass(frozen=True, slots=True)
class HybridCliffLinear:
    """VestingSchedule::HybridCliffLinear: a lump at the cliff, then `rate_per_second` from the cliff."""

    cliff_time: int
    cliff_unlock_amount: int


Schedule = Linear | StepTranches | HybridCliffLinear
LINEAR = Linear()


@dataclass(frozen=True, slots=True)
class DisputeStatus:
    """DisputeStatus: "None", "Requested", or "Resolved" with `approved`."""

    variant: str
    approved: bool | None = None


NO_DISPUTE = DisputeStatus("None")


@dataclass(frozen=True, slots=True)
class TimeOnly:
    unlock_time: int


@dataclass(frozen=True, slots=True)
class PriceTarget:
    oracle: str
    target_price: int
    is_above: bool


@dataclass(frozen=True, slots=True)
class OracleAttestation:
    oracle_signer: str
    attestation_id: bytes


UnlockCondition = TimeOnly | PriceTarget | OracleAttestation


@dataclass(frozen=True, slots=True)
class ConditionalMilestone:
    milestone_id: int
    amount: int
    condition: UnlockCondition
    is_unlocked: bool = False


@dataclass(frozen=True, slots=True)
class BatchStreamInput:
    recipient: str
    token_address: str
    amount: int
    duration: int
    cliff_duration: int | None = None


@dataclass(frozen=True, slots=True)
class Transfer:
    """A transfer the contract makes through a token's Stellar Asset Contract, published by the token."""

    token: str
    from_: str
    to: str
    amount: int


Emitted = FlowFiEvent | Transfer


def _option(value: int | None) -> str | None:
    return None if value is None else str(value)


def schedule_json(schedule: Schedule) -> list[object]:
    """A schedule as its ScVec reads: the variant, then its values (amounts and times as strings)."""
    match schedule:
        case StepTranches(steps):
            return ["StepTranches", [{"unlock_amount": str(s.unlock_amount), "unlock_time": str(s.unlock_time)}
                                     for s in steps]]
        case HybridCliffLinear(cliff_time, cliff_amount):
            return ["HybridCliffLinear", str(cliff_time), str(cliff_amount)]
    return ["Linear"]


def condition_json(condition: UnlockCondition) -> dict[str, object]:
    """An unlock condition in the shape /invoke takes it."""
    match condition:
        case TimeOnly(unlock_time):
            return {"TimeOnly": str(unlock_time)}
        case PriceTarget(oracle, target, is_above):
            return {"PriceTarget": {"oracle": oracle, "target_price": str(target), "is_above": is_above}}
        case OracleAttestation(signer, attestation_id):
            return {"OracleAttestation": {"oracle_signer": signer, "attestation_id": attestation_id.hex()}}
    raise TypeError(condition)


def milestone_json(milestone: ConditionalMilestone) -> dict[str, object]:
    return {"milestone_id": milestone.milestone_id, "amount": str(milestone.amount),
            "condition": condition_json(milestone.condition), "is_unlocked": milestone.is_unlocked}


@dataclass(slots=True)
class Stream:
    """A stream as the contract stores it (types.rs `Stream`), plus the token flows that an observer of
    the token sees (`refunded`, `fees_paid`), which the contract does not store.

    `legacy` says the record is stored in 8723543's 12-field layout: every record 8723543 writes, and
    such a record after an upgrade until c9f5d2e saves it again (c9f5d2e reads it as `LegacyStream`,
    with the five later fields at their defaults, which are also this class's defaults)."""

    stream_id: int
    sender: str
    recipient: str
    token_address: str
    rate_per_second: int
    deposited_amount: int
    withdrawn_amount: int
    start_time: int
    last_update_time: int
    cliff_time: int | None = None
    is_active: bool = True
    paused: bool = False
    paused_at: int | None = None
    status: StreamStatus = StreamStatus.ACTIVE
    schedule: Schedule = LINEAR
    arbiter: str | None = None
    dispute_status: DisputeStatus = NO_DISPUTE
    is_allowance_based: bool = False
    legacy: bool = False
    refunded: int = 0
    fees_paid: int = 0

    def to_json(self) -> dict[str, object]:
        """The stored fields in the record's layout (12 or 17), amounts and times as decimal strings
        (they exceed 2**53), with the stream's id."""
        stored: dict[str, object] = {
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
            "paused_at": _option(self.paused_at),
            "status": self.status.value,
        }
        if not self.legacy:
            dispute: list[object] = [self.dispute_status.variant]
            if self.dispute_status.approved is not None:
                dispute.append(self.dispute_status.approved)
            stored.update(cliff_time=_option(self.cliff_time), schedule=schedule_json(self.schedule),
                          arbiter=self.arbiter, dispute_status=dispute, is_allowance_based=self.is_allowance_based)
        return stored


@dataclass(slots=True)
class Config:
    """ProtocolConfig. `legacy`: stored in 8723543's 3-field layout (c9f5d2e reads it as
    LegacyProtocolConfig: unpaused, no guardian, until it saves the config again)."""

    admin: str
    treasury: str
    fee_rate_bps: int
    is_protocol_paused: bool = False
    emergency_guardian: str | None = None
    legacy: bool = False

    def to_json(self) -> dict[str, object]:
        stored: dict[str, object] = {"admin": self.admin, "treasury": self.treasury,
                                     "fee_rate_bps": self.fee_rate_bps}
        if not self.legacy:
            stored.update(is_protocol_paused=self.is_protocol_paused, emergency_guardian=self.emergency_guardian)
        return stored


# Arithmetic as the contract's Rust does it (overflow-checks on).


def trap_i128(value: int, what: str) -> int:
    """A plain i128 operation's result; the contract traps where it overflows."""
    if not I128_MIN <= value <= I128_MAX:
        raise ContractTrap(f"{what} overflows i128")
    return value


def checked_i128(value: int, what: str) -> int:
    """A `checked_*` i128 operation that c9f5d2e maps to ArithmeticOverflow."""
    if not I128_MIN <= value <= I128_MAX:
        raise ContractError("ArithmeticOverflow", f"{what} overflows i128")
    return value


def trap_u64(value: int, what: str) -> int:
    if not 0 <= value <= U64_MAX:
        raise ContractTrap(f"{what} overflows u64")
    return value


def sat_i128(value: int) -> int:
    return min(max(value, I128_MIN), I128_MAX)


def sat_u64(value: int) -> int:
    return min(max(value, 0), U64_MAX)


def as_u64(value: int) -> int:
    """Rust's `x as u64` on an i128: the low 64 bits."""
    return value & U64_MAX


def div(dividend: int, divisor: int) -> int:
    """Rust's integer division: truncated toward zero."""
    quotient = abs(dividend) // abs(divisor)
    return quotient if (dividend >= 0) == (divisor > 0) else -quotient


def end_time(now: int, left: int, rate: int) -> int:
    """`now + (left / rate) as u64` unchecked (8723543's end times, c9f5d2e's resume of a linear stream):
    the cast keeps the low 64 bits, the addition traps on overflow."""
    return trap_u64(now + as_u64(div(left, rate)), "the end time")


def project_end_time(now: int, remaining: int, rate: int) -> int:
    """c9f5d2e's project_end_time: `u64::try_from(remaining / rate)` then `now.checked_add`, both
    ArithmeticOverflow where they fail."""
    quotient = div(remaining, rate)
    if not 0 <= quotient <= U64_MAX or now + quotient > U64_MAX:
        raise ContractError("ArithmeticOverflow", "the projected end time does not fit in u64")
    return now + quotient


def claimable(stream: Stream, now: int) -> int:
    """calculate_claimable: what the recipient could withdraw at `now`, capped by what is left; frozen at
    paused_at while paused; nothing before the cliff. Linear accrues from last_update_time (an
    overflowing product means everything left); steps add up in storage order and stop at the first one
    still locked; a hybrid stream releases its lump at the cliff and streams from there."""
    effective = now
    if stream.paused:
        effective = stream.paused_at if stream.paused_at is not None else stream.last_update_time
    if stream.cliff_time is not None and effective < stream.cliff_time:
        return 0
    deposited, withdrawn = stream.deposited_amount, stream.withdrawn_amount
    remaining = max(sat_i128(deposited - withdrawn), 0)
    match stream.schedule:
        case StepTranches(steps):
            unlocked = 0
            for step in steps:
                if step.unlock_time > effective:
                    break
                unlocked = sat_i128(unlocked + step.unlock_amount)
            return min(max(sat_i128(unlocked - withdrawn), 0), remaining)
        case HybridCliffLinear(cliff_time, cliff_amount):
            if effective < cliff_time:
                return 0
            tail = sat_i128(deposited - cliff_amount)
            streamed = (effective - cliff_time) * stream.rate_per_second
            linear = tail if not I128_MIN <= streamed <= I128_MAX else min(streamed, tail)
            return min(max(sat_i128(sat_i128(cliff_amount + linear) - withdrawn), 0), remaining)
    streamed = max(effective - stream.last_update_time, 0) * stream.rate_per_second
    if not I128_MIN <= streamed <= I128_MAX:
        return remaining
    return min(streamed, remaining)


def projected_end_time(stream: Stream) -> int:
    """c9f5d2e's projected_end_time: a linear stream runs out `(deposited - withdrawn) / rate` after its
    anchor; a step stream ends at its last step (u64::MAX for a milestone not met); a hybrid stream
    streams its tail from the cliff. Saturating, never trapping."""
    match stream.schedule:
        case StepTranches(steps):
            return steps[-1].unlock_time if steps else stream.last_update_time
        case HybridCliffLinear(cliff_time, cliff_amount):
            deposited, withdrawn = stream.deposited_amount, stream.withdrawn_amount
            tail = max(sat_i128(sat_i128(deposited - withdrawn) - sat_i128(cliff_amount - withdrawn)), 0)
            return sat_u64(cliff_time + as_u64(div(tail, stream.rate_per_second)))
    anchor = stream.paused_at if stream.paused_at is not None else stream.last_update_time
    if stream.rate_per_second <= 0:
        return anchor
    left = max(stream.deposited_amount - stream.withdrawn_amount, 0)
    return sat_u64(anchor + as_u64(div(left, stream.rate_per_second)))
