"""The contract's entry points that create streams: create_stream (both builds) and c9f5d2e's batch,
cliff, step vesting, hybrid cliff, conditional (milestone) and allowance streams.

Each checks what the contract checks, in its order, and returns what the call publishes, in order:
the token transfers of the tokens' contracts (`Transfer`) and FlowFi's events. A creation that takes
tokens first moves the gross amount from the sender to the contract, then pays the fee to the
treasury (with fee_collected) and publishes the creation event; a batch first moves the sum per token.
Ids are assigned before the transfer, so a failed call assigns none (the call is rolled back).
"""

from __future__ import annotations

from devnet.state import ContractState, entry_point
from devnet.terms import (
    MAX_BATCH_CREATE,
    MAX_CONDITIONAL_MILESTONES,
    MAX_VESTING_STEPS,
    U64_MAX,
    BatchStreamInput,
    ConditionalMilestone,
    ContractError,
    Emitted,
    HybridCliffLinear,
    InvalidInvocation,
    PriceTarget,
    StepTranches,
    Stream,
    Transfer,
    VestingStep,
    checked_i128,
    sat_i128,
    trap_u64,
)
from indexer.events import (
    AllowanceStreamCreated,
    HybridCliffStreamCreated,
    StepVestingStreamCreated,
    StreamCreated,
)


def _positive(amount: int) -> None:
    if amount <= 0:
        raise ContractError("InvalidAmount", f"amount must be positive, got {amount}")


def _created(stream: Stream) -> StreamCreated:
    return StreamCreated(stream_id=stream.stream_id, sender=stream.sender, recipient=stream.recipient,
                         rate_per_second=stream.rate_per_second, token_address=stream.token_address,
                         deposited_amount=stream.deposited_amount, start_time=stream.start_time)


