import pytest

from devnet.contract import (
    ContractError,
    ContractTrap,
    FlowFiContract,
    InvalidInvocation,
    StreamStatus,
    claimable,
)
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

ADMIN = "GBDK4KAKYLSGPQSZB65NBASVBK7D6X7C6XCNA3EANO3KT7ZBDLGTP72S"
TREASURY = "GDPMDGEVMG3NDHKMATXNBCVOOLZQEIIM2J6FSWTUXLGXWFNU5UWZDWK6"
SENDER = "GAJKUTWHRMNW375TPXCKYDF4MLUBJIRD7YVKGCNN3J6S44GZE3N2LUBQ"
RECIPIENT = "GDD24I62LHMI6FRWMZ3OD36DDAM4MDQSFWS7G37HZDHHXTMBOGFV7GCO"
TOKEN = "CC5VQ6PDN44JTGIJ7XZAN2WPQHHCRQLOKWI2RRAXXRS3WR2HI25AHEX2"


def new_stream(contract: FlowFiContract, amount: int = 1000, duration: int = 10, now: int = 100) -> int:
    events = contract.create_stream(SENDER, RECIPIENT, TOKEN, amount, duration, now=now)
    created = events[-1]
    assert isinstance(created, StreamCreated)
    return created.stream_id


def withdrawn(stream_id: int, amount: int, now: int) -> TokensWithdrawn:
    return TokensWithdrawn(stream_id=stream_id, recipient=RECIPIENT, amount=amount, timestamp=now)


def test_create_stream_takes_the_fee_first_and_streams_the_net_amount() -> None:
    contract = FlowFiContract()
    assert contract.initialize(ADMIN, TREASURY, 250, now=1) == [
        Initialized(admin=ADMIN, treasury=TREASURY, fee_rate_bps=250)
    ]
    events = contract.create_stream(SENDER, RECIPIENT, TOKEN, 10_000, 7, now=50)
    assert events == [
        FeeCollected(stream_id=1, treasury=TREASURY, fee_amount=250, token=TOKEN),
        StreamCreated(stream_id=1, sender=SENDER, recipient=RECIPIENT, rate_per_second=9_750 // 7,
                      token_address=TOKEN, deposited_amount=9_750, start_time=50),
    ]
    stream = contract.streams[1]
    assert (stream.deposited_amount, stream.fees_paid, stream.last_update_time) == (9_750, 250, 50)
    assert new_stream(contract) == 2 and contract.stream_counter == 2


def test_create_stream_without_config_charges_no_fee() -> None:
    contract = FlowFiContract()
    events = contract.create_stream(SENDER, RECIPIENT, TOKEN, 1000, 10, now=5)
    assert [type(e) for e in events] == [StreamCreated]


@pytest.mark.parametrize(
    ("amount", "duration", "token", "name", "code"),
    [
        (0, 10, TOKEN, "InvalidAmount", 1),
        (-5, 10, TOKEN, "InvalidAmount", 1),
        (1000, 0, TOKEN, "InvalidDuration", 9),
        (9, 10, TOKEN, "InvalidRate", 11),
        (1000, 10, SENDER, "InvalidTokenAddress", 10),
    ],
)
def test_rejected_create_stream_changes_nothing(amount: int, duration: int, token: str, name: str, code: int) -> None:
    contract = FlowFiContract()
    with pytest.raises(ContractError) as caught:
        contract.create_stream(SENDER, RECIPIENT, token, amount, duration, now=1)
    assert (caught.value.name, caught.value.code) == (name, code)
    assert contract.streams == {}
    assert contract.stream_counter == 0


def test_withdraw_accrues_by_time_and_the_last_withdrawal_completes() -> None:
    contract = FlowFiContract()
    stream_id = new_stream(contract, amount=1000, duration=10, now=100)
    assert contract.withdraw(RECIPIENT, stream_id, now=104) == [withdrawn(stream_id, 400, 104)]
    assert contract.streams[stream_id].status is StreamStatus.ACTIVE
    assert contract.withdraw(RECIPIENT, stream_id, now=130) == [
        withdrawn(stream_id, 600, 130),
        StreamCompleted(stream_id=stream_id, recipient=RECIPIENT, total_withdrawn=1000),
    ]
    stream = contract.streams[stream_id]
    assert (stream.status, stream.is_active) == (StreamStatus.COMPLETED, False)
    with pytest.raises(ContractError, match="StreamInactive"):
        contract.withdraw(RECIPIENT, stream_id, now=140)


