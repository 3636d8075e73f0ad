"""A faithful Python model of the FlowFi stream contract (contracts/stream_contract/src/lib.rs), in
either of its builds: `FlowFiContract(build="8723543")` or the newest, `"c9f5d2e"` (the default).

Every entry point checks what the contract checks, in the contract's order, and on success changes the
state and returns what the call publishes, in publish order: FlowFi's events (the dataclasses of
`indexer.events`) and the token transfers it makes (`Transfer`, published by the token's contract in the
same operation). A rejected call changes nothing, as Soroban rolls a failed invocation back entirely:
- `ContractError`: the contract returned one of its `StreamError` codes (errors.rs; 1-14 in 8723543);
- `ContractTrap`: the contract panicked (an arithmetic overflow with overflow checks on), which the host
  reports as a trap with no contract code;
- `InvalidInvocation`: the call cannot be made (a function the build does not have, arguments of the
  wrong shape, or a PriceTarget milestone, which needs an oracle the devnet does not have).

The creations are in `devnet.creations`, the shared storage and helpers in `devnet.state`, the types and
formulas in `devnet.terms`. The quirks are the contract's: 8723543 lets a stream cancelled while paused
be resumed (to nothing); c9f5d2e matches milestones to steps by amount, stops step accrual at the first
locked step, does not check resume's end time, changes rates without settling, lets a recipient transfer
a paused stream, deletes a closed stream's storage, and funds allowance streams by top-ups only.

The devnet can also switch a running 8723543 contract to c9f5d2e in place (`upgrade_in_place`), which
the real 8723543 cannot do (it has no upgrade entry point): this models an upgradeable build with
8723543's rules, upgraded to c9f5d2e as c9f5d2e's `upgrade` would, with storage as it was.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from devnet import calls
from devnet.creations import Creations
from devnet.state import entry_point
from devnet.terms import (
    CURRENT_DATA_VERSION,
    MAX_BATCH_WITHDRAW,
    MAX_FEE_RATE_BPS,
    NEWEST_BUILD,
    OLD_BUILD,
    U64_MAX,
    WASM_HASHES,
    Config,
    ContractError,
    DisputeStatus,
    Emitted,
    InvalidInvocation,
    Linear,
    OracleAttestation,
    StepTranches,
    Stream,
    StreamStatus,
    TimeOnly,
    Transfer,
    VestingStep,
    claimable,
    end_time,
    project_end_time,
    projected_end_time,
    sat_i128,
    sat_u64,
)
from indexer.events import (
    CREATIONS,
    AdminTransferred,
    ContractUpgraded,
    DisputeRequested,
    DisputeResolved,
    EmergencyGuardianUpdated,
    FeeConfigUpdated,
    Initialized,
    MilestoneConditionUnlocked,
    ProtocolPaused,
    ProtocolPauseStatus,
    RecipientTransferred,
    StateMigrated,
    StreamCancelled,
    StreamClosed,
    StreamCompleted,
    StreamCreated,
    StreamPaused,
    StreamRateModified,
    StreamResumed,
    StreamToppedUp,
    TokensWithdrawn,
)


def _check_fee_rate(fee_rate_bps: int) -> None:
    if fee_rate_bps > MAX_FEE_RATE_BPS:
        raise ContractError("InvalidFeeRate", f"fee_rate_bps {fee_rate_bps} exceeds {MAX_FEE_RATE_BPS}")


class FlowFiContract(Creations):
    """The contract's storage and entry points. Each entry point takes the ledger time as `now`."""

    # Protocol administration

    @entry_point
    def initialize(self, admin: str, treasury: str, fee_rate_bps: int, *, now: int) -> list[Emitted]:
        if self.config is not None:
            raise ContractError("AlreadyInitialized", "the contract is already initialized")
        _check_fee_rate(fee_rate_bps)
        self._save_config(Config(admin, treasury, fee_rate_bps))
        if self.newest:
            self.contract_version = CURRENT_DATA_VERSION
        return [Initialized(admin=admin, treasury=treasury, fee_rate_bps=fee_rate_bps)]

    @entry_point
    def update_fee_config(self, admin: str, treasury: str, fee_rate_bps: int, *, now: int) -> list[Emitted]:
        config = self._admin_config(admin)
        _check_fee_rate(fee_rate_bps)
        event = FeeConfigUpdated(admin=admin, old_treasury=config.treasury, new_treasury=treasury,
                                 old_fee_rate_bps=config.fee_rate_bps, new_fee_rate_bps=fee_rate_bps)
        config.treasury, config.fee_rate_bps = treasury, fee_rate_bps
        self._save_config(config)
        return [event]

    @entry_point
    def transfer_admin(self, current_admin: str, new_admin: str, *, now: int) -> list[Emitted]:
        config = self._admin_config(current_admin)
        config.admin = new_admin
        self._save_config(config)
        return [AdminTransferred(previous_admin=current_admin, new_admin=new_admin)]

    @entry_point
    def set_protocol_pause(self, caller: str, paused: bool, *, now: int) -> list[Emitted]:
        """The circuit breaker on creations and top-ups: the admin or the guardian may pause, only the
        admin may unpause. Publishes both pause events on every call, changed or not."""
        return self._set_protocol_pause(caller, paused, now)

    @entry_point
    def set_emergency_pause(self, admin: str, paused: bool, *, now: int) -> list[Emitted]:
        return self._set_protocol_pause(admin, paused, now)

    def _set_protocol_pause(self, caller: str, paused: bool, now: int) -> list[Emitted]:
        config = self._load_config()
        if paused and caller != config.admin and caller != config.emergency_guardian:
            raise ContractError("NotGuardian", f"{caller} is neither the admin nor the guardian")
        if not paused and caller != config.admin:
            raise ContractError("NotAdmin", f"{caller} is not the admin")
        config.is_protocol_paused = paused
        self._save_config(config)
        return [ProtocolPaused(admin=caller, is_paused=paused),
                ProtocolPauseStatus(caller=caller, paused=paused, timestamp=now)]

    @entry_point
    def set_emergency_guardian(self, admin: str, guardian: str | None, *, now: int) -> list[Emitted]:
        config = self._admin_config(admin)
        config.emergency_guardian = guardian
        self._save_config(config)
        return [EmergencyGuardianUpdated(admin=admin, guardian=guardian)]

    @entry_point
    def upgrade(self, new_wasm_hash: bytes, *, now: int) -> list[Emitted]:
        """Records the new code hash and runs it from the next call on. The devnet has one model of
        c9f5d2e, so the code stays c9f5d2e's whatever the hash."""
        config = self._load_config()
        old = self.recorded_wasm_hash or bytes(32)
        self.recorded_wasm_hash = self.wasm_hash = new_wasm_hash
        self._write_instance()
        return [ContractUpgraded(admin=config.admin, old_wasm_hash=old.hex(), new_wasm_hash=new_wasm_hash.hex(),
                                 timestamp=now)]

    @entry_point
    def migrate(self, target_version: int, *, now: int) -> list[Emitted]:
        """Forward only, up to version 2: rewrites the config in its 5-field layout and stores the version.
        Streams are left as stored; each is rewritten in the current layout when next saved."""
        config = self._load_config()
        current = self.contract_version or 0
        if current > CURRENT_DATA_VERSION:
            raise ContractError("StateVersionTooNew", f"the stored version {current} is newer than "
                                                      f"{CURRENT_DATA_VERSION}")
        if target_version > CURRENT_DATA_VERSION or target_version < current:
            raise ContractError("UnsupportedMigration", f"cannot migrate from {current} to {target_version}")
        if target_version == current:
            return []
        self._save_config(config)
        self.contract_version = target_version
        return [StateMigrated(admin=config.admin, old_version=current, new_version=target_version)]

    def upgrade_in_place(self, build: str, *, now: int) -> list[Emitted]:
        """A devnet operator's action: run `build` (c9f5d2e) at this 8723543 contract's address from now
        on, publishing contract_upgraded as c9f5d2e's upgrade does. Storage is left as it was: 12-field
        streams and the 3-field config stay so until c9f5d2e saves them."""
        if (self.build, build) != (OLD_BUILD, NEWEST_BUILD):
            raise InvalidInvocation(f"the devnet upgrades {OLD_BUILD} to {NEWEST_BUILD} only; this contract runs "
                                    f"{self.build}")
        self._begin()
        try:
            config = self._load_config()
            self.build, self.wasm_hash = build, WASM_HASHES[build]
            self._write_instance()
        except BaseException:
            self._rollback()
            raise
        self._commit()
        return [ContractUpgraded(admin=config.admin, old_wasm_hash=bytes(32).hex(),
                                 new_wasm_hash=WASM_HASHES[build].hex(), timestamp=now)]

    # Stream operations

    @entry_point
    def top_up_stream(self, sender: str, stream_id: int, amount: int, *, now: int) -> list[Emitted]:
        """More tokens for an active stream (paused ones too); the accrual anchor stays. c9f5d2e refuses
        step streams (conditional ones included) and checks its arithmetic."""
        if self.newest:
            self._require_not_protocol_paused()
        if amount <= 0:
            raise ContractError("InvalidAmount", f"amount must be positive, got {amount}")
        stream = self._load(stream_id)
        self._check_sender(stream, sender)
        self._check_active(stream)
        if self.newest and isinstance(stream.schedule, StepTranches):
            raise ContractError("TopUpUnsupported", f"stream {stream_id} unlocks in steps")
        taken = Transfer(stream.token_address, sender, self.address, amount)
        net, fee, treasury = self._fee(amount)
        stream.deposited_amount = self._add(stream.deposited_amount, net, "the deposit")
        left = max(max(stream.deposited_amount - stream.withdrawn_amount, 0) - claimable(stream, now), 0)
        if self.newest:
            new_end_time = project_end_time(now, left, stream.rate_per_second)
        else:
            new_end_time = end_time(now, left, stream.rate_per_second)
        stream.fees_paid += fee
        self._save(stream)
        topped_up = StreamToppedUp(stream_id=stream_id, sender=sender, amount=net,
                                   new_deposited_amount=stream.deposited_amount, new_end_time=new_end_time)
        return [taken, *self._fee_paid(stream_id, stream.token_address, fee, treasury), topped_up]

    @entry_point
    def withdraw(self, recipient: str, stream_id: int, *, now: int) -> list[Emitted]:
        stream = self._load(stream_id)
        if stream.recipient != recipient:
            raise ContractError("Unauthorized", f"{recipient} is not the recipient of stream {stream_id}")
        self._check_active(stream)
        if stream.paused:
            raise ContractError("StreamPaused", f"stream {stream_id} is paused")
        amount = claimable(stream, now)
        if amount <= 0:
            raise ContractError("InvalidAmount", f"nothing to withdraw from stream {stream_id} yet")
        return self._apply_withdrawal(stream, amount, now)

    @entry_point
    def batch_withdraw(self, recipient: str, stream_ids: list[int], *, now: int) -> list[Emitted]:
        """Withdraws from each stream in turn; an unknown stream or one of another recipient fails the
        whole call, while inactive, paused or empty ones are skipped without a word."""
        if len(stream_ids) > MAX_BATCH_WITHDRAW:
            raise ContractError("BatchTooLarge", f"{len(stream_ids)} streams; at most {MAX_BATCH_WITHDRAW}")
        emitted: list[Emitted] = []
        for stream_id in stream_ids:
            stream = self._load(stream_id)
            if stream.recipient != recipient:
                raise ContractError("Unauthorized", f"{recipient} is not the recipient of stream {stream_id}")
            if not stream.is_active or stream.paused:
                continue
            amount = claimable(stream, now)
            if amount > 0:
                emitted += self._apply_withdrawal(stream, amount, now)
        return emitted

    def _apply_withdrawal(self, stream: Stream, amount: int, now: int) -> list[Emitted]:
        stream.withdrawn_amount = self._add(stream.withdrawn_amount, amount, "the withdrawn total")
        stream.last_update_time = now
        completed = stream.withdrawn_amount >= stream.deposited_amount
        if completed:
            stream.is_active = False
            stream.status = StreamStatus.COMPLETED
        self._save(stream)
        emitted: list[Emitted] = [
            Transfer(stream.token_address, self.address, stream.recipient, amount),
            TokensWithdrawn(stream_id=stream.stream_id, recipient=stream.recipient, amount=amount, timestamp=now),
        ]
        if completed:
            emitted.append(StreamCompleted(stream_id=stream.stream_id, recipient=stream.recipient,
                                           total_withdrawn=stream.withdrawn_amount))
        return emitted

    @entry_point
    def cancel_stream(self, sender: str, stream_id: int, *, now: int) -> list[Emitted]:
        """Pays the recipient what has accrued and refunds the rest. 8723543 leaves `paused` and
        `paused_at` as they were, which is what lets resume_stream run on the cancelled stream."""
        stream = self._load(stream_id)
        self._check_sender(stream, sender)
        self._check_active(stream)
        return self._cancel(stream, now)

    def _cancel(self, stream: Stream, now: int) -> list[Emitted]:
        accrued = claimable(stream, now)
        if accrued > 0:
            stream.withdrawn_amount = sat_i128(stream.withdrawn_amount + accrued)
        refunded = sat_i128(stream.deposited_amount - stream.withdrawn_amount)
        stream.is_active = False
        stream.status = StreamStatus.CANCELLED
        stream.last_update_time = now
        if self.newest:
            stream.paused, stream.paused_at = False, None
        stream.refunded = max(refunded, 0)
        self._save(stream)
        return [
            *self._pay(stream.token_address, stream.recipient, accrued),
            *self._pay(stream.token_address, stream.sender, refunded),
            StreamCancelled(stream_id=stream.stream_id, sender=stream.sender, recipient=stream.recipient,
                            amount_withdrawn=stream.withdrawn_amount, refunded_amount=refunded),
        ]

    @entry_point
    def pause_stream(self, sender: str, stream_id: int, *, now: int) -> list[Emitted]:
        stream = self._load(stream_id)
        self._check_sender(stream, sender)
        self._check_active(stream)
        if stream.paused:
            raise ContractError("StreamAlreadyPaused", f"stream {stream_id} is already paused")
        stream.paused = True
        stream.paused_at = now
        stream.status = StreamStatus.PAUSED
        self._save(stream)
        return [StreamPaused(stream_id=stream_id, sender=sender, paused_at=now)]

    @entry_point
    def resume_stream(self, sender: str, stream_id: int, *, now: int) -> list[Emitted]:
        """Moves the accrual anchor by the pause. 8723543 checks only `paused`, not `is_active`: a stream
        cancelled while paused resumes to status Active while staying inactive, with nothing to claim.
        c9f5d2e refuses inactive streams (StreamNotActive); its end time for a linear stream is computed
        without the check its other end times have."""
        stream = self._load(stream_id)
        self._check_sender(stream, sender)
        if self.newest and not stream.is_active:
            raise ContractError("StreamNotActive", f"stream {stream_id} is {stream.status.value}")
        if not stream.paused:
            raise ContractError("StreamNotPaused", f"stream {stream_id} is not paused")
        paused_at = stream.paused_at if stream.paused_at is not None else now
        accrued = claimable(stream, now)
        stream.last_update_time = sat_u64(stream.last_update_time + max(now - paused_at, 0))
        stream.paused, stream.paused_at, stream.status = False, None, StreamStatus.ACTIVE
        if not self.newest:
            left = max(max(stream.deposited_amount - stream.withdrawn_amount, 0) - accrued, 0)
            new_end_time = end_time(now, left, stream.rate_per_second)
        elif isinstance(stream.schedule, Linear):
            left = sat_i128(sat_i128(stream.deposited_amount - stream.withdrawn_amount) - accrued)
            new_end_time = end_time(now, left, stream.rate_per_second)
        else:
            new_end_time = projected_end_time(stream)
        self._save(stream)
        return [StreamResumed(stream_id=stream_id, sender=sender, new_end_time=new_end_time)]

    @entry_point
    def transfer_recipient(
        self, current_recipient: str, stream_id: int, new_recipient: str, *, now: int
    ) -> list[Emitted]:
        """Hands the stream to `new_recipient`, paying the old one what has accrued (counted as withdrawn,
        with no tokens_withdrawn). Allowed while paused: the anchor then moves to now, and resume adds
        the whole pause on top of it."""
        stream = self._load(stream_id)
        if stream.recipient != current_recipient:
            raise ContractError("Unauthorized", f"{current_recipient} is not the recipient of stream {stream_id}")
        self._check_active(stream)
        if new_recipient in (current_recipient, self.address):
            raise ContractError("Unauthorized", f"cannot transfer stream {stream_id} to {new_recipient}")
        settled = claimable(stream, now)
        if settled > 0:
            stream.withdrawn_amount = self._add(stream.withdrawn_amount, settled, "the withdrawn total")
            stream.last_update_time = now
        stream.recipient = new_recipient
        self._save(stream)
        return [*self._pay(stream.token_address, current_recipient, settled),
                RecipientTransferred(stream_id=stream_id, old_recipient=current_recipient,
                                     new_recipient=new_recipient, settled_amount=settled, timestamp=now)]

    @entry_point
    def modify_rate(self, sender: str, stream_id: int, new_rate_per_second: int, *, now: int) -> list[Emitted]:
        """A new rate from now, without settling: what had accrued and was not withdrawn is no longer
        claimable; it stays deposited and streams later at the new rate."""
        if new_rate_per_second <= 0:
            raise ContractError("InvalidNewRate", f"the rate must be positive, got {new_rate_per_second}")
        stream = self._load(stream_id)
        self._check_sender(stream, sender)
        self._check_active(stream)
        if not isinstance(stream.schedule, Linear):
            raise ContractError("RateModificationUnsupported", f"stream {stream_id} is not linear")
        old_rate = stream.rate_per_second
        stream.rate_per_second = new_rate_per_second
        stream.last_update_time = now
        left = sat_i128(stream.deposited_amount - stream.withdrawn_amount)
        new_end_time = project_end_time(now, left, new_rate_per_second)
        self._save(stream)
        return [StreamRateModified(stream_id=stream_id, sender=sender, old_rate_per_second=old_rate,
                                   new_rate_per_second=new_rate_per_second, new_end_time=new_end_time,
                                   timestamp=now)]

    @entry_point
    def verify_and_unlock_milestone(self, caller: str, stream_id: int, milestone_id: int, *, now: int) -> list[Emitted]:
        """Unlocks a conditional stream's milestone once its condition holds: the first still-locked step
        with the milestone's amount unlocks now (steps are matched by amount, not by milestone). Since
        step accrual stops at the first locked step, the amount is claimable only once every earlier
        step is unlocked too. An attestation's oracle signer is taken as authorized."""
        stream = self._load(stream_id)
        if caller not in (stream.sender, stream.recipient):
            raise ContractError("MilestoneCallerUnauthorized", f"{caller} is neither sender nor recipient")
        if not stream.is_active:
            raise ContractError("StreamInactive", f"stream {stream_id} is {stream.status.value}")
        milestones = self._milestones(stream_id)
        if milestones is None:
            raise ContractError("StreamNotFound", f"stream {stream_id} has no milestones")
        index = next((i for i, m in enumerate(milestones) if m.milestone_id == milestone_id), None)
        if index is None:
            raise ContractError("InvalidMilestone", f"stream {stream_id} has no milestone {milestone_id}")
        milestone = milestones[index]
        if milestone.is_unlocked:
            raise ContractError("MilestoneAlreadyUnlocked", f"milestone {milestone_id} is already unlocked")
        condition = milestone.condition
        if isinstance(condition, TimeOnly) and now < condition.unlock_time:
            raise ContractError("ConditionNotMet", f"milestone {milestone_id} unlocks at {condition.unlock_time}")
        if isinstance(condition, OracleAttestation):
            attested = self._attested(stream_id)
            if condition.attestation_id in attested:
                raise ContractError("InvalidAttestation", f"attestation {condition.attestation_id.hex()} was used")
            self._set_attested(stream_id, (*attested, condition.attestation_id))
        unlocked = (*milestones[:index], dataclasses.replace(milestone, is_unlocked=True), *milestones[index + 1:])
        self._set_milestones(stream_id, unlocked)
        assert isinstance(stream.schedule, StepTranches)
        steps = list(stream.schedule.steps)
        for i, step in enumerate(steps):
            if step.unlock_amount == milestone.amount and step.unlock_time == U64_MAX:
                steps[i] = VestingStep(now, step.unlock_amount)
                break
        stream.schedule = StepTranches(tuple(steps))
        stream.last_update_time = now
        self._save(stream)
        return [MilestoneConditionUnlocked(stream_id=stream_id, milestone_id=milestone_id, amount=milestone.amount,
                                           caller=caller, timestamp=now)]

    @entry_point
    def request_dispute(self, sender: str, stream_id: int, *, now: int) -> list[Emitted]:
        """Needs the stream's arbiter, which no entry point sets: on chain it always ends in
        DisputeNotSupported."""
        stream = self._load(stream_id)
        self._check_sender(stream, sender)
        self._check_active(stream)
        if stream.arbiter is None:
            raise ContractError("DisputeNotSupported", f"stream {stream_id} has no arbiter")
        stream.dispute_status = DisputeStatus("Requested")
        self._save(stream)
        return [DisputeRequested(stream_id=stream_id, sender=sender, arbiter=stream.arbiter, timestamp=now)]

    @entry_point
    def resolve_dispute(self, arbiter: str, stream_id: int, approved: bool, *, now: int) -> list[Emitted]:
        """The arbiter's ruling; an approval cancels the stream as cancel_stream does. Unreachable on
        chain, like request_dispute."""
        stream = self._load(stream_id)
        if stream.arbiter is None:
            raise ContractError("DisputeNotSupported", f"stream {stream_id} has no arbiter")
        if arbiter != stream.arbiter:
            raise ContractError("NotArbiter", f"{arbiter} is not the arbiter of stream {stream_id}")
        if stream.dispute_status != DisputeStatus("Requested"):
            raise ContractError("NoActiveDispute", f"stream {stream_id} has no dispute requested")
        stream.dispute_status = DisputeStatus("Resolved", approved)
        resolved = DisputeResolved(stream_id=stream_id, arbiter=arbiter, approved=approved, timestamp=now)
        if approved:
            return [resolved, *self._cancel(stream, now)]
        self._save(stream)
        return [resolved]

    @entry_point
    def close_stream(self, caller: str, stream_id: int, *, now: int) -> list[Emitted]:
        """Deletes a finished stream's storage entry (its milestones stay in instance storage); the
        sender, the recipient or the admin may. A completed stream must be fully withdrawn."""
        stream = self._load(stream_id)
        admin = None if self.config is None else self.config.admin
        if caller not in (stream.sender, stream.recipient, admin):
            raise ContractError("Unauthorized", f"{caller} may not close stream {stream_id}")
        if stream.is_active or stream.status not in (StreamStatus.COMPLETED, StreamStatus.CANCELLED):
            raise ContractError("StreamStillActive", f"stream {stream_id} is {stream.status.value}")
        if stream.status is StreamStatus.COMPLETED and (
            stream.deposited_amount != stream.withdrawn_amount or claimable(stream, now) != 0
        ):
            raise ContractError("StreamStillActive", f"stream {stream_id} still holds tokens")
        self._remove(stream_id)
        return [StreamClosed(stream_id=stream_id, closer=caller, timestamp=now)]

    @entry_point
    def extend_stream_ttl(self, stream_id: int, *, now: int) -> list[Emitted]:
        """Reading a stream extends its entry's TTL (c9f5d2e's reads do)."""
        self._load(stream_id)
        return []

    @entry_point
    def bump_stream_ttl(self, stream_id: int, *, now: int) -> list[Emitted]:
        if not self._exists(stream_id):
            raise ContractError("StreamNotFound", f"no stream {stream_id}")
        self._bump(stream_id)
        return []

    # Invocation by name, as a transaction names it

    @property
    def functions(self) -> tuple[str, ...]:
        return calls.functions(self.build)

    def invoke(self, function: str, args: Mapping[str, object], *, now: int) -> list[Emitted]:
        """Call an entry point by name with arguments by the contract's parameter names (`devnet.calls`)."""
        kwargs = calls.parse(function, args, self.build)
        return getattr(self, function)(**kwargs, now=now)  # type: ignore[no-any-return]

    @staticmethod
    def result_of(function: str, emitted: list[Emitted]) -> Any:
        """The entry point's return value as the contract returns it: a stream id (or a batch's ids), the
        amount withdrawn (a batch's [id, amount] pairs), a new end time, a milestone's amount."""
        events = [e for e in emitted if not isinstance(e, Transfer)]
        if function == "batch_create_streams":
            return [e.stream_id for e in events if isinstance(e, StreamCreated)]
        if function == "batch_withdraw":
            return [[e.stream_id, e.amount] for e in events if isinstance(e, TokensWithdrawn)]
        for event in events:
            if function.startswith("create_") and isinstance(event, CREATIONS):
                return event.stream_id
            if function == "withdraw" and isinstance(event, TokensWithdrawn):
                return event.amount
            if isinstance(event, StreamResumed | StreamRateModified):
                return event.new_end_time
            if isinstance(event, MilestoneConditionUnlocked):
                return event.amount
        return None
