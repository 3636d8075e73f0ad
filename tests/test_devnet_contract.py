"""The contract model in build 8723543, and what does not depend on the build: invocation by name."""

import pytest

from devnet.calls import functions
from devnet.contract import FlowFiContract
from devnet.terms import NEWEST_BUILD, OLD_BUILD, InvalidInvocation, StreamStatus, Transfer, claimable
from indexer.events import (
    AdminTransferred,
    FeeCollected,
    FeeConfigUpdated,
    Initialized,
    StreamCancelled,
    StreamCompleted,
    StreamCreated,
    StreamPaused,
    StreamResumed,
    StreamToppedUp,
    TokensWithdrawn,
)
from tests.devnet_model import (
    ADMIN,
    CONTRACT,
    RECIPIENT,
    SENDER,
    TOKEN,
    TREASURY,
    events,
    linear,
    refused,
    state_of,
    trapped,
)


def old() -> FlowFiContract:
    return FlowFiContract(OLD_BUILD)


def withdrawn(stream_id: int, amount: int, now: int) -> TokensWithdrawn:
    return TokensWithdrawn(stream_id=stream_id, recipient=RECIPIENT, amount=amount, timestamp=now)


def test_create_stream_takes_the_tokens_then_the_fee_and_streams_the_net_amount() -> None:
    contract = old()
    assert contract.initialize(ADMIN, TREASURY, 250, now=1) == [
        Initialized(admin=ADMIN, treasury=TREASURY, fee_rate_bps=250)
    ]
    assert contract.create_stream(SENDER, RECIPIENT, TOKEN, 10_000, 7, now=50) == [
        Transfer(TOKEN, SENDER, CONTRACT, 10_000),
        Transfer(TOKEN, CONTRACT, TREASURY, 250),
        FeeCollected(stream_id=1, treasury=TREASURY, fee_amount=250, token=TOKEN),
        StreamCreated(stream_id=1, sender=SENDER, recipient=RECIPIENT, rate_per_second=9_750 // 7,
                      token_address=TOKEN, deposited_amount=9_750, start_time=50),
    ]
    stream = contract.streams[1]
    assert (stream.deposited_amount, stream.fees_paid, stream.last_update_time) == (9_750, 250, 50)
    assert stream.legacy, "8723543 stores its 12-field Stream"
    assert contract.config is not None and contract.config.legacy
    assert contract.contract_version is None, "8723543 keeps no version"
    assert linear(contract) == 2 and contract.stream_counter == 2


def test_create_stream_without_config_charges_no_fee() -> None:
    contract = old()
    emitted = contract.create_stream(SENDER, RECIPIENT, TOKEN, 1000, 10, now=5)
    assert [type(e) for e in emitted] == [Transfer, StreamCreated]


@pytest.mark.parametrize(
    ("amount", "duration", "token", "name", "code"),
    [
        (0, 10, TOKEN, "InvalidAmount", 1),
        (-5, 10, TOKEN, "InvalidAmount", 1),
        (1000, 0, TOKEN, "InvalidDuration", 9),
        (9, 10, TOKEN, "InvalidRate", 11),
        (1000, 10, SENDER, "InvalidTokenAddress", 10),
        (1000, 10, CONTRACT, "InvalidTokenAddress", 10),
    ],
)
def test_rejected_create_stream_changes_nothing(amount: int, duration: int, token: str, name: str, code: int) -> None:
    contract = old()
    error = refused(contract, contract.create_stream, SENDER, RECIPIENT, token, amount, duration, now=1)
    assert (error.name, error.code) == (name, code)
    assert contract.streams == {} and contract.stream_counter == 0