def test_full_accrual_alone_does_not_complete_a_stream() -> None:
    contract = FlowFiContract()
    stream_id = new_stream(contract, amount=1000, duration=10, now=100)
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
    contract = FlowFiContract()
    new_stream(contract, now=100)
    with pytest.raises(ContractError) as caught:
        contract.withdraw(caller, stream_id, now=now)
    assert caught.value.name == name
    assert contract.streams[1].withdrawn_amount == 0


def test_pause_freezes_accrual_and_resume_shifts_it_by_the_pause() -> None:
    contract = FlowFiContract()
    stream_id = new_stream(contract, amount=1000, duration=10, now=100)
    assert contract.pause_stream(SENDER, stream_id, now=103) == [
        StreamPaused(stream_id=stream_id, sender=SENDER, paused_at=103)
    ]
    stream = contract.streams[stream_id]
    assert (stream.paused, stream.status, claimable(stream, 109)) == (True, StreamStatus.PAUSED, 300)
    with pytest.raises(ContractError, match="StreamPaused") as caught:
        contract.withdraw(RECIPIENT, stream_id, now=109)
    assert caught.value.code == 12
    with pytest.raises(ContractError, match="StreamAlreadyPaused"):
        contract.pause_stream(SENDER, stream_id, now=109)
    assert contract.resume_stream(SENDER, stream_id, now=110) == [
        StreamResumed(stream_id=stream_id, sender=SENDER, new_end_time=117)
    ]
    assert stream.last_update_time == 107
    assert contract.withdraw(RECIPIENT, stream_id, now=112)[0] == withdrawn(stream_id, 500, 112)
    with pytest.raises(ContractError, match="StreamNotPaused") as caught:
        contract.resume_stream(SENDER, stream_id, now=113)
    assert caught.value.code == 13


