"""c9f5d2e's creation entry points on the contract model: checks in the contract's order with their codes,
what each publishes in order (the token transfers included), and what each stream then accrues."""

import pytest

from devnet.contract import FlowFiContract
from devnet.terms import (
    LINEAR,
    U64_MAX,
    BatchStreamInput,
    ConditionalMilestone,
    HybridCliffLinear,
    InvalidInvocation,
    OracleAttestation,
    PriceTarget,
    StepTranches,
    TimeOnly,
    Transfer,
    VestingStep,
    claimable,
)
from indexer.events import (
    AllowanceStreamCreated,
    FeeCollected,
    HybridCliffStreamCreated,
    StepVestingStreamCreated,
    StreamCreated,
)
from tests.devnet_model import (
    ADMIN,
    CONTRACT,
    OTHER_TOKEN,
    RECIPIENT,
    SENDER,
    TOKEN,
    TREASURY,
    events,
    initialized,
    refused,
    state_of,
    trapped,
)

NEWEST = "c9f5d2e"


def paused_protocol() -> FlowFiContract:
    contract = initialized(NEWEST)
    contract.set_protocol_pause(ADMIN, True, now=2)
    return contract


def created(stream_id: int, amount: int, rate: int, now: int, token: str = TOKEN) -> StreamCreated:
    return StreamCreated(stream_id=stream_id, sender=SENDER, recipient=RECIPIENT, rate_per_second=rate,
                         token_address=token, deposited_amount=amount, start_time=now)


def test_create_stream_takes_the_tokens_pays_the_fee_then_announces_the_stream() -> None:
    contract = initialized(NEWEST, fee_rate_bps=100)
    assert contract.create_stream(SENDER, RECIPIENT, TOKEN, 10_000, 10, now=50) == [
        Transfer(TOKEN, SENDER, CONTRACT, 10_000),
        Transfer(TOKEN, CONTRACT, TREASURY, 100),
        FeeCollected(stream_id=1, treasury=TREASURY, fee_amount=100, token=TOKEN),
        created(1, 9_900, 990, 50),
    ]
    stream = contract.streams[1]
    assert (stream.legacy, stream.schedule, stream.cliff_time, stream.is_allowance_based) == (
        False, LINEAR, None, False)
    contract.update_fee_config(ADMIN, TREASURY, 1000, now=51)
    error = refused(contract, contract.create_stream, SENDER, RECIPIENT, TOKEN, 2**127 - 1, 10, now=52)
    assert (error.name, error.code) == ("ArithmeticOverflow", 34), "c9f5d2e checks the fee's product"


@pytest.mark.parametrize(
    ("function", "args"),
    [
        ("create_stream", (SENDER, RECIPIENT, TOKEN, 1000, 10)),
        ("batch_create_streams", (SENDER, [BatchStreamInput(RECIPIENT, TOKEN, 1000, 10)])),
        ("create_stream_with_cliff", (SENDER, RECIPIENT, TOKEN, 1000, 10, 5)),
        ("create_step_vesting_stream", (SENDER, RECIPIENT, TOKEN, 1000, [VestingStep(50, 1000)])),
        ("create_hybrid_cliff_stream", (SENDER, RECIPIENT, TOKEN, 1000, 50, 100, 10)),
        ("create_conditional_stream", (SENDER, RECIPIENT, TOKEN, 1000, [ConditionalMilestone(1, 1000, TimeOnly(5))])),
        ("create_allowance_stream", (SENDER, RECIPIENT, TOKEN, 10)),
    ],
)
def test_every_creation_is_refused_while_the_protocol_is_paused_and_before_any_other_check(
    function: str, args: tuple[object, ...]
) -> None:
    contract = paused_protocol()
    call = getattr(contract, function)
    assert refused(contract, call, *args, now=3).code == 15
    broken = tuple(0 if isinstance(a, int) and a == 1000 else a for a in args)  # an invalid amount as well
    assert refused(contract, call, *broken, now=3).code == 15
    contract.set_protocol_pause(ADMIN, False, now=4)
    assert events(call(*args, now=5))


