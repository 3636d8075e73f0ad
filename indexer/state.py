"""A stream's state, and how each contract event changes it: the contract's accounting, replayed.

Amounts are integers in the token's smallest unit; times are ledger times in unix seconds. The rules
are the contract's, in every build: creation by any of its entry points, top-ups, withdrawals (only a
withdrawal completes a stream), pause and resume, cancellation, recipient transfers (the settled amount
counts as withdrawn, with no tokens_withdrawn), rate changes (a new anchor, no settlement), milestone
unlocks, disputes and closing (the row stays, status "closed"). What has accrued at a given time is
`indexer.accrual`'s.

Some creations do not publish their whole schedule: a cliff set by create_stream_with_cliff or
batch_create_streams, a step vesting stream's steps, a conditional stream's milestones. Those come from
the contract's storage (`StoredSchedule`, read by the worker), and `terms_source` says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from indexer.accrual import FINISHED, LOCKED, Terms, claimable_in, end_time
from indexer.events import (
    CREATIONS,
    AllowanceStreamCreated,
    ChainEvent,
    DisputeRequested,
    DisputeResolved,
    FeeCollected,
    HybridCliffStreamCreated,
    MilestoneConditionUnlocked,
    RecipientTransferred,
    StepVestingStreamCreated,
    StreamCancelled,
    StreamClosed,
    StreamCompleted,
    StreamCreated,
    StreamEvent,
    StreamPaused,
    StreamRateModified,
    StreamResumed,
    StreamToppedUp,
    TokensWithdrawn,
)
from indexer.tables import TERMS_SOURCES

# Where a stream's schedule came from.
FROM_EVENTS, FROM_STORAGE, UNAVAILABLE = TERMS_SOURCES


@dataclass(frozen=True, slots=True)
class StoredSchedule:
    """What the contract's storage says of a stream's schedule, where its creation event does not:
    `found` is False when the entry is gone (a closed stream's is deleted)."""

    found: bool
    cliff_time: int | None = None
    steps: tuple[tuple[int, int], ...] = ()


def needs_storage(event: StreamEvent, hides_cliffs: bool) -> bool:
    """Whether a creation event leaves part of its stream's schedule in storage only: a step vesting
    stream's steps, a conditional stream's milestones (its stream_created has rate 0), and, where the
    build in force has cliffs, a cliff that stream_created does not carry."""
    if isinstance(event, StepVestingStreamCreated):
        return True
    return isinstance(event, StreamCreated) and (event.rate_per_second == 0 or hides_cliffs)


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
    schedule: str
    cliff_time: int | None
    cliff_amount: int | None
    step_times: tuple[int, ...]
    step_amounts: tuple[int, ...]
    conditional: bool
    allowance: bool
    terms_source: str
    dispute: str | None
    bootstrap_ledger: int | None
    created_at: datetime
    updated_at: datetime
    first_event_id: str | None
    last_event_id: str | None

    def terms(self) -> Terms:
        return Terms(
            rate=self.rate_per_second, deposited=self.deposited, withdrawn=self.withdrawn,
            last_update_time=self.last_update_time, paused_at=self.paused_at, schedule=self.schedule,
            cliff_time=self.cliff_time, cliff_amount=self.cliff_amount or 0,
            steps=tuple(zip(self.step_times, self.step_amounts, strict=True)),
        )

    def claimable(self, now: int) -> int:
        return claimable_in(self.status, self.terms(), now)

    def _project_end_time(self, at: int) -> None:
        self.end_time = end_time(self.terms(), at)


def new_stream(chain_event: ChainEvent, fees_paid: int, stored: StoredSchedule | None = None) -> StreamState:
    """The state a creation event starts; `stored` is what storage said where `needs_storage`."""
    created = chain_event.event
    now = int(chain_event.ledger_closed_at.timestamp())
    source = FROM_EVENTS if stored is None else FROM_STORAGE if stored.found else UNAVAILABLE
    steps: tuple[tuple[int, int], ...] = ()
    cliff_time = cliff_amount = None
    schedule, conditional, allowance = "linear", False, False
    match created:
        case StreamCreated(rate_per_second=0):  # create_conditional_stream: milestones, none met yet
            schedule, conditional = "steps", True
            steps = tuple((LOCKED, amount) for _, amount in stored.steps) if stored else ()
            rate, start = 0, created.start_time
        case StreamCreated():
            cliff_time = stored.cliff_time if stored else None
            rate, start = created.rate_per_second, created.start_time
        case StepVestingStreamCreated():
            schedule, steps = "steps", stored.steps if stored else ()
            rate, start = 0, now
        case HybridCliffStreamCreated():
            schedule, cliff_time, cliff_amount = "hybrid", created.cliff_time, created.cliff_unlock_amount
            rate, start = created.rate_per_second, now
        case AllowanceStreamCreated():
            allowance = True
            rate, start = created.rate_per_second, created.start_time
        case _:
            raise TypeError(f"{type(created).__name__} does not create a stream")
    state = StreamState(
        contract_id=chain_event.contract_id,
        stream_id=created.stream_id,
        sender=created.sender,
        recipient=created.recipient,
        token=created.token_address,
        rate_per_second=rate,
        deposited=getattr(created, "deposited_amount", 0),
        withdrawn=0,
        refunded=0,
        fees_paid=fees_paid,
        status="active",
        start_time=start,
        last_update_time=start,
        paused_at=None,
        end_time=None,
        schedule=schedule,
        cliff_time=cliff_time,
        cliff_amount=cliff_amount,
        step_times=tuple(time for time, _ in steps),
        step_amounts=tuple(amount for _, amount in steps),
        conditional=conditional,
        allowance=allowance,
        terms_source=source,
        dispute=None,
        bootstrap_ledger=None,
        created_at=chain_event.ledger_closed_at,
        updated_at=chain_event.ledger_closed_at,
        first_event_id=chain_event.id,
        last_event_id=chain_event.id,
    )
    state._project_end_time(start)
    return state


def apply(state: StreamState, chain_event: ChainEvent) -> None:
    """Advance `state` by one of its stream's events (not a creation: see new_stream)."""
    if (at := _advance(state, chain_event)) is not None:
        state._project_end_time(at)


def _advance(state: StreamState, chain_event: ChainEvent) -> int | None:
    """`apply` but for the end time's projection: the ledger time it is to be projected at, or None when
    the event set the end time itself or leaves it as it was. Until the next event of the stream that
    sets the end time or changes the stream otherwise than `_advance` does, the projection may wait."""
    event = chain_event.event
    now = int(chain_event.ledger_closed_at.timestamp())
    state.updated_at = chain_event.ledger_closed_at
    state.last_event_id = chain_event.id
    if state.status in FINISHED and isinstance(event, StreamPaused | StreamResumed):
        # Build 8723543 lets the sender resume a stream cancelled while paused (cancel_stream leaves
        # `paused` set and resume_stream checks nothing else): the event is published, but the stream
        # stays inactive, with nothing to claim. It changes nothing here either.
        return None
    projection_time: int | None = now
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
            _finish(state, "completed", now)
            return None
        case StreamCancelled():
            state.withdrawn = event.amount_withdrawn
            state.refunded = (event.refunded_amount if event.refunded_amount is not None
                              else max(state.deposited - state.withdrawn, 0))
            state.last_update_time = now
            _finish(state, "cancelled", now)
            return None
        case StreamPaused():
            state.status = "paused"
            state.paused_at = event.paused_at
        case StreamResumed():
            # the contract projects the end from what had accrued at the pause, then moves the anchor
            projected = end_time(state.terms(), now)
            if state.paused_at is not None:
                state.last_update_time += now - state.paused_at
            state.status = "active"
            state.paused_at = None
            state.end_time = projected
            projection_time = None
        case FeeCollected():
            state.fees_paid += event.fee_amount
        case RecipientTransferred():
            if event.settled_amount > 0:
                state.withdrawn += event.settled_amount
                state.last_update_time = event.timestamp
            state.recipient = event.new_recipient
        case MilestoneConditionUnlocked():
            _unlock_milestone(state, event.amount, event.timestamp)
            state.last_update_time = event.timestamp
        case StreamRateModified():
            state.rate_per_second = event.new_rate_per_second
            state.last_update_time = event.timestamp
        case DisputeRequested():
            state.dispute = "requested"
        case DisputeResolved():
            state.dispute = "approved" if event.approved else "rejected"
        case StreamClosed():
            state.status = "closed"  # its end time stays when it finished
            state.paused_at = None
            return None
        case _:
            raise TypeError(f"{type(event).__name__} does not change a stream")
    return projection_time if state.status not in FINISHED else None


def _finish(state: StreamState, status: str, now: int) -> None:
    state.status = status
    state.paused_at = None
    state.end_time = now


def _unlock_milestone(state: StreamState, amount: int, now: int) -> None:
    """verify_and_unlock_milestone: the first step still locked with this amount unlocks now (the
    contract matches by amount, so equal amounts unlock in storage order). Where the steps are not known
    (storage unavailable), the unlock is recorded as a step of its own."""
    for index, (unlock_time, step_amount) in enumerate(zip(state.step_times, state.step_amounts, strict=True)):
        if unlock_time == LOCKED and step_amount == amount:
            state.step_times = (*state.step_times[:index], now, *state.step_times[index + 1:])
            return
    state.step_times += (now,)
    state.step_amounts += (amount,)


StreamKey = tuple[str, int]  # (contract id, stream id)


def fold(
    streams: dict[StreamKey, StreamState],
    chain_events: Iterable[ChainEvent],
    stored: Mapping[StreamKey, StoredSchedule] | None = None,
) -> dict[str, tuple[str, str]]:
    """Advance `streams` by `chain_events`, in order: a creation starts its stream (with the creation fee
    the contract publishes just before it), every other stream event moves its stream on. An event of a
    stream created before the indexed history began has no state to change.

    Returns each stream event's stream parties (sender, recipient) as they were at that event: the
    recipient changes with a transfer, and whom an event concerns must not change with it."""
    pending_fees: dict[StreamKey, list[ChainEvent]] = {}
    parties_at: dict[str, tuple[str, str]] = {}
    # Each stream's end time is projected once, after its last event here (see _advance): a closing, the
    # one event that changes the stream without setting its end time, projects it first.
    projections: dict[StreamKey, int] = {}
    for chain_event in chain_events:
        event = chain_event.event
        if not isinstance(event, StreamEvent):
            continue
        key = (chain_event.contract_id, event.stream_id)
        current = streams.get(key)
        if isinstance(event, CREATIONS):
            if current is None:
                fees = pending_fees.pop(key, [])
                paid = sum(fee.event.fee_amount for fee in fees)  # type: ignore[attr-defined]
                current = streams[key] = new_stream(chain_event, paid, (stored or {}).get(key))
                parties_at.update((fee.id, (current.sender, current.recipient)) for fee in fees)
        elif current is not None:
            if isinstance(event, StreamClosed) and key in projections:
                current._project_end_time(projections.pop(key))
            if (at := _advance(current, chain_event)) is None:
                projections.pop(key, None)
            else:
                projections[key] = at
        elif isinstance(event, FeeCollected):
            pending_fees.setdefault(key, []).append(chain_event)
        if current is not None:
            parties_at[chain_event.id] = (current.sender, current.recipient)
    for key, at in projections.items():
        streams[key]._project_end_time(at)
    return parties_at


def stored_schedule_of(state: StreamState) -> StoredSchedule | None:
    """What storage said of a stream when it was created, as its row keeps it (to rebuild the stream
    from its events without reading storage again)."""
    if state.terms_source == FROM_EVENTS:
        return None
    if state.terms_source == UNAVAILABLE:
        return StoredSchedule(found=False)
    steps = tuple(zip(state.step_times, state.step_amounts, strict=True))
    return StoredSchedule(found=True, cliff_time=state.cliff_time if state.schedule == "linear" else None, steps=steps)
