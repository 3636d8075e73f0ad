"""What a stream has accrued: the contract's formulas for the two quantities the chain never stores
but every user asks for, what the recipient could withdraw now and when the deposit runs out.

Amounts are integers in the token's smallest unit; times are ledger times in unix seconds.
"""

from __future__ import annotations

# A stream in one of these states has nothing left to claim.
FINISHED = frozenset({"cancelled", "completed"})


def claimable(*, rate: int, deposited: int, withdrawn: int, last_update_time: int,
              paused_at: int | None, now: int) -> int:
    """What the recipient could withdraw at `now`: accrual since the last update, frozen while
    paused, capped by what is left."""
    accrue_until = paused_at if paused_at is not None else now
    return max(0, min((accrue_until - last_update_time) * rate, deposited - withdrawn))


def end_time(*, rate: int, deposited: int, withdrawn: int, last_update_time: int, paused_at: int | None,
             at: int) -> int:
    """When the deposit runs out, as the contract projects it at ledger time `at` (its `new_end_time`):
    `at` plus what is left after what has accrued, at the rate. For a running stream that is the time
    its accrual reaches the deposit, or `at` itself once it has; while paused, when it would run out if
    resumed at `at`."""
    remaining = deposited - withdrawn
    if paused_at is not None:
        accrued = claimable(rate=rate, deposited=deposited, withdrawn=withdrawn,
                            last_update_time=last_update_time, paused_at=paused_at, now=at)
        return at + (remaining - accrued) // rate
    return max(last_update_time + remaining // rate, at)
