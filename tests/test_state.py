from __future__ import annotations

from datetime import UTC, datetime

from devnet.chain import Chain
from devnet.terms import StreamStatus, projected_end_time
from devnet.terms import claimable as contract_claimable
from devnet.traffic import Traffic
from indexer.accrual import FINISHED, Terms, claimable
from indexer.decode import decode
from indexer.events import (
    CREATIONS,
    U64_MAX,
    ChainEvent,
    FeeCollected,
    HybridCliffStreamCreated,
    StreamCancelled,
    StreamClosed,
    StreamCreated,
    StreamEvent,
    StreamPaused,
    StreamRateModified,
    StreamResumed,
    StreamToppedUp,
    TokensWithdrawn,
)
from indexer.rpc import raw_event
from indexer.state import StreamKey, StreamState, apply, fold, new_stream
from tests import devnet_model as model
from tests.indexing import MODEL_BUILD

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
    assert claimable(Terms(rate=10, deposited=100, withdrawn=100, last_update_time=0), 50) == 0


def test_an_end_time_past_u64_is_u64_max() -> None:
    # create_stream with a duration of u64::MAX: the rate rounds down, so the deposit lasts longer still
    longest = new_stream(created(rate=1, deposit=U64_MAX + 5), fees_paid=0)
    assert longest.end_time == U64_MAX
    apply(longest, at(2000, StreamPaused(stream_id=1, sender=SENDER, paused_at=2000)))
    assert longest.end_time == U64_MAX


def test_a_pause_freezes_accrual_and_a_resume_shifts_it_by_the_pause() -> None:
    stream = new_stream(created(), fees_paid=0)
    apply(stream, at(1010, StreamPaused(stream_id=1, sender=SENDER, paused_at=1010)))
    # while paused, the end time is when the deposit would run out if resumed at the last event
    assert stream.status == "paused" and stream.end_time == 1010 + (1005 - 100) // 10
    assert stream.claimable(1500) == 100
    apply(stream, at(1110, StreamResumed(stream_id=1, sender=SENDER, new_end_time=1200)))
    assert stream.status == "active" and stream.last_update_time == 1100
    assert stream.claimable(1120) == 200
    assert stream.end_time == 1100 + 1005 // 10 == 1200


def test_a_stream_that_has_fully_accrued_ends_at_its_last_event_as_the_contract_says() -> None:
    stream = new_stream(created(rate=10, deposit=1005), fees_paid=0)
    apply(stream, at(5000, StreamToppedUp(stream_id=1, amount=20)))
    # new_end_time = now + (deposited - withdrawn - claimable) / rate, and everything has accrued
    assert (stream.deposited, stream.end_time) == (1025, 5000)


def test_the_end_time_is_rounded_down_so_the_last_units_vest_a_second_later() -> None:
    # the contract divides what is left by the rate: 1005 at 10 a second ends at 1100, when 1000 have vested
    stream = new_stream(created(rate=10, deposit=1005), fees_paid=0)
    assert (stream.end_time, stream.claimable(1100), stream.claimable(1101)) == (1100, 1000, 1005)
    contract = model.initialized("c9f5d2e")
    on_chain = contract.streams[model.linear(contract, amount=1000, duration=3, now=100)]  # 333 a second
    assert projected_end_time(on_chain) == 103
    assert [contract_claimable(on_chain, t) for t in (103, 104)] == [999, 1000]


