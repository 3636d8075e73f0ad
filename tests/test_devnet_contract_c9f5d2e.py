"""The contract model in build c9f5d2e: protocol administration and stream operations, each refusal with its
code, the events and token transfers in publish order, the build's quirks, and its storage lifetimes."""

import pytest

from devnet.contract import FlowFiContract
from devnet.state import BUMP_AMOUNT, LIFETIME_THRESHOLD, stream_key
from devnet.terms import (
    U64_MAX,
    WASM_HASHES,
    ConditionalMilestone,
    DisputeStatus,
    OracleAttestation,
    StepTranches,
    StreamStatus,
    TimeOnly,
    Transfer,
    VestingStep,
    claimable,
)
from indexer.events import (
    ContractUpgraded,
    DisputeRequested,
    DisputeResolved,
    EmergencyGuardianUpdated,
    FeeCollected,
    Initialized,
    MilestoneConditionUnlocked,
    ProtocolPaused,
    ProtocolPauseStatus,
    RecipientTransferred,
    StateMigrated,
    StreamCancelled,
    StreamClosed,
    StreamRateModified,
    StreamResumed,
    StreamToppedUp,
    TokensWithdrawn,
)
from tests.devnet_model import (
    ADMIN,
    CONTRACT,
    RECIPIENT,
    SENDER,
    STRANGER,
    TOKEN,
    TREASURY,
    events,
    initialized,
    linear,
    refused,
    trapped,
)

NEWEST = "c9f5d2e"


def contract_with_stream(amount: int = 1000, duration: int = 10, now: int = 100) -> tuple[FlowFiContract, int]:
    contract = initialized(NEWEST)
    return contract, linear(contract, amount, duration, now)


def conditional(contract: FlowFiContract, *milestones: ConditionalMilestone, now: int = 100) -> int:
    total = sum(m.amount for m in milestones)
    return events(contract.create_conditional_stream(SENDER, RECIPIENT, TOKEN, total, list(milestones),
                                                     now=now))[-1].stream_id  # type: ignore[attr-defined, no-any-return]


# Protocol administration


def test_initialize_stores_the_five_field_config_and_data_version_2() -> None:
    contract = FlowFiContract(NEWEST)
    assert contract.initialize(ADMIN, TREASURY, 30, now=1) == [
        Initialized(admin=ADMIN, treasury=TREASURY, fee_rate_bps=30)]
    assert contract.config is not None
    assert (contract.config.legacy, contract.config.is_protocol_paused, contract.config.emergency_guardian) == (
        False, False, None)
    assert contract.contract_version == 2
    assert refused(contract, contract.initialize, ADMIN, TREASURY, 30, now=2).code == 5
    assert refused(FlowFiContract(NEWEST), FlowFiContract(NEWEST).initialize, ADMIN, TREASURY, 1001, now=2).code == 7


def test_the_admin_or_the_guardian_pauses_the_protocol_and_only_the_admin_lifts_it() -> None:
    uninitialized = FlowFiContract(NEWEST)
    assert refused(uninitialized, uninitialized.set_protocol_pause, STRANGER, True, now=1).name == "NotInitialized"
    assert refused(uninitialized, uninitialized.set_emergency_guardian, ADMIN, STRANGER, now=1).code == 8
    contract = initialized(NEWEST)
    assert refused(contract, contract.set_protocol_pause, STRANGER, True, now=2).name == "NotGuardian"
    assert refused(contract, contract.set_emergency_guardian, STRANGER, STRANGER, now=2).name == "NotAdmin"
    assert contract.set_emergency_guardian(ADMIN, STRANGER, now=2) == [
        EmergencyGuardianUpdated(admin=ADMIN, guardian=STRANGER)]
    assert contract.set_protocol_pause(STRANGER, True, now=3) == [
        ProtocolPaused(admin=STRANGER, is_paused=True), ProtocolPauseStatus(caller=STRANGER, paused=True, timestamp=3)]
    assert refused(contract, contract.set_protocol_pause, STRANGER, False, now=4).name == "NotAdmin"
    assert contract.set_protocol_pause(ADMIN, True, now=4) == [  # published though nothing changes
        ProtocolPaused(admin=ADMIN, is_paused=True), ProtocolPauseStatus(caller=ADMIN, paused=True, timestamp=4)]
    assert events(contract.set_emergency_pause(ADMIN, False, now=5))[1] == ProtocolPauseStatus(
        caller=ADMIN, paused=False, timestamp=5)
    assert contract.config is not None and not contract.config.is_protocol_paused
    assert contract.set_emergency_guardian(ADMIN, None, now=6) == [EmergencyGuardianUpdated(admin=ADMIN, guardian=None)]
    assert refused(contract, contract.set_emergency_pause, STRANGER, True, now=7).name == "NotGuardian"
    contract.update_fee_config(ADMIN, STRANGER, 10, now=8)
    contract.transfer_admin(ADMIN, RECIPIENT, now=9)
    assert (contract.config.admin, contract.config.treasury, contract.config.emergency_guardian) == (
        RECIPIENT, STRANGER, None)