def test_withdraw_accrues_by_time_and_the_last_withdrawal_completes() -> None:
    contract = old()
    stream_id = linear(contract, amount=1000, duration=10, now=100)
    assert contract.withdraw(RECIPIENT, stream_id, now=104) == [
        Transfer(TOKEN, CONTRACT, RECIPIENT, 400), withdrawn(stream_id, 400, 104)]
    assert contract.streams[stream_id].status is StreamStatus.ACTIVE
    assert events(contract.withdraw(RECIPIENT, stream_id, now=130)) == [
        withdrawn(stream_id, 600, 130),
        StreamCompleted(stream_id=stream_id, recipient=RECIPIENT, total_withdrawn=1000),
    ]
    stream = contract.streams[stream_id]
    assert (stream.status, stream.is_active) == (StreamStatus.COMPLETED, False)
    assert refused(contract, contract.withdraw, RECIPIENT, stream_id, now=140).name == "StreamInactive"


def test_full_accrual_alone_does_not_complete_a_stream() -> None:
    contract = old()
    stream_id = linear(contract, amount=1000, duration=10, now=100)
    assert claimable(contract.streams[stream_id], 500) == 1000
    assert contract.streams[stream_id].status is StreamStatus.ACTIVE


@pytest.mark.parametrize(
    ("caller", "stream_id", "now", "name"),
    [
        (SENDER, 1, 105, "Unauthorized"),
        (RECIPIENT, 9, 105, "StreamNotFound"),
        (RECIPIENT, 1, 100, "InvalidAmount"),
    ],
)
def test_withdraw_checks(caller: str, stream_id: int, now: int, name: str) -> None:
    contract = old()
    linear(contract, now=100)
    assert refused(contract, contract.withdraw, caller, stream_id, now=now).name == name


def test_pause_freezes_accrual_and_resume_shifts_it_by_the_pause() -> None:
    contract = old()
    stream_id = linear(contract, amount=1000, duration=10, now=100)
    assert contract.pause_stream(SENDER, stream_id, now=103) == [
        StreamPaused(stream_id=stream_id, sender=SENDER, paused_at=103)
    ]
    stream = contract.streams[stream_id]
    assert (stream.paused, stream.status, claimable(stream, 109)) == (True, StreamStatus.PAUSED, 300)
    assert refused(contract, contract.withdraw, RECIPIENT, stream_id, now=109).code == 12
    assert refused(contract, contract.pause_stream, SENDER, stream_id, now=109).code == 14
    assert contract.resume_stream(SENDER, stream_id, now=110) == [
        StreamResumed(stream_id=stream_id, sender=SENDER, new_end_time=117)
    ]
    assert stream.last_update_time == 107
    assert contract.withdraw(RECIPIENT, stream_id, now=112)[1] == withdrawn(stream_id, 500, 112)
    assert refused(contract, contract.resume_stream, SENDER, stream_id, now=113).code == 13


