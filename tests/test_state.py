from __future__ import annotations

from datetime import UTC, datetime

from indexer.accrual import claimable
from indexer.events import (
    ChainEvent,
    FeeCollected,
    StreamCancelled,
    StreamCreated,
    StreamPaused,
    StreamResumed,
    TokensWithdrawn,
)
from indexer.state import apply, new_stream

SENDER, RECIPIENT, TOKEN = "GSENDER", "GRECIPIENT", "CTOKEN"


def at(second: int, event: object, n: int = 0) -> ChainEvent:
    return ChainEvent(id=f"{second:019d}-{n:010d}", ledger=second, tx_hash="00",
                      ledger_closed_at=datetime.fromtimestamp(second, UTC), contract_id="C", event=event)  # type: ignore[arg-type]


def created(start: int = 1000, rate: int = 10, deposit: int = 1005) -> ChainEvent:
    return at(start, StreamCreated(stream_id=1, sender=SENDER, recipient=RECIPIENT, rate_per_second=rate,
                                   token_address=TOKEN, deposited_amount=deposit, start_time=start))


def test_accrual_is_capped_by_the_deposit_and_the_end_time_is_the_contracts() -> None:
    stream = new_stream(created(), fees_paid=3)
    assert stream.claimable(1050) == 500
    assert stream.claimable(5000) == 1005
    assert stream.end_time == 1000 + 1005 // 10
    assert claimable(rate=10, deposited=100, withdrawn=100, last_update_time=0, paused_at=None, now=50) == 0


def test_a_pause_freezes_accrual_and_a_resume_shifts_it_by_the_pause() -> None:
    stream = new_stream(created(), fees_paid=0)
    apply(stream, at(1010, StreamPaused(stream_id=1, sender=SENDER, paused_at=1010)))
    assert stream.status == "paused" and stream.end_time is None
    assert stream.claimable(1500) == 100
    apply(stream, at(1110, StreamResumed(stream_id=1, sender=SENDER, new_end_time=1200)))
    assert stream.status == "active" and stream.last_update_time == 1100
    assert stream.claimable(1120) == 200
    assert stream.end_time == 1100 + 1005 // 10


def test_withdrawals_fees_and_cancellation() -> None:
    stream = new_stream(created(), fees_paid=5)
    apply(stream, at(1020, TokensWithdrawn(stream_id=1, recipient=RECIPIENT, amount=200, timestamp=1020)))
    assert (stream.withdrawn, stream.last_update_time, stream.claimable(1020)) == (200, 1020, 0)
    apply(stream, at(1030, FeeCollected(stream_id=1, treasury="GTREASURY", fee_amount=7, token=TOKEN)))
    assert stream.fees_paid == 12
    apply(stream, at(1040, StreamCancelled(stream_id=1, sender=SENDER, recipient=RECIPIENT, amount_withdrawn=400,
                                           refunded_amount=605)))
    assert (stream.status, stream.withdrawn, stream.refunded, stream.end_time) == ("cancelled", 400, 605, 1040)
    assert stream.claimable(9999) == 0
    assert stream.last_event_id == at(1040, None).id