def test_while_the_protocol_is_paused_streams_still_run_but_take_no_tokens() -> None:
    contract, stream_id = contract_with_stream()
    milestone_stream = conditional(contract, ConditionalMilestone(1, 100, TimeOnly(0)))
    contract.set_protocol_pause(ADMIN, True, now=101)
    assert refused(contract, contract.top_up_stream, SENDER, stream_id, 0, now=102).name == "ProtocolPaused"
    contract.withdraw(RECIPIENT, stream_id, now=102)
    contract.pause_stream(SENDER, stream_id, now=103)
    contract.modify_rate(SENDER, stream_id, 50, now=103)
    contract.resume_stream(SENDER, stream_id, now=104)
    contract.transfer_recipient(RECIPIENT, stream_id, STRANGER, now=105)
    contract.verify_and_unlock_milestone(SENDER, milestone_stream, 1, now=105)
    contract.cancel_stream(SENDER, stream_id, now=106)
    contract.close_stream(SENDER, stream_id, now=107)
    assert stream_id not in contract.streams


def test_upgrade_records_the_new_code_and_keeps_running_c9f5d2e() -> None:
    contract = FlowFiContract(NEWEST)
    new = bytes(range(32))
    assert refused(contract, contract.upgrade, new, now=1).name == "NotInitialized"
    contract.initialize(ADMIN, TREASURY, 0, now=1)
    assert contract.upgrade(new, now=2) == [ContractUpgraded(admin=ADMIN, old_wasm_hash="00" * 32,
                                                             new_wasm_hash=new.hex(), timestamp=2)]
    assert (contract.recorded_wasm_hash, contract.wasm_hash, contract.build) == (new, new, NEWEST)
    again = WASM_HASHES[NEWEST]
    assert events(contract.upgrade(again, now=3))[0].old_wasm_hash == new.hex()  # type: ignore[attr-defined]


def test_migrate_moves_forward_to_version_2_only() -> None:
    contract = FlowFiContract(NEWEST)
    assert refused(contract, contract.migrate, 2, now=1).name == "NotInitialized"
    contract.initialize(ADMIN, TREASURY, 0, now=1)
    assert contract.migrate(2, now=2) == []  # already there: nothing happens
    for target in (1, 3):
        assert refused(contract, contract.migrate, target, now=3).name == "UnsupportedMigration"
    contract.contract_version = 3  # as a later build would have left it
    assert refused(contract, contract.migrate, 2, now=4).name == "StateVersionTooNew"

    upgraded = FlowFiContract("8723543")
    upgraded.initialize(ADMIN, TREASURY, 0, now=1)
    upgraded.upgrade_in_place(NEWEST, now=2)
    assert upgraded.config is not None and upgraded.config.legacy and upgraded.contract_version is None
    assert upgraded.migrate(1, now=3) == [StateMigrated(admin=ADMIN, old_version=0, new_version=1)]
    assert not upgraded.config.legacy
    assert upgraded.migrate(2, now=4) == [StateMigrated(admin=ADMIN, old_version=1, new_version=2)]