def test_top_up_is_allowed_while_paused_and_keeps_the_accrual_anchor() -> None:
    contract = FlowFiContract(OLD_BUILD)
    contract.initialize(ADMIN, TREASURY, 100, now=1)
    stream_id = linear(contract, amount=1000, duration=10, now=100)  # fee 10, net 990, rate 99
    contract.pause_stream(SENDER, stream_id, now=102)
    remaining = 990 + 495 - 198
    assert contract.top_up_stream(SENDER, stream_id, 500, now=105) == [
        Transfer(TOKEN, SENDER, CONTRACT, 500),
        Transfer(TOKEN, CONTRACT, TREASURY, 5),
        FeeCollected(stream_id=stream_id, treasury=TREASURY, fee_amount=5, token=TOKEN),
        StreamToppedUp(stream_id=stream_id, sender=SENDER, amount=495, new_deposited_amount=1485,
                       new_end_time=105 + remaining // 99),
    ]
    stream = contract.streams[stream_id]
    assert (stream.deposited_amount, stream.last_update_time, stream.fees_paid) == (1485, 100, 15)


def test_only_the_sender_manages_a_stream() -> None:
    contract = old()
    stream_id = linear(contract)
    for call in (contract.cancel_stream, contract.pause_stream, contract.resume_stream):
        assert refused(contract, call, RECIPIENT, stream_id, now=105).name == "Unauthorized"
    assert refused(contract, contract.top_up_stream, RECIPIENT, stream_id, 100, now=105).code == 3
    assert refused(contract, contract.top_up_stream, SENDER, stream_id, 0, now=105).code == 1


def test_cancel_pays_the_accrued_amount_then_refunds_the_rest() -> None:
    contract = old()
    stream_id = linear(contract, amount=1000, duration=10, now=100)
    contract.withdraw(RECIPIENT, stream_id, now=102)
    assert contract.cancel_stream(SENDER, stream_id, now=105) == [
        Transfer(TOKEN, CONTRACT, RECIPIENT, 300),
        Transfer(TOKEN, CONTRACT, SENDER, 500),
        StreamCancelled(stream_id=stream_id, sender=SENDER, recipient=RECIPIENT, amount_withdrawn=500,
                        refunded_amount=500),
    ]
    stream = contract.streams[stream_id]
    assert (stream.status, stream.is_active, stream.withdrawn_amount, stream.refunded) == (
        StreamStatus.CANCELLED, False, 500, 500)
    assert refused(contract, contract.cancel_stream, SENDER, stream_id, now=106).name == "StreamInactive"


def test_a_stream_cancelled_while_paused_keeps_its_pause_and_can_be_resumed_to_nothing() -> None:
    """lib.rs@8723543: cancel_stream leaves `paused` set, resume_stream checks only `paused`."""
    contract = old()
    stream_id = linear(contract, amount=1000, duration=10, now=100)
    contract.pause_stream(SENDER, stream_id, now=103)
    assert events(contract.cancel_stream(SENDER, stream_id, now=109)) == [
        StreamCancelled(stream_id=stream_id, sender=SENDER, recipient=RECIPIENT, amount_withdrawn=300,
                        refunded_amount=700)]
    stream = contract.streams[stream_id]
    assert (stream.paused, stream.paused_at, stream.status) == (True, 103, StreamStatus.CANCELLED)
    # the refund was paid but not added to withdrawn: the new end time counts it as left
    assert contract.resume_stream(SENDER, stream_id, now=120) == [
        StreamResumed(stream_id=stream_id, sender=SENDER, new_end_time=120 + 700 // 100)
    ]
    assert (stream.status, stream.is_active, stream.paused, stream.last_update_time) == (
        StreamStatus.ACTIVE, False, False, 109 + 17)
    assert claimable(stream, 10**6) == 700  # what calculate_claimable says; the contract's getter says 0
    for call in (contract.cancel_stream, contract.pause_stream):
        assert refused(contract, call, SENDER, stream_id, now=121).name == "StreamInactive"
    assert refused(contract, contract.withdraw, RECIPIENT, stream_id, now=121).name == "StreamInactive"
    assert refused(contract, contract.resume_stream, SENDER, stream_id, now=121).name == "StreamNotPaused"


def test_arithmetic_that_overflows_on_chain_traps() -> None:
    contract = FlowFiContract(OLD_BUILD)
    contract.initialize(ADMIN, TREASURY, 1000, now=1)
    trapped(contract, contract.create_stream, SENDER, RECIPIENT, TOKEN, 2**127 - 1, 10, now=5)  # amount * bps
    contract.update_fee_config(ADMIN, TREASURY, 0, now=6)
    stream_id = linear(contract, amount=2**126, duration=1, now=10)
    trapped(contract, contract.top_up_stream, SENDER, stream_id, 2**126, now=11)  # the deposit
    assert contract.streams[stream_id].deposited_amount == 2**126
    big = linear(contract, amount=2**100, duration=2**63, now=10)  # rate 2**37: 2**63 s to go
    contract.pause_stream(SENDER, big, now=10)
    trapped(contract, contract.resume_stream, SENDER, big, now=2**63 + 5)  # now + left / rate overflows u64


def test_admin_functions_check_the_admin() -> None:
    contract = old()
    assert refused(contract, contract.transfer_admin, ADMIN, SENDER, now=1).name == "NotInitialized"
    assert refused(contract, contract.update_fee_config, ADMIN, SENDER, 5, now=1).name == "NotInitialized"
    assert refused(contract, contract.initialize, ADMIN, TREASURY, 1001, now=1).name == "InvalidFeeRate"
    contract.initialize(ADMIN, TREASURY, 1000, now=1)
    assert refused(contract, contract.initialize, ADMIN, TREASURY, 0, now=2).name == "AlreadyInitialized"
    assert refused(contract, contract.update_fee_config, SENDER, SENDER, 5, now=2).name == "NotAdmin"
    assert refused(contract, contract.update_fee_config, ADMIN, SENDER, 1001, now=2).name == "InvalidFeeRate"
    assert refused(contract, contract.transfer_admin, SENDER, SENDER, now=2).name == "NotAdmin"
    assert contract.update_fee_config(ADMIN, SENDER, 5, now=2) == [
        FeeConfigUpdated(admin=ADMIN, old_treasury=TREASURY, new_treasury=SENDER, old_fee_rate_bps=1000,
                         new_fee_rate_bps=5)
    ]
    assert contract.transfer_admin(ADMIN, RECIPIENT, now=3) == [
        AdminTransferred(previous_admin=ADMIN, new_admin=RECIPIENT)
    ]
    assert refused(contract, contract.update_fee_config, ADMIN, TREASURY, 5, now=4).name == "NotAdmin"
    assert contract.config is not None
    assert (contract.config.admin, contract.config.treasury, contract.config.fee_rate_bps) == (RECIPIENT, SENDER, 5)


def test_8723543_has_none_of_the_later_entry_points() -> None:
    contract = old()
    assert functions(OLD_BUILD) == ("initialize", "update_fee_config", "transfer_admin", "create_stream",
                                    "top_up_stream", "withdraw", "cancel_stream", "pause_stream", "resume_stream")
    later = sorted(set(functions(NEWEST_BUILD)) - set(functions(OLD_BUILD)))
    for name in later:
        with pytest.raises(InvalidInvocation, match="unknown function"):
            contract.invoke(name, {}, now=1)
    with pytest.raises(InvalidInvocation, match="unknown function 'close_stream'"):
        contract.close_stream(SENDER, 1, now=1)
    assert state_of(contract) == state_of(old())


def test_invoke_by_name_accepts_decimal_strings_and_refuses_what_cannot_be_called() -> None:
    contract = FlowFiContract()
    args = {"sender": SENDER, "recipient": RECIPIENT, "token_address": TOKEN, "amount": "5000", "duration": "10"}
    emitted = contract.invoke("create_stream", args, now=1)
    assert contract.result_of("create_stream", emitted) == 1
    assert contract.streams[1].deposited_amount == 5000
    cases = [
        ("create_stream", {**args, "token": TOKEN}, "unexpected argument 'token'"),
        ("create_stream", {k: v for k, v in args.items() if k != "duration"}, "missing argument 'duration'"),
        ("mint", {}, "unknown function"),
        ("withdraw", {"recipient": RECIPIENT, "stream_id": "one"}, "stream_id must be an integer"),
        ("withdraw", {"recipient": "G123", "stream_id": 1}, "recipient is not a G... or C... address"),
        ("create_stream", {**args, "amount": str(2**127)}, "amount must be an integer"),
        ("set_protocol_pause", {"caller": ADMIN, "paused": "yes"}, "paused must be true or false"),
        ("upgrade", {"new_wasm_hash": "00"}, "new_wasm_hash must be 32 bytes"),
        ("create_step_vesting_stream", {**{k: v for k, v in args.items() if k != "duration"}, "steps": [{}]},
         "steps\\[0\\] needs unlock_time, unlock_amount"),
        ("batch_withdraw", {"recipient": RECIPIENT, "stream_ids": 1}, "stream_ids must be a list"),
        ("create_conditional_stream",
         {**{k: v for k, v in args.items() if k != "duration"}, "milestones": [
             {"milestone_id": 1, "amount": 5000, "condition": {"PriceTarget": {
                 "oracle": TOKEN, "target_price": "1", "is_above": True}}}]},
         "PriceTarget conditions need a price oracle"),
    ]
    for function, call_args, message in cases:
        with pytest.raises(InvalidInvocation, match=message):
            contract.invoke(function, call_args, now=2)
    assert contract.stream_counter == 1