def test_batch_create_streams_moves_each_token_once_then_creates_the_streams_in_order() -> None:
    contract = initialized(NEWEST, fee_rate_bps=100)
    batch = [BatchStreamInput(RECIPIENT, TOKEN, 1000, 10), BatchStreamInput(RECIPIENT, OTHER_TOKEN, 2000, 20, 5),
             BatchStreamInput(RECIPIENT, TOKEN, 3000, 30, 30)]
    emitted = contract.batch_create_streams(SENDER, batch, now=100)
    fee = lambda stream_id, amount, token: [  # noqa: E731
        Transfer(token, CONTRACT, TREASURY, amount),
        FeeCollected(stream_id=stream_id, treasury=TREASURY, fee_amount=amount, token=token)]
    assert emitted == [
        Transfer(TOKEN, SENDER, CONTRACT, 4000), Transfer(OTHER_TOKEN, SENDER, CONTRACT, 2000),
        *fee(1, 10, TOKEN), created(1, 990, 99, 100),
        *fee(2, 20, OTHER_TOKEN), created(2, 1980, 99, 100, OTHER_TOKEN),
        *fee(3, 30, TOKEN), created(3, 2970, 99, 100),
    ]
    assert contract.result_of("batch_create_streams", emitted) == [1, 2, 3]
    assert [contract.streams[i].cliff_time for i in (1, 2, 3)] == [None, 105, 130]


@pytest.mark.parametrize(
    ("batch", "name"),
    [
        ([], "InvalidAmount"),
        ([BatchStreamInput(RECIPIENT, TOKEN, 1000, 10)] * 51, "BatchTooLarge"),
        ([BatchStreamInput(RECIPIENT, TOKEN, 1000, 10), BatchStreamInput(RECIPIENT, TOKEN, 0, 10)], "InvalidAmount"),
        ([BatchStreamInput(RECIPIENT, TOKEN, 1000, 0)], "InvalidDuration"),
        ([BatchStreamInput(RECIPIENT, TOKEN, 1000, 10, 0)], "InvalidDuration"),
        ([BatchStreamInput(RECIPIENT, TOKEN, 1000, 10, 11)], "InvalidDuration"),
        ([BatchStreamInput(RECIPIENT, SENDER, 1000, 10)], "InvalidTokenAddress"),
        ([BatchStreamInput(RECIPIENT, TOKEN, 9, 10)], "InvalidRate"),
        ([BatchStreamInput(RECIPIENT, TOKEN, 10, 10)], "InvalidRate"),  # 1 a second gross, 0 net of the fee
        ([BatchStreamInput(RECIPIENT, TOKEN, 2**126, 1)] * 2, "ArithmeticOverflow"),
    ],
)
def test_batch_create_streams_checks(batch: list[BatchStreamInput], name: str) -> None:
    contract = initialized(NEWEST, fee_rate_bps=1000)
    if name == "ArithmeticOverflow":
        contract.update_fee_config(ADMIN, TREASURY, 0, now=2)
    assert refused(contract, contract.batch_create_streams, SENDER, batch, now=100).name == name
    assert contract.stream_counter == 0


def test_a_cliff_that_ends_after_u64_max_traps() -> None:
    contract = initialized(NEWEST)
    near_the_end = U64_MAX - 5
    trapped(contract, contract.batch_create_streams, SENDER, [BatchStreamInput(RECIPIENT, TOKEN, 1000, 10, 10)],
            now=near_the_end)
    trapped(contract, contract.create_stream_with_cliff, SENDER, RECIPIENT, TOKEN, 1000, 10, 10, now=near_the_end)


def test_a_stream_with_a_cliff_accrues_from_its_start_but_pays_nothing_before_the_cliff() -> None:
    contract = initialized(NEWEST)
    assert events(contract.create_stream_with_cliff(SENDER, RECIPIENT, TOKEN, 1000, 10, 4, now=100)) == [
        created(1, 1000, 100, 100)]
    stream = contract.streams[1]
    assert stream.cliff_time == 104
    assert [claimable(stream, t) for t in (103, 104, 107)] == [0, 400, 700]
    for cliff, duration in ((0, 10), (11, 10), (1, 0)):
        error = refused(contract, contract.create_stream_with_cliff, SENDER, RECIPIENT, TOKEN, 1000, duration, cliff,
                        now=100)
        assert error.name == "InvalidDuration"
    assert refused(contract, contract.create_stream_with_cliff, SENDER, RECIPIENT, TOKEN, 0, 0, 0, now=1).code == 1
    assert refused(contract, contract.create_stream_with_cliff, SENDER, RECIPIENT, TOKEN, 9, 10, 5, now=1).code == 11


