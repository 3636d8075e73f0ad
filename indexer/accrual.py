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


def end_time(*, rate: int, deposited: int, withdrawn: int, last_update_time: int) -> int:
    """When an active stream has accrued all of its deposit (the contract's own formula)."""
    return last_update_time + (deposited - withdrawn) // rate