class Creations(ContractState):
    @entry_point
    def create_stream(
        self, sender: str, recipient: str, token_address: str, amount: int, duration: int, *, now: int
    ) -> list[Emitted]:
        """A linear stream of `amount` less the fee over `duration` seconds; rate = net / duration."""
        if self.newest:
            self._require_not_protocol_paused()
        _positive(amount)
        if duration == 0:
            raise ContractError("InvalidDuration", "duration must be positive")
        self._check_token(token_address)
        stream_id = self._next_stream_id()
        taken = Transfer(token_address, sender, self.address, amount)
        net, fee, treasury = self._fee(amount)
        rate = net // duration
        if rate == 0:
            raise ContractError("InvalidRate", f"net amount {net} over {duration} s streams 0 per second")
        stream = Stream(stream_id, sender, recipient, token_address, rate, net, 0, now, now, fees_paid=fee)
        self._save(stream)
        return [taken, *self._fee_paid(stream_id, token_address, fee, treasury), _created(stream)]

    @entry_point
    def batch_create_streams(self, sender: str, streams: list[BatchStreamInput], *, now: int) -> list[Emitted]:
        """Up to 50 linear streams (each with an optional cliff): all inputs are checked first, then one
        transfer per token of the sum of its amounts, then each stream in input order, with its fee."""
        self._require_not_protocol_paused()
        if not streams:
            raise ContractError("InvalidAmount", "the batch is empty")
        if len(streams) > MAX_BATCH_CREATE:
            raise ContractError("BatchTooLarge", f"{len(streams)} streams; at most {MAX_BATCH_CREATE}")
        for entry in streams:
            _positive(entry.amount)
            if entry.duration == 0:
                raise ContractError("InvalidDuration", "duration must be positive")
            if entry.cliff_duration is not None and not 0 < entry.cliff_duration <= entry.duration:
                raise ContractError("InvalidDuration", f"cliff_duration {entry.cliff_duration} is not in "
                                                       f"(0, {entry.duration}]")
            self._check_token(entry.token_address)
            if entry.amount // entry.duration == 0:
                raise ContractError("InvalidRate", f"{entry.amount} over {entry.duration} s streams 0 per second")
        totals: dict[str, int] = {}
        for entry in streams:
            total = totals.get(entry.token_address, 0) + entry.amount
            totals[entry.token_address] = checked_i128(total, "the batch total")
        emitted: list[Emitted] = [Transfer(token, sender, self.address, total) for token, total in totals.items()]
        for entry in streams:
            stream_id = self._next_stream_id()
            net, fee, treasury = self._fee(entry.amount)
            rate = net // entry.duration
            if rate == 0:
                raise ContractError("InvalidRate", f"net amount {net} over {entry.duration} s streams 0 per second")
            cliff_time = None if entry.cliff_duration is None else trap_u64(now + entry.cliff_duration, "the cliff")
            stream = Stream(stream_id, sender, entry.recipient, entry.token_address, rate, net, 0, now, now,
                            cliff_time=cliff_time, fees_paid=fee)
            self._save(stream)
            emitted += [*self._fee_paid(stream_id, entry.token_address, fee, treasury), _created(stream)]
        return emitted

    @entry_point
    def create_stream_with_cliff(
        self, sender: str, recipient: str, token_address: str, amount: int, duration: int, cliff_duration: int,
        *, now: int,
    ) -> list[Emitted]:
        """A linear stream that accrues from its start but lets nothing be claimed before start + cliff
        (stream_created does not say so: the cliff is in storage only)."""
        self._require_not_protocol_paused()
        _positive(amount)
        if duration == 0 or not 0 < cliff_duration <= duration:
            raise ContractError("InvalidDuration", f"need 0 < cliff_duration <= duration, got {cliff_duration} "
                                                   f"and {duration}")
        self._check_token(token_address)
        stream_id = self._next_stream_id()
        taken = Transfer(token_address, sender, self.address, amount)
        net, fee, treasury = self._fee(amount)
        rate = net // duration
        if rate == 0:
            raise ContractError("InvalidRate", f"net amount {net} over {duration} s streams 0 per second")
        stream = Stream(stream_id, sender, recipient, token_address, rate, net, 0, now, now,
                        cliff_time=trap_u64(now + cliff_duration, "the cliff"), fees_paid=fee)
        self._save(stream)
        return [taken, *self._fee_paid(stream_id, token_address, fee, treasury), _created(stream)]

    @entry_point
    def create_step_vesting_stream(
        self, sender: str, recipient: str, token_address: str, amount: int, steps: list[VestingStep], *, now: int
    ) -> list[Emitted]:
        """Each step's amount unlocks at its time. The steps are checked after the fee is taken: they
        must be strictly increasing, after the start, positive, and add up to the net amount."""
        self._require_not_protocol_paused()
        _positive(amount)
        self._check_token(token_address)
        if not steps:
            raise ContractError("EmptyVestingSchedule", "no steps")
        if len(steps) > MAX_VESTING_STEPS:
            raise ContractError("TooManyVestingSteps", f"{len(steps)} steps; at most {MAX_VESTING_STEPS}")
        stream_id = self._next_stream_id()
        taken = Transfer(token_address, sender, self.address, amount)
        net, fee, treasury = self._fee(amount)
        total = 0
        for index, step in enumerate(steps):
            if step.unlock_amount <= 0:
                raise ContractError("InvalidVestingStepAmount", f"step {index} unlocks {step.unlock_amount}")
            if step.unlock_time <= now:
                raise ContractError("VestingStepBeforeStart", f"step {index} unlocks at {step.unlock_time}, "
                                                              f"not after the start {now}")
            if index and step.unlock_time <= steps[index - 1].unlock_time:
                raise ContractError("NonMonotonicVestingSteps", f"step {index} is not after step {index - 1}")
            total = sat_i128(total + step.unlock_amount)
        if total != net:
            raise ContractError("VestingStepTotalMismatch", f"the steps add up to {total}, the net amount is {net}")
        stream = Stream(stream_id, sender, recipient, token_address, 0, net, 0, now, now,
                        schedule=StepTranches(tuple(steps)), fees_paid=fee)
        self._save(stream)
        created = StepVestingStreamCreated(
            stream_id=stream_id, sender=sender, recipient=recipient, token_address=token_address,
            deposited_amount=net, step_count=len(steps), last_unlock_time=steps[-1].unlock_time,
        )
        return [taken, *self._fee_paid(stream_id, token_address, fee, treasury), created]

    @entry_point
    def create_hybrid_cliff_stream(
        self, sender: str, recipient: str, token_address: str, amount: int, cliff_time: int,
        cliff_unlock_amount: int, linear_duration: int, *, now: int,
    ) -> list[Emitted]:
        """`cliff_unlock_amount` unlocks at `cliff_time` (absolute), the rest streams over
        `linear_duration` from there."""
        self._require_not_protocol_paused()
        _positive(amount)
        if linear_duration == 0:
            raise ContractError("InvalidCliffParameters", "linear_duration must be positive")
        self._check_token(token_address)
        stream_id = self._next_stream_id()
        taken = Transfer(token_address, sender, self.address, amount)
        net, fee, treasury = self._fee(amount)
        if cliff_time <= now or not 0 < cliff_unlock_amount < net:
            raise ContractError("InvalidCliffParameters", f"need cliff_time > {now} and 0 < cliff_unlock_amount "
                                                          f"< {net} (the net amount)")
        rate = (net - cliff_unlock_amount) // linear_duration
        if rate == 0:
            raise ContractError("InvalidCliffParameters", "the linear part streams 0 per second")
        stream = Stream(stream_id, sender, recipient, token_address, rate, net, 0, now, now, cliff_time=cliff_time,
                        schedule=HybridCliffLinear(cliff_time, cliff_unlock_amount), fees_paid=fee)
        self._save(stream)
        created = HybridCliffStreamCreated(
            stream_id=stream_id, sender=sender, recipient=recipient, token_address=token_address,
            deposited_amount=net, cliff_time=cliff_time, cliff_unlock_amount=cliff_unlock_amount,
            rate_per_second=rate,
        )
        return [taken, *self._fee_paid(stream_id, token_address, fee, treasury), created]

    @entry_point
    def create_conditional_stream(
        self, sender: str, recipient: str, token_address: str, amount: int, milestones: list[ConditionalMilestone],
        *, now: int,
    ) -> list[Emitted]:
        """A step stream whose steps (one per milestone, in order) stay locked (u64::MAX) until
        verify_and_unlock_milestone; the milestones are kept in instance storage as passed, and the
        creation is a plain stream_created with rate 0. PriceTarget conditions are refused: the devnet
        has no price oracle to ask."""
        if any(isinstance(m.condition, PriceTarget) for m in milestones):
            raise InvalidInvocation("PriceTarget conditions need a price oracle, which the devnet does not have; "
                                    "use TimeOnly or OracleAttestation")
        self._require_not_protocol_paused()
        _positive(amount)
        self._check_token(token_address)
        stream_id = self._next_stream_id()
        taken = Transfer(token_address, sender, self.address, amount)
        net, fee, treasury = self._fee(amount)
        if not milestones:
            raise ContractError("EmptyVestingSchedule", "no milestones")
        if len(milestones) > MAX_CONDITIONAL_MILESTONES:
            raise ContractError("TooManyMilestones", f"{len(milestones)} milestones; at most "
                                                     f"{MAX_CONDITIONAL_MILESTONES}")
        total = 0
        for index, milestone in enumerate(milestones):
            if milestone.amount <= 0:
                raise ContractError("InvalidVestingStepAmount", f"milestone {index} unlocks {milestone.amount}")
            if any(later.milestone_id == milestone.milestone_id for later in milestones[index + 1:]):
                raise ContractError("InvalidMilestone", f"milestone id {milestone.milestone_id} appears twice")
            total = sat_i128(total + milestone.amount)
        if total != net:
            raise ContractError("VestingStepTotalMismatch", f"the milestones add up to {total}, the net amount is "
                                                            f"{net}")
        steps = tuple(VestingStep(U64_MAX, milestone.amount) for milestone in milestones)
        stream = Stream(stream_id, sender, recipient, token_address, 0, net, 0, now, now,
                        schedule=StepTranches(steps), fees_paid=fee)
        self._save(stream)
        self._set_milestones(stream_id, tuple(milestones))
        self._set_attested(stream_id, ())
        return [taken, *self._fee_paid(stream_id, token_address, fee, treasury), _created(stream)]

    @entry_point
    def create_allowance_stream(
        self, sender: str, recipient: str, token_address: str, duration: int, *, now: int
    ) -> list[Emitted]:
        """A stream of 1 unit a second with nothing deposited, for a sender who allows the contract to
        spend the token. Nothing ever spends that allowance: only top-ups fund the stream."""
        self._require_not_protocol_paused()
        if duration == 0:
            raise ContractError("InvalidDuration", "duration must be positive")
        self._check_token(token_address)
        stream_id = self._next_stream_id()
        if self.tokens.allowance(token_address, sender, self.address) <= 0:
            raise ContractError("AllowanceLocked", f"{sender} allows the contract nothing of {token_address}")
        stream = Stream(stream_id, sender, recipient, token_address, 1, 0, 0, now, now, is_allowance_based=True)
        self._save(stream)
        return [AllowanceStreamCreated(stream_id=stream_id, sender=sender, recipient=recipient,
                                       token_address=token_address, rate_per_second=1, start_time=now)]