def test_step_vesting_unlocks_each_step_at_its_time() -> None:
    contract = initialized(NEWEST, fee_rate_bps=100)
    steps = [VestingStep(150, 4000), VestingStep(200, 5900)]  # the net amount: 10_000 less the 1 % fee
    emitted = contract.create_step_vesting_stream(SENDER, RECIPIENT, TOKEN, 10_000, steps, now=100)
    assert [type(e) for e in emitted] == [Transfer, Transfer, FeeCollected, StepVestingStreamCreated]
    assert emitted[-1] == StepVestingStreamCreated(stream_id=1, sender=SENDER, recipient=RECIPIENT,
                                                   token_address=TOKEN, deposited_amount=9900, step_count=2,
                                                   last_unlock_time=200)
    stream = contract.streams[1]
    assert (stream.rate_per_second, stream.schedule) == (0, StepTranches(tuple(steps)))
    assert [claimable(stream, t) for t in (149, 150, 199, 200)] == [0, 4000, 4000, 9900]


@pytest.mark.parametrize(
    ("amount", "steps", "token", "name"),
    [
        (0, [], SENDER, "InvalidAmount"),
        (1000, [], SENDER, "InvalidTokenAddress"),
        (1000, [], TOKEN, "EmptyVestingSchedule"),
        (1000, [VestingStep(200 + i, 1) for i in range(13)], TOKEN, "TooManyVestingSteps"),
        (1000, [VestingStep(200, 0)], TOKEN, "InvalidVestingStepAmount"),
        (1000, [VestingStep(100, 1000)], TOKEN, "VestingStepBeforeStart"),
        (1000, [VestingStep(200, 500), VestingStep(200, 500)], TOKEN, "NonMonotonicVestingSteps"),
        (1000, [VestingStep(200, 500), VestingStep(300, 400)], TOKEN, "VestingStepTotalMismatch"),
        (1000, [VestingStep(200, 1000)], TOKEN, "VestingStepTotalMismatch"),  # the gross amount, not the net
    ],
)
def test_step_vesting_checks(amount: int, steps: list[VestingStep], token: str, name: str) -> None:
    contract = initialized(NEWEST, fee_rate_bps=100 if name == "VestingStepTotalMismatch" else 0)
    call = contract.create_step_vesting_stream
    assert refused(contract, call, SENDER, RECIPIENT, token, amount, steps, now=100).name == name


def test_a_hybrid_stream_releases_its_lump_at_the_cliff_then_streams_from_there() -> None:
    contract = initialized(NEWEST)
    emitted = contract.create_hybrid_cliff_stream(SENDER, RECIPIENT, TOKEN, 10_000, 200, 4000, 60, now=100)
    assert emitted == [Transfer(TOKEN, SENDER, CONTRACT, 10_000), HybridCliffStreamCreated(
        stream_id=1, sender=SENDER, recipient=RECIPIENT, token_address=TOKEN, deposited_amount=10_000,
        cliff_time=200, cliff_unlock_amount=4000, rate_per_second=100)]
    stream = contract.streams[1]
    assert (stream.cliff_time, stream.schedule) == (200, HybridCliffLinear(200, 4000))
    assert [claimable(stream, t) for t in (199, 200, 230, 10**6)] == [0, 4000, 7000, 10_000]


@pytest.mark.parametrize(
    ("amount", "cliff_time", "cliff_amount", "linear_duration", "token", "name"),
    [
        (0, 200, 10, 0, SENDER, "InvalidAmount"),
        (1000, 200, 10, 0, SENDER, "InvalidCliffParameters"),  # before the token
        (1000, 200, 10, 10, SENDER, "InvalidTokenAddress"),
        (1000, 100, 10, 10, TOKEN, "InvalidCliffParameters"),
        (1000, 200, 0, 10, TOKEN, "InvalidCliffParameters"),
        (1000, 200, 1000, 10, TOKEN, "InvalidCliffParameters"),
        (1000, 200, 995, 10, TOKEN, "InvalidCliffParameters"),  # 5 over 10 s: 0 a second
    ],
)
def test_hybrid_checks(amount: int, cliff_time: int, cliff_amount: int, linear_duration: int, token: str,
                       name: str) -> None:
    contract = initialized(NEWEST)
    call = contract.create_hybrid_cliff_stream
    error = refused(contract, call, SENDER, RECIPIENT, token, amount, cliff_time, cliff_amount, linear_duration,
                    now=100)
    assert error.name == name