def test_a_paused_hybrid_stream_ends_when_its_schedule_does_as_the_contract_projects_it() -> None:
    stream = new_stream(at(100, HybridCliffStreamCreated(
        stream_id=1, sender=SENDER, recipient=RECIPIENT, token_address=TOKEN, deposited_amount=10_000,
        cliff_time=200, cliff_unlock_amount=4000, rate_per_second=100)), fees_paid=0)
    apply(stream, at(230, StreamPaused(stream_id=1, sender=SENDER, paused_at=230)))
    assert (stream.status, stream.end_time) == ("paused", 200 + 6000 // 100)
    contract = model.initialized("c9f5d2e")
    hybrid = model.events(contract.create_hybrid_cliff_stream(
        model.SENDER, model.RECIPIENT, model.TOKEN, 10_000, 200, 4000, 60, now=100))[0].stream_id  # type: ignore[attr-defined]
    contract.pause_stream(model.SENDER, hybrid, now=230)
    assert projected_end_time(contract.streams[hybrid]) == stream.end_time


def test_a_rate_change_drops_claimable_to_0_and_keeps_what_had_accrued_in_the_stream() -> None:
    """modify_rate re-anchors without settling: the 400 accrued are no longer claimable, still deposited,
    in the contract and here."""
    contract = model.initialized("c9f5d2e")
    history = [at(1000, event) for event in
               model.events(contract.create_stream(model.SENDER, model.RECIPIENT, model.TOKEN, 1000, 100, now=1000))]
    streams: dict[StreamKey, StreamState] = {}
    fold(streams, history)
    assert contract_claimable(contract.streams[1], 1040) == streams[("C", 1)].claimable(1040) > 0
    history += [at(1040, event) for event in model.events(contract.modify_rate(model.SENDER, 1, 5, now=1040))]
    streams = {}
    fold(streams, history)
    on_chain, stream = contract.streams[1], streams[("C", 1)]
    assert (on_chain.withdrawn_amount, on_chain.deposited_amount) == (stream.withdrawn, stream.deposited)
    assert stream.withdrawn == 0
    for now in (1040, 1042, 1100, 1300):
        assert contract_claimable(on_chain, now) == stream.claimable(now), now
    assert (stream.claimable(1040), stream.claimable(1042)) == (0, 10)


def test_a_recipient_transfer_that_settles_everything_leaves_the_stream_active_as_on_chain() -> None:
    """transfer_recipient pays the old recipient what has accrued and completes nothing, and with nothing
    left to claim no withdrawal can complete the stream: it stays active, in the contract and here. The
    transfer's recipient in events is the new one."""
    contract = model.initialized("c9f5d2e")
    history = [at(100, event) for event in
               model.events(contract.create_stream(model.SENDER, model.RECIPIENT, model.TOKEN, 1000, 10, now=100))]
    history += [at(200, event) for event in
                model.events(contract.transfer_recipient(model.RECIPIENT, 1, model.STRANGER, now=200))]
    on_chain = contract.streams[1]
    assert (on_chain.status, on_chain.is_active, on_chain.withdrawn_amount) == (StreamStatus.ACTIVE, True, 1000)
    assert model.refused(contract, contract.withdraw, model.STRANGER, 1, now=300).name == "InvalidAmount"
    streams: dict[StreamKey, StreamState] = {}
    parties = fold(streams, history)
    stream = streams[("C", 1)]
    assert (stream.status, stream.withdrawn, stream.deposited, stream.claimable(300)) == ("active", 1000, 1000, 0)
    assert parties[history[-1].id] == (model.SENDER, model.STRANGER)


def test_fields_missing_from_older_builds_are_derived() -> None:
    stream = new_stream(created(), fees_paid=0)
    apply(stream, at(1010, StreamToppedUp(stream_id=1, amount=500)))  # before 2026-07-29: no new_end_time
    assert stream.deposited == 1505
    apply(stream, at(1020, StreamCancelled(stream_id=1, amount_withdrawn=200)))  # no refunded_amount
    assert (stream.status, stream.withdrawn, stream.refunded) == ("cancelled", 200, 1305)


def test_a_resume_of_a_stream_cancelled_while_paused_changes_nothing() -> None:
    stream = new_stream(created(), fees_paid=0)
    apply(stream, at(1010, StreamPaused(stream_id=1, sender=SENDER, paused_at=1010)))
    apply(stream, at(1020, StreamCancelled(stream_id=1, sender=SENDER, recipient=RECIPIENT, amount_withdrawn=100,
                                           refunded_amount=905)))
    before = (stream.status, stream.withdrawn, stream.refunded, stream.last_update_time, stream.end_time)
    apply(stream, at(1030, StreamResumed(stream_id=1, sender=SENDER, new_end_time=1030 + 905 // 10)))
    assert (stream.status, stream.withdrawn, stream.refunded, stream.last_update_time, stream.end_time) == before
    assert stream.claimable(99_999) == 0
    assert stream.last_event_id == at(1030, None).id and stream.updated_at == at(1030, None).ledger_closed_at


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


def test_the_end_time_equals_every_new_end_time_the_contract_publishes() -> None:
    """Random traffic on the local network's contract model; the state folded from its events has, after
    each top-up and resume, the end time the contract put in that event."""
    chain = Chain(genesis_time=1_000_000, build=MODEL_BUILD)
    chain.generate_history(6000, traffic=Traffic(seed=11, accounts=8), tx_per_ledger=8, seconds_per_ledger=7)
    streams: dict[int, StreamState] = {}
    fees: dict[int, int] = {}
    checked = 0
    for stored in chain.scan(after="", end_ledger=chain.latest.sequence + 1, limit=10**9,
                             match=lambda e: e.contract_id == chain.contract_id):
        chain_event = decode(raw_event(stored.json)).event
        assert chain_event is not None
        event = chain_event.event
        if isinstance(event, StreamCreated):
            streams[event.stream_id] = new_stream(chain_event, fees.pop(event.stream_id, 0))
        elif isinstance(event, FeeCollected) and event.stream_id not in streams:
            fees[event.stream_id] = event.fee_amount
        elif isinstance(event, StreamEvent):
            stream = streams[event.stream_id]
            finished = stream.status in FINISHED
            apply(stream, chain_event)
            if isinstance(event, StreamToppedUp | StreamResumed) and not finished:
                assert stream.end_time == event.new_end_time, (chain_event.id, event)
                checked += 1
    assert checked > 300


def test_folding_a_history_at_once_leaves_what_applying_each_event_leaves() -> None:
    """fold projects each stream's end time once, after the stream's last event it is given: every field,
    the end time included, is what `apply` (projecting after every event) leaves, in both builds' traffic."""
    kinds: set[type] = set()
    for build in (MODEL_BUILD, "c9f5d2e"):
        chain = Chain(genesis_time=1_000_000, build=build)
        chain.generate_history(3000, traffic=Traffic(seed=12, accounts=8), tx_per_ledger=8, seconds_per_ledger=7)
        events = [decode(raw_event(stored.json)).event
                  for stored in chain.scan(after="", end_ledger=chain.latest.sequence + 1, limit=10**9,
                                           match=lambda e, ours=chain.contract_id: e.contract_id == ours)]
        typed = [e for e in events if e is not None]
        kinds |= {type(e.event) for e in typed}
        at_once: dict[StreamKey, StreamState] = {}
        fold(at_once, typed)
        each: dict[StreamKey, StreamState] = {}
        fees: dict[StreamKey, int] = {}  # a creation fee comes just before its stream
        for chain_event in typed:
            event = chain_event.event
            if not isinstance(event, StreamEvent):
                continue
            key = (chain_event.contract_id, event.stream_id)
            if isinstance(event, CREATIONS):
                each.setdefault(key, new_stream(chain_event, fees.pop(key, 0)))
            elif key in each:
                apply(each[key], chain_event)
            elif isinstance(event, FeeCollected):
                fees[key] = fees.get(key, 0) + event.fee_amount
        assert at_once == each
        assert len(at_once) > 100
    assert {StreamClosed, StreamResumed, StreamPaused, StreamRateModified, TokensWithdrawn} <= kinds


def test_a_closing_that_follows_no_finish_keeps_the_end_projected_before_it() -> None:
    """The contract closes finished streams only; were one closed while running, fold would still leave
    the end time of its last event before the closing, as apply does."""
    events = [created(), at(1010, TokensWithdrawn(stream_id=1, recipient=RECIPIENT, amount=50, timestamp=1010), 1),
              at(1020, StreamPaused(stream_id=1, sender=SENDER, paused_at=1020), 2),
              at(1030, StreamClosed(stream_id=1), 3)]
    folded: dict[StreamKey, StreamState] = {}
    fold(folded, events)
    applied = new_stream(events[0], 0)
    for chain_event in events[1:]:
        apply(applied, chain_event)
    assert folded == {("C", 1): applied}
    assert applied.end_time is not None and applied.status == "closed"
