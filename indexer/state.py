"""A stream's state, and how each contract event changes it: the contract's accounting, replayed.

Amounts are integers in the token's smallest unit; times are ledger times in unix seconds. The rules
are the contract's (create, top up, withdraw, pause, resume, cancel; completion only by withdrawal);
what has accrued at a given time is `indexer.accrual`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from indexer.accrual import FINISHED, claimable, end_time
from indexer.events import (
    ChainEvent,
    FeeCollected,
    StreamCancelled,
    StreamCompleted,
    StreamCreated,
    StreamPaused,
    StreamResumed,
    StreamToppedUp,
    TokensWithdrawn,
)


@dataclass(slots=True)
class StreamState:
    contract_id: str
    stream_id: int
    sender: str
    recipient: str
    token: str
    rate_per_second: int
    deposited: int
    withdrawn: int
    refunded: int
    fees_paid: int
    status: str
    start_time: int
    last_update_time: int
    paused_at: int | None
    end_time: int | None
    created_at: datetime
    updated_at: datetime
    first_event_id: str
    last_event_id: str

    def claimable(self, now: int) -> int:
        if self.status in FINISHED:
            return 0
        return claimable(rate=self.rate_per_second, deposited=self.deposited, withdrawn=self.withdrawn,
                         last_update_time=self.last_update_time, paused_at=self.paused_at, now=now)

    def _project_end_time(self, at: int) -> None:
        """The contract's projection at `at` (see `indexer.accrual.end_time`); a finished stream ended
        at its finishing event."""
        if self.status in FINISHED:
            self.end_time = at
        else:
            self.end_time = end_time(rate=self.rate_per_second, deposited=self.deposited, withdrawn=self.withdrawn,
                                     last_update_time=self.last_update_time, paused_at=self.paused_at, at=at)


def new_stream(chain_event: ChainEvent, fees_paid: int) -> StreamState:
    created = chain_event.event
    assert isinstance(created, StreamCreated)
    state = StreamState(
        contract_id=chain_event.contract_id,
        stream_id=created.stream_id,
        sender=created.sender,
        recipient=created.recipient,
        token=created.token_address,
        rate_per_second=created.rate_per_second,
        deposited=created.deposited_amount,
        withdrawn=0,
        refunded=0,
        fees_paid=fees_paid,
        status="active",
        start_time=created.start_time,
        last_update_time=created.start_time,
        paused_at=None,
        end_time=None,
        created_at=chain_event.ledger_closed_at,
        updated_at=chain_event.ledger_closed_at,
        first_event_id=chain_event.id,
        last_event_id=chain_event.id,
    )
    state._project_end_time(created.start_time)
    return state


def apply(state: StreamState, chain_event: ChainEvent) -> None:
    """Advance `state` by one of its stream's events (not stream_created: see new_stream)."""
    event = chain_event.event
    now = int(chain_event.ledger_closed_at.timestamp())
    state.updated_at = chain_event.ledger_closed_at
    state.last_event_id = chain_event.id
    if state.status in FINISHED and isinstance(event, StreamPaused | StreamResumed):
        # Build 8723543 lets the sender resume a stream cancelled while paused (cancel_stream leaves
        # `paused` set and resume_stream checks nothing else): the event is published, but the stream
        # stays inactive, with nothing to claim. It changes nothing here either.
        return
    match event:
        case StreamToppedUp():
            if event.new_deposited_amount is not None:
                state.deposited = event.new_deposited_amount
            else:
                state.deposited += event.amount
        case TokensWithdrawn():
            state.withdrawn += event.amount
            state.last_update_time = event.timestamp
        case StreamCompleted():
            state.withdrawn = event.total_withdrawn
            state.status = "completed"
        case StreamCancelled():
            state.withdrawn = event.amount_withdrawn
            state.refunded = (event.refunded_amount if event.refunded_amount is not None
                              else max(state.deposited - state.withdrawn, 0))
            state.status = "cancelled"
            state.paused_at = None
            state.last_update_time = now
        case StreamPaused():
            state.status = "paused"
            state.paused_at = event.paused_at
        case StreamResumed():
            if state.paused_at is not None:
                state.last_update_time += now - state.paused_at
            state.status = "active"
            state.paused_at = None
        case FeeCollected():
            state.fees_paid += event.fee_amount
        case _:
            raise TypeError(f"{type(event).__name__} does not change a stream")
    state._project_end_time(now)