def test_top_up_is_allowed_while_paused_and_keeps_the_accrual_anchor() -> None:
    contract = FlowFiContract()
    contract.initialize(ADMIN, TREASURY, 100, now=1)
    stream_id = new_stream(contract, amount=1000, duration=10, now=100)  # fee 10, net 990, rate 99
    contract.pause_stream(SENDER, stream_id, now=102)
    events = contract.top_up_stream(SENDER, stream_id, 500, now=105)
    remaining = 990 + 495 - 198
    assert events == [
        FeeCollected(stream_id=stream_id, treasury=TREASURY, fee_amount=5, token=TOKEN),
        StreamToppedUp(stream_id=stream_id, sender=SENDER, amount=495, new_deposited_amount=1485,
                       new_end_time=105 + remaining // 99),
    ]
    stream = contract.streams[stream_id]
    assert (stream.deposited_amount, stream.last_update_time, stream.fees_paid) == (1485, 100, 15)


def test_only_the_sender_manages_a_stream() -> None:
    contract = FlowFiContract()
    stream_id = new_stream(contract)
    for call in (contract.cancel_stream, contract.pause_stream, contract.resume_stream):
        with pytest.raises(ContractError, match="Unauthorized"):
            call(RECIPIENT, stream_id, now=105)
    with pytest.raises(ContractError, match="Unauthorized"):
        contract.top_up_stream(RECIPIENT, stream_id, 100, now=105)


def test_cancel_pays_the_accrued_amount_and_refunds_the_rest() -> None:
    contract = FlowFiContract()
    stream_id = new_stream(contract, amount=1000, duration=10, now=100)
    contract.withdraw(RECIPIENT, stream_id, now=102)
    assert contract.cancel_stream(SENDER, stream_id, now=105) == [
        StreamCancelled(stream_id=stream_id, sender=SENDER, recipient=RECIPIENT, amount_withdrawn=500,
                        refunded_amount=500)
    ]
    stream = contract.streams[stream_id]
    assert (stream.status, stream.is_active, stream.withdrawn_amount, stream.refunded) == (
        StreamStatus.CANCELLED, False, 500, 500)
    with pytest.raises(ContractError, match="StreamInactive"):
        contract.cancel_stream(SENDER, stream_id, now=106)


def test_a_stream_cancelled_while_paused_keeps_its_pause_and_can_be_resumed_to_nothing() -> None:
    """lib.rs@8723543: cancel_stream leaves `paused` set, resume_stream checks only `paused`."""
    contract = FlowFiContract()
    stream_id = new_stream(contract, amount=1000, duration=10, now=100)
    contract.pause_stream(SENDER, stream_id, now=103)
    cancelled = contract.cancel_stream(SENDER, stream_id, now=109)
    assert cancelled == [StreamCancelled(stream_id=stream_id, sender=SENDER, recipient=RECIPIENT,
                                         amount_withdrawn=300, refunded_amount=700)]
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
        with pytest.raises(ContractError, match="StreamInactive"):
            call(SENDER, stream_id, now=121)
    with pytest.raises(ContractError, match="StreamInactive"):
        contract.withdraw(RECIPIENT, stream_id, now=121)
    with pytest.raises(ContractError, match="StreamNotPaused"):
        contract.resume_stream(SENDER, stream_id, now=121)


def test_arithmetic_that_overflows_on_chain_traps() -> None:
    contract = FlowFiContract()
    contract.initialize(ADMIN, TREASURY, 1000, now=1)
    with pytest.raises(ContractTrap):  # amount * bps overflows i128
        contract.create_stream(SENDER, RECIPIENT, TOKEN, 2**127 - 1, 10, now=5)
    assert contract.streams == {} and contract.stream_counter == 0
    contract.update_fee_config(ADMIN, TREASURY, 0, now=6)
    stream_id = new_stream(contract, amount=2**126, duration=1, now=10)
    with pytest.raises(ContractTrap):  # the deposit overflows i128
        contract.top_up_stream(SENDER, stream_id, 2**126, now=11)
    assert contract.streams[stream_id].deposited_amount == 2**126


def test_admin_functions_check_the_admin() -> None:
    contract = FlowFiContract()
    with pytest.raises(ContractError, match="NotInitialized"):
        contract.transfer_admin(ADMIN, SENDER, now=1)
    with pytest.raises(ContractError, match="InvalidFeeRate"):
        contract.initialize(ADMIN, TREASURY, 1001, now=1)
    contract.initialize(ADMIN, TREASURY, 1000, now=1)
    with pytest.raises(ContractError, match="AlreadyInitialized"):
        contract.initialize(ADMIN, TREASURY, 0, now=2)
    with pytest.raises(ContractError, match="NotAdmin"):
        contract.update_fee_config(SENDER, SENDER, 5, now=2)
    assert contract.update_fee_config(ADMIN, SENDER, 5, now=2) == [
        FeeConfigUpdated(admin=ADMIN, old_treasury=TREASURY, new_treasury=SENDER, old_fee_rate_bps=1000,
                         new_fee_rate_bps=5)
    ]
    assert contract.transfer_admin(ADMIN, RECIPIENT, now=3) == [
        AdminTransferred(previous_admin=ADMIN, new_admin=RECIPIENT)
    ]
    with pytest.raises(ContractError, match="NotAdmin"):
        contract.update_fee_config(ADMIN, TREASURY, 5, now=4)
    assert contract.config is not None
    assert (contract.config.admin, contract.config.treasury, contract.config.fee_rate_bps) == (RECIPIENT, SENDER, 5)


def test_invoke_by_name_accepts_decimal_strings_and_refuses_what_cannot_be_called() -> None:
    contract = FlowFiContract()
    args = {"sender": SENDER, "recipient": RECIPIENT, "token_address": TOKEN, "amount": "5000", "duration": "10"}
    events = contract.invoke("create_stream", args, now=1)
    assert contract.result_of("create_stream", events) == 1
    assert contract.streams[1].deposited_amount == 5000
    with pytest.raises(InvalidInvocation, match="token"):
        contract.invoke("create_stream", {**args, "token": TOKEN}, now=2)
    with pytest.raises(InvalidInvocation, match="unknown function"):
        contract.invoke("mint", {}, now=2)
    with pytest.raises(InvalidInvocation, match="stream_id"):
        contract.invoke("withdraw", {"recipient": RECIPIENT, "stream_id": "one"}, now=2)
