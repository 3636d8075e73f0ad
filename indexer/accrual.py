"""What a stream has accrued: the contract's formulas for the two quantities the chain never stores but
every user asks for, what the recipient could withdraw now and when the deposit runs out.

A stream's schedule is one of the contract's (`VestingSchedule`, c9f5d2e):
    linear   `rate` a second from `last_update_time`; every stream of 8723543, and of later builds the
             ones made by create_stream, batch creation (optionally with a cliff), allowance streams
    steps    absolute unlocks (time, amount), in the contract's order; conditional (milestone) streams
             are steps whose times are unknown (`LOCKED`) until their milestone is met
    hybrid   `cliff_amount` at `cliff_time`, then `rate` a second from `cliff_time`
A `cliff_time` gates every schedule: nothing is claimable before it.

Amounts are integers in the token's smallest unit; times are ledger times in unix seconds. The SQL views
for analysts (migrations) state the same formulas in SQL; the live page's format.js in BigInt.
"""

from __future__ import annotations

import msgspec

from indexer.events import I128_MAX, U64_MAX

# A stream in one of these states has nothing left to claim.
FINISHED = frozenset({"cancelled", "completed", "closed"})
SCHEDULES = ("linear", "steps", "hybrid")
# The unlock time of a conditional stream's step whose milestone has not been met.
LOCKED = U64_MAX


class Terms(msgspec.Struct, frozen=True, gc=False):
    """What accrual depends on: a stream's schedule and balances at its last update. Built for each end time
    the state fold projects (about one in two events) and each claimable the API computes: a msgspec
    record, as the events are."""

    rate: int
    deposited: int
    withdrawn: int
    last_update_time: int
    paused_at: int | None = None
    schedule: str = "linear"
    cliff_time: int | None = None
    cliff_amount: int = 0
    steps: tuple[tuple[int, int], ...] = ()  # (unlock time, amount), in the contract's order


def claimable(terms: Terms, now: int) -> int:
    """What the recipient could withdraw at `now` (calculate_claimable): frozen at `paused_at` while
    paused, nothing before the cliff, never more than what is left."""
    effective = terms.paused_at if terms.paused_at is not None else now
    if terms.cliff_time is not None and effective < terms.cliff_time:
        return 0
    remaining = max(terms.deposited - terms.withdrawn, 0)
    if terms.schedule == "steps":
        unlocked = 0
        for unlock_time, amount in terms.steps:
            if unlock_time > effective:
                break  # the contract stops at the first step still locked, whatever comes after it
            unlocked += amount
        return min(max(unlocked - terms.withdrawn, 0), remaining)
    if terms.schedule == "hybrid":
        assert terms.cliff_time is not None
        streamed = (effective - terms.cliff_time) * terms.rate
        linear = max(terms.deposited - terms.cliff_amount, 0)
        unlocked = terms.cliff_amount + (linear if streamed > I128_MAX else min(streamed, linear))
        return min(max(unlocked - terms.withdrawn, 0), remaining)
    streamed = max(effective - terms.last_update_time, 0) * terms.rate
    return remaining if streamed > I128_MAX else min(streamed, remaining)


def claimable_in(status: str, terms: Terms, now: int) -> int:
    """What a stream in `status` has to claim at `now`: nothing once it is finished."""
    return 0 if status in FINISHED else claimable(terms, now)


def remaining_in(status: str, terms: Terms) -> int:
    """What a stream in `status` still holds in the contract: claimable or locked; nothing once finished."""
    return 0 if status in FINISHED else max(terms.deposited - terms.withdrawn, 0)


def end_time(terms: Terms, at: int) -> int | None:
    """When the deposit runs out, as the contract projects it at ledger time `at`.

    Linear: `at` plus what is left after what is claimable at `at`, at the rate: the contract's
    `new_end_time` (top_up_stream, resume_stream, modify_rate). For a running stream that is the time its
    accrual reaches the deposit, or `at` itself once it has; while paused, when it would run out if
    resumed at `at`. Steps: the last unlock, or None while a milestone is unmet. Hybrid: when the
    stream after the cliff ends (get_projected_end_time, and resume_stream's `new_end_time`; top_up_stream
    publishes a linear projection for these streams too). None where nothing is ever to accrue. Beyond
    u64 it is u64::MAX: the deposit outlasts every u64 time (a stream created over u64::MAX seconds lasts
    longer still, as its rate rounds down). The contract's get_projected_end_time casts such a quotient
    `as u64`, keeping its low 64 bits, a time before the true one; the events' new_end_time cannot be past
    u64 (their checked arithmetic fails the call)."""
    if terms.schedule == "steps":
        last = max((unlock_time for unlock_time, _ in terms.steps), default=None)
        return None if last is None or last == LOCKED else last
    if terms.rate <= 0:
        return None
    if terms.schedule == "hybrid":
        assert terms.cliff_time is not None
        return min(terms.cliff_time + max(terms.deposited - terms.cliff_amount, 0) // terms.rate, U64_MAX)
    return min(at + (max(terms.deposited - terms.withdrawn, 0) - claimable(terms, at)) // terms.rate, U64_MAX)