def test_a_conditional_stream_locks_a_step_per_milestone_and_keeps_the_milestones_as_given() -> None:
    contract = initialized(NEWEST)
    milestones = [ConditionalMilestone(7, 300, TimeOnly(500)),
                  ConditionalMilestone(3, 700, OracleAttestation(ADMIN, bytes(range(32))), is_unlocked=True)]
    assert events(contract.create_conditional_stream(SENDER, RECIPIENT, TOKEN, 1000, milestones, now=100)) == [
        created(1, 1000, 0, 100)]
    assert contract.streams[1].schedule == StepTranches((VestingStep(U64_MAX, 300), VestingStep(U64_MAX, 700)))
    assert contract.milestones[1] == tuple(milestones)
    assert contract.attested[1] == ()
    assert claimable(contract.streams[1], U64_MAX - 1) == 0


@pytest.mark.parametrize(
    ("amount", "milestones", "name"),
    [
        (0, [], "InvalidAmount"),
        (1000, [], "EmptyVestingSchedule"),
        (13, [ConditionalMilestone(i, 1, TimeOnly(0)) for i in range(13)], "TooManyMilestones"),
        (1000, [ConditionalMilestone(1, 0, TimeOnly(0)), ConditionalMilestone(2, 1000, TimeOnly(0))],
         "InvalidVestingStepAmount"),
        (1000, [ConditionalMilestone(1, 500, TimeOnly(0)), ConditionalMilestone(1, 500, TimeOnly(0))],
         "InvalidMilestone"),
        (1000, [ConditionalMilestone(1, 999, TimeOnly(0))], "VestingStepTotalMismatch"),
    ],
)
def test_conditional_checks(amount: int, milestones: list[ConditionalMilestone], name: str) -> None:
    contract = initialized(NEWEST)
    call = contract.create_conditional_stream
    assert refused(contract, call, SENDER, RECIPIENT, TOKEN, amount, milestones, now=100).name == name


def test_a_price_target_needs_an_oracle_the_devnet_does_not_have() -> None:
    contract = initialized(NEWEST)
    before = state_of(contract)
    with pytest.raises(InvalidInvocation, match="PriceTarget"):
        contract.create_conditional_stream(SENDER, RECIPIENT, TOKEN, 1000, [
            ConditionalMilestone(1, 1000, PriceTarget(OTHER_TOKEN, 5, True))], now=100)
    assert state_of(contract) == before


def test_an_allowance_stream_has_nothing_deposited_and_streams_only_what_top_ups_bring() -> None:
    contract = initialized(NEWEST, fee_rate_bps=100)
    assert contract.create_allowance_stream(SENDER, RECIPIENT, TOKEN, 3600, now=100) == [
        AllowanceStreamCreated(stream_id=1, sender=SENDER, recipient=RECIPIENT, token_address=TOKEN,
                               rate_per_second=1, start_time=100)]
    stream = contract.streams[1]
    assert (stream.deposited_amount, stream.rate_per_second, stream.is_allowance_based) == (0, 1, True)
    assert refused(contract, contract.withdraw, RECIPIENT, 1, now=200).name == "InvalidAmount"
    contract.top_up_stream(SENDER, 1, 1000, now=200)  # 990 net
    assert claimable(contract.streams[1], 200) == 100, "accrual counts from the stream's start"
    assert refused(contract, contract.create_allowance_stream, SENDER, RECIPIENT, TOKEN, 0, now=1).code == 9
    assert refused(contract, contract.create_allowance_stream, SENDER, RECIPIENT, SENDER, 10, now=1).code == 10
    contract.tokens.approve(TOKEN, SENDER, CONTRACT, 0)
    assert refused(contract, contract.create_allowance_stream, SENDER, RECIPIENT, TOKEN, 10, now=1).code == 33