# Stream operations


def test_the_operations_both_builds_have_check_as_8723543_did_with_c9f5d2e_arithmetic() -> None:
    contract = initialized(NEWEST, fee_rate_bps=100)
    stream_id = linear(contract, amount=10_000, duration=10)  # 9900 net, 990 a second
    assert contract.top_up_stream(SENDER, stream_id, 1000, now=102) == [
        Transfer(TOKEN, SENDER, CONTRACT, 1000), Transfer(TOKEN, CONTRACT, TREASURY, 10),
        FeeCollected(stream_id=stream_id, treasury=TREASURY, fee_amount=10, token=TOKEN),
        StreamToppedUp(stream_id=stream_id, sender=SENDER, amount=990, new_deposited_amount=10_890,
                       new_end_time=102 + (10_890 - 1980) // 990)]
    cases = [(contract.withdraw, SENDER, "Unauthorized"), (contract.withdraw, RECIPIENT, "StreamPaused"),
             (contract.pause_stream, SENDER, "StreamAlreadyPaused"), (contract.pause_stream, RECIPIENT, "Unauthorized")]
    contract.pause_stream(SENDER, stream_id, now=103)
    for call, caller, name in cases:
        assert refused(contract, call, caller, stream_id, now=104).name == name
    contract.resume_stream(SENDER, stream_id, now=104)
    assert refused(contract, contract.resume_stream, SENDER, stream_id, now=105).name == "StreamNotPaused"
    assert refused(contract, contract.resume_stream, RECIPIENT, stream_id, now=105).name == "Unauthorized"
    assert refused(contract, contract.withdraw, RECIPIENT, linear(contract, now=104), now=104).code == 1
    assert refused(contract, contract.cancel_stream, RECIPIENT, stream_id, now=105).name == "Unauthorized"
    contract.cancel_stream(SENDER, stream_id, now=105)
    for call, caller in ((contract.withdraw, RECIPIENT), (contract.pause_stream, SENDER),
                         (contract.cancel_stream, SENDER)):
        assert refused(contract, call, caller, stream_id, now=106).name == "StreamInactive"


def test_top_up_checks_in_order_and_refuses_step_streams() -> None:
    contract, stream_id = contract_with_stream()
    steps = events(contract.create_step_vesting_stream(SENDER, RECIPIENT, TOKEN, 10, [VestingStep(200, 10)],
                                                       now=100))[-1].stream_id  # type: ignore[attr-defined]
    milestones = conditional(contract, ConditionalMilestone(1, 10, TimeOnly(0)))
    cases = [(SENDER, stream_id, 0, "InvalidAmount"), (SENDER, 99, 10, "StreamNotFound"),
             (RECIPIENT, stream_id, 10, "Unauthorized"), (SENDER, steps, 10, "TopUpUnsupported"),
             (SENDER, milestones, 10, "TopUpUnsupported")]
    for sender, target, amount, name in cases:
        assert refused(contract, contract.top_up_stream, sender, target, amount, now=101).name == name
    contract.cancel_stream(SENDER, stream_id, now=102)
    assert refused(contract, contract.top_up_stream, SENDER, stream_id, 10, now=103).name == "StreamInactive"


def test_top_up_arithmetic_that_overflows_is_an_error_not_a_trap() -> None:
    contract, big = contract_with_stream(amount=2**126, duration=1)
    assert refused(contract, contract.top_up_stream, SENDER, big, 2**126, now=101).name == "ArithmeticOverflow"
    allowance = events(contract.create_allowance_stream(SENDER, RECIPIENT, TOKEN, 10, now=100))[0]
    error = refused(contract, contract.top_up_stream, SENDER, allowance.stream_id, 2**64, now=100)  # type: ignore[attr-defined]
    assert error.name == "ArithmeticOverflow", "2**64 s at 1 a second: the end time does not fit in u64"


def test_batch_withdraw_pays_each_stream_and_skips_the_ones_with_nothing_to_pay() -> None:
    contract = initialized(NEWEST)
    paying, paused, cancelled = (linear(contract, now=100) for _ in range(3))
    contract.pause_stream(SENDER, paused, now=101)
    contract.cancel_stream(SENDER, cancelled, now=101)
    fresh = linear(contract, now=105)
    emitted = contract.batch_withdraw(RECIPIENT, [paying, paused, cancelled, fresh, paying], now=105)
    assert emitted == [Transfer(TOKEN, CONTRACT, RECIPIENT, 500),
                       TokensWithdrawn(stream_id=paying, recipient=RECIPIENT, amount=500, timestamp=105)]
    assert contract.result_of("batch_withdraw", emitted) == [[paying, 500]]
    assert contract.batch_withdraw(RECIPIENT, [], now=106) == []
    other = events(contract.create_stream(SENDER, STRANGER, TOKEN, 1000, 10, now=100))[-1].stream_id  # type: ignore[attr-defined]
    assert refused(contract, contract.batch_withdraw, RECIPIENT, [paying, other], now=107).name == "Unauthorized"
    assert refused(contract, contract.batch_withdraw, RECIPIENT, [paying, 999], now=107).name == "StreamNotFound"
    assert refused(contract, contract.batch_withdraw, RECIPIENT, [paying] * 31, now=107).name == "BatchTooLarge"


def test_cancel_clears_the_pause_and_a_cancelled_stream_cannot_be_resumed() -> None:
    contract, stream_id = contract_with_stream()
    contract.pause_stream(SENDER, stream_id, now=103)
    assert contract.cancel_stream(SENDER, stream_id, now=109) == [
        Transfer(TOKEN, CONTRACT, RECIPIENT, 300), Transfer(TOKEN, CONTRACT, SENDER, 700),
        StreamCancelled(stream_id=stream_id, sender=SENDER, recipient=RECIPIENT, amount_withdrawn=300,
                        refunded_amount=700)]
    stream = contract.streams[stream_id]
    assert (stream.paused, stream.paused_at, stream.status) == (False, None, StreamStatus.CANCELLED)
    assert refused(contract, contract.resume_stream, SENDER, stream_id, now=110).name == "StreamNotActive"
    allowance = events(contract.create_allowance_stream(SENDER, RECIPIENT, TOKEN, 10, now=110))[0]
    assert contract.cancel_stream(SENDER, allowance.stream_id, now=120) == [  # type: ignore[attr-defined]
        StreamCancelled(stream_id=allowance.stream_id, sender=SENDER, recipient=RECIPIENT,  # type: ignore[attr-defined]
                        amount_withdrawn=0, refunded_amount=0)]


def test_resume_projects_each_schedule_and_does_not_check_a_linear_end_time() -> None:
    contract = initialized(NEWEST)
    hybrid = events(contract.create_hybrid_cliff_stream(SENDER, RECIPIENT, TOKEN, 10_000, 200, 4000, 60,
                                                        now=100))[0].stream_id  # type: ignore[attr-defined]
    contract.pause_stream(SENDER, hybrid, now=230)
    assert claimable(contract.streams[hybrid], 300) == 7000, "frozen at the pause"
    assert contract.resume_stream(SENDER, hybrid, now=300) == [
        StreamResumed(stream_id=hybrid, sender=SENDER, new_end_time=200 + 6000 // 100)]
    assert claimable(contract.streams[hybrid], 300) == 10_000, "anchored at the cliff: the pause delays nothing"
    waiting = conditional(contract, ConditionalMilestone(1, 10, TimeOnly(0)))
    contract.pause_stream(SENDER, waiting, now=301)
    assert events(contract.resume_stream(SENDER, waiting, now=302))[0].new_end_time == U64_MAX  # type: ignore[attr-defined]
    wrapped = linear(contract, amount=2**70, duration=2**64 - 1, now=400)  # 64 a second, 2**64 s to go
    contract.pause_stream(SENDER, wrapped, now=400)
    assert events(contract.resume_stream(SENDER, wrapped, now=405))[0].new_end_time == 405  # type: ignore[attr-defined]
    allowance = events(contract.create_allowance_stream(SENDER, RECIPIENT, TOKEN, 10, now=100))[0].stream_id  # type: ignore[attr-defined]
    contract.top_up_stream(SENDER, allowance, U64_MAX - 100, now=100)
    contract.pause_stream(SENDER, allowance, now=101)
    trapped(contract, contract.resume_stream, SENDER, allowance, now=1000)


def test_a_recipient_hands_the_stream_over_with_what_has_accrued_and_no_tokens_withdrawn() -> None:
    contract, stream_id = contract_with_stream()
    assert refused(contract, contract.transfer_recipient, SENDER, stream_id, STRANGER, now=101).code == 3
    assert refused(contract, contract.transfer_recipient, RECIPIENT, stream_id, RECIPIENT, now=101).code == 3
    assert refused(contract, contract.transfer_recipient, RECIPIENT, stream_id, CONTRACT, now=101).code == 3
    contract.pause_stream(SENDER, stream_id, now=103)
    assert contract.transfer_recipient(RECIPIENT, stream_id, STRANGER, now=105) == [
        Transfer(TOKEN, CONTRACT, RECIPIENT, 300),
        RecipientTransferred(stream_id=stream_id, old_recipient=RECIPIENT, new_recipient=STRANGER,
                             settled_amount=300, timestamp=105)]
    stream = contract.streams[stream_id]
    assert (stream.recipient, stream.withdrawn_amount, stream.last_update_time) == (STRANGER, 300, 105)
    assert events(contract.resume_stream(SENDER, stream_id, now=110))[0].new_end_time == 117  # type: ignore[attr-defined]
    # the pause [103, 105] is counted twice: accrual restarts two seconds late
    assert (stream.last_update_time, claimable(stream, 115)) == (112, 300)
    contract.cancel_stream(SENDER, stream_id, now=116)
    assert refused(contract, contract.transfer_recipient, STRANGER, stream_id, RECIPIENT, now=117).code == 4


def test_a_new_rate_starts_now_without_settling_what_had_accrued() -> None:
    contract, stream_id = contract_with_stream()
    assert refused(contract, contract.modify_rate, SENDER, 999, 0, now=104).name == "InvalidNewRate"
    assert refused(contract, contract.modify_rate, SENDER, 999, 5, now=104).name == "StreamNotFound"
    assert refused(contract, contract.modify_rate, RECIPIENT, stream_id, 5, now=104).name == "Unauthorized"
    assert claimable(contract.streams[stream_id], 104) == 400
    assert contract.modify_rate(SENDER, stream_id, 50, now=104) == [
        StreamRateModified(stream_id=stream_id, sender=SENDER, old_rate_per_second=100, new_rate_per_second=50,
                           new_end_time=104 + 1000 // 50, timestamp=104)]
    assert [claimable(contract.streams[stream_id], t) for t in (104, 106)] == [0, 100]
    hybrid = events(contract.create_hybrid_cliff_stream(SENDER, RECIPIENT, TOKEN, 1000, 200, 100, 10,
                                                        now=100))[0].stream_id  # type: ignore[attr-defined]
    assert refused(contract, contract.modify_rate, SENDER, hybrid, 5, now=104).name == "RateModificationUnsupported"
    contract.cancel_stream(SENDER, stream_id, now=107)
    assert refused(contract, contract.modify_rate, SENDER, stream_id, 5, now=108).name == "StreamInactive"


def test_milestones_unlock_steps_by_amount_and_steps_accrue_in_order() -> None:
    contract = initialized(NEWEST)
    first, second = ConditionalMilestone(1, 100, TimeOnly(50)), ConditionalMilestone(2, 200, TimeOnly(50))
    stream_id = conditional(contract, first, second)
    assert contract.verify_and_unlock_milestone(RECIPIENT, stream_id, 2, now=100) == [
        MilestoneConditionUnlocked(stream_id=stream_id, milestone_id=2, amount=200, caller=RECIPIENT, timestamp=100)]
    assert claimable(contract.streams[stream_id], 100) == 0, "the first step is still locked: accrual stops there"
    contract.verify_and_unlock_milestone(SENDER, stream_id, 1, now=101)
    assert claimable(contract.streams[stream_id], 101) == 300
    assert refused(contract, contract.verify_and_unlock_milestone, SENDER, stream_id, 1, now=102).code == 41

    twins = conditional(contract, ConditionalMilestone(1, 150, TimeOnly(500)),
                        ConditionalMilestone(2, 150, TimeOnly(50)))
    contract.verify_and_unlock_milestone(SENDER, twins, 2, now=100)
    # milestone 2 unlocked the first locked step of its amount, which stands for milestone 1
    assert contract.streams[twins].schedule == StepTranches((VestingStep(100, 150), VestingStep(U64_MAX, 150)))
    assert claimable(contract.streams[twins], 100) == 150
    assert refused(contract, contract.verify_and_unlock_milestone, SENDER, twins, 1, now=100).name == "ConditionNotMet"


def test_verify_and_unlock_milestone_checks() -> None:
    contract = initialized(NEWEST)
    attestation = bytes(32)
    stream_id = conditional(contract, ConditionalMilestone(1, 10, OracleAttestation(ADMIN, attestation)),
                            ConditionalMilestone(2, 20, OracleAttestation(ADMIN, attestation)))
    plain = linear(contract)
    call = contract.verify_and_unlock_milestone
    assert refused(contract, call, SENDER, 99, 1, now=100).name == "StreamNotFound"
    assert refused(contract, call, STRANGER, stream_id, 1, now=100).name == "MilestoneCallerUnauthorized"
    assert refused(contract, call, SENDER, plain, 1, now=100).name == "StreamNotFound"  # no milestones kept
    assert refused(contract, call, SENDER, stream_id, 9, now=100).name == "InvalidMilestone"
    contract.verify_and_unlock_milestone(SENDER, stream_id, 1, now=100)
    assert contract.attested[stream_id] == (attestation,)
    assert refused(contract, call, SENDER, stream_id, 2, now=100).name == "InvalidAttestation"
    contract.cancel_stream(SENDER, stream_id, now=101)
    assert refused(contract, call, SENDER, stream_id, 2, now=102).name == "StreamInactive"


def test_disputes_need_an_arbiter_that_no_stream_has() -> None:
    contract, stream_id = contract_with_stream()
    assert refused(contract, contract.request_dispute, RECIPIENT, stream_id, now=101).code == 3
    assert refused(contract, contract.request_dispute, SENDER, stream_id, now=101).name == "DisputeNotSupported"
    assert refused(contract, contract.resolve_dispute, ADMIN, stream_id, True, now=101).name == "DisputeNotSupported"


def test_with_an_arbiter_a_dispute_is_requested_then_an_approval_cancels_the_stream() -> None:
    """No entry point sets an arbiter; this stream gets one in storage to show what the contract would do."""
    contract, stream_id = contract_with_stream()
    contract.streams[stream_id].arbiter = ADMIN
    assert refused(contract, contract.resolve_dispute, ADMIN, stream_id, True, now=101).name == "NoActiveDispute"
    assert contract.request_dispute(SENDER, stream_id, now=102) == [
        DisputeRequested(stream_id=stream_id, sender=SENDER, arbiter=ADMIN, timestamp=102)]
    assert refused(contract, contract.resolve_dispute, STRANGER, stream_id, True, now=103).name == "NotArbiter"
    assert contract.resolve_dispute(ADMIN, stream_id, True, now=104) == [
        DisputeResolved(stream_id=stream_id, arbiter=ADMIN, approved=True, timestamp=104),
        Transfer(TOKEN, CONTRACT, RECIPIENT, 400), Transfer(TOKEN, CONTRACT, SENDER, 600),
        StreamCancelled(stream_id=stream_id, sender=SENDER, recipient=RECIPIENT, amount_withdrawn=400,
                        refunded_amount=600)]
    assert contract.streams[stream_id].dispute_status == DisputeStatus("Resolved", True)


def test_closing_a_finished_stream_deletes_its_storage() -> None:
    contract, stream_id = contract_with_stream()
    milestones = conditional(contract, ConditionalMilestone(1, 10, TimeOnly(0)))
    assert refused(contract, contract.close_stream, SENDER, 99, now=101).name == "StreamNotFound"
    assert refused(contract, contract.close_stream, SENDER, stream_id, now=101).name == "StreamStillActive"
    contract.cancel_stream(SENDER, stream_id, now=102)
    assert refused(contract, contract.close_stream, STRANGER, stream_id, now=103).name == "Unauthorized"
    assert contract.close_stream(ADMIN, stream_id, now=103) == [
        StreamClosed(stream_id=stream_id, closer=ADMIN, timestamp=103)]
    assert stream_id not in contract.streams and contract.lifetimes.get(stream_key(stream_id)) is None
    assert refused(contract, contract.withdraw, RECIPIENT, stream_id, now=104).name == "StreamNotFound"
    completed = linear(contract, now=110)
    contract.withdraw(RECIPIENT, completed, now=200)
    contract.verify_and_unlock_milestone(SENDER, milestones, 1, now=200)
    contract.withdraw(RECIPIENT, milestones, now=200)
    contract.close_stream(RECIPIENT, completed, now=201)
    contract.close_stream(SENDER, milestones, now=201)
    assert milestones in contract.milestones, "the milestones stay in instance storage"


def test_streams_live_518400_ledgers_from_each_save_or_read_once_under_120960_are_left() -> None:
    contract = initialized(NEWEST)
    contract.ledger = 10
    stream_id = linear(contract)
    assert contract.lifetimes.get(stream_key(stream_id)) is not None
    assert contract.lifetimes.live_until(stream_key(stream_id), 10) == 10 + BUMP_AMOUNT
    contract.ledger = 10 + BUMP_AMOUNT - LIFETIME_THRESHOLD - 1  # more than the threshold left: no extension
    contract.extend_stream_ttl(stream_id, now=101)
    assert contract.lifetimes.live_until(stream_key(stream_id), contract.ledger) == 10 + BUMP_AMOUNT
    contract.ledger += 1
    contract.batch_withdraw(RECIPIENT, [stream_id], now=100)  # a read that pays nothing still extends
    assert contract.lifetimes.live_until(stream_key(stream_id), contract.ledger) == contract.ledger + BUMP_AMOUNT
    last_modified = contract.lifetimes.get(stream_key(stream_id)).last_modified  # type: ignore[union-attr]
    assert last_modified == 10, "reads extend an entry without writing it"
    contract.ledger += 2 * BUMP_AMOUNT
    assert contract.lifetimes.live_until(stream_key(stream_id), contract.ledger) == 0, "archived"
    contract.bump_stream_ttl(stream_id, now=102)  # restored as it is touched, then extended
    assert contract.lifetimes.live_until(stream_key(stream_id), contract.ledger) == contract.ledger + BUMP_AMOUNT
    assert refused(contract, contract.bump_stream_ttl, 99, now=103).name == "StreamNotFound"
    assert refused(contract, contract.extend_stream_ttl, 99, now=103).name == "StreamNotFound"


@pytest.mark.parametrize("build", ["8723543", NEWEST])
def test_a_refused_call_leaves_storage_and_lifetimes_untouched(build: str) -> None:
    contract = initialized(build)
    stream_id = linear(contract)
    contract.ledger = 50
    assert refused(contract, contract.withdraw, RECIPIENT, stream_id, now=100).name == "InvalidAmount"
