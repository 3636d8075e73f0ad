"""Realistic random traffic against the contract model: only calls the contract accepts.

A seeded population of accounts (G... strkeys of random keypairs) and the chain's tokens. The first call
initializes the contract; then streams are created, topped up, withdrawn from, paused, resumed and
cancelled, with an occasional fee change or admin transfer, using every entry point of the build in
force. In 8723543 that includes, now and then, a resume of a stream cancelled while paused (the
contract accepts it). In c9f5d2e: every kind of creation (batches, cliffs, steps, hybrid cliffs,
milestones, allowance streams), batch withdrawals, recipient transfers, rate changes, milestone
unlocks, closes, TTL extensions, the guardian, protocol pauses (lifted by the next call), migrations and
upgrades; never disputes, which cannot succeed on chain (no stream ever has an arbiter).

Each call is chosen against the contract's state at the moment it is applied, so a ledger full of
traffic never fails. Traffic touches only the streams it created itself, and acts as the admin only
when the admin is one of its accounts: what a user does through /invoke is left alone.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from stellar_sdk import Asset, Keypair

from devnet.contract import FlowFiContract
from devnet.terms import (
    CURRENT_DATA_VERSION,
    NEWEST_BUILD,
    WASM_HASHES,
    Linear,
    OracleAttestation,
    StepTranches,
    Stream,
    StreamStatus,
    TimeOnly,
    claimable,
)
from devnet.tokens import DEFAULT_CODES, ISSUER
from indexer.networks import LOCAL_PASSPHRASE

_COMMON = {
    "create_stream": 30.0,
    "withdraw": 30.0,
    "top_up_stream": 10.0,
    "pause_stream": 8.0,
    "resume_stream": 8.0,
    "cancel_stream": 6.0,
    "update_fee_config": 1.0,
    "transfer_admin": 0.3,
}
_WEIGHTS = {
    "8723543": {**_COMMON, "resume_cancelled": 1.0},
    NEWEST_BUILD: {
        **_COMMON,
        "create_stream": 12.0,
        "batch_create_streams": 3.0,
        "create_stream_with_cliff": 4.0,
        "create_step_vesting_stream": 4.0,
        "create_hybrid_cliff_stream": 4.0,
        "create_conditional_stream": 4.0,
        "create_allowance_stream": 2.0,
        "batch_withdraw": 4.0,
        "transfer_recipient": 3.0,
        "modify_rate": 3.0,
        "verify_and_unlock_milestone": 8.0,
        "close_stream": 4.0,
        "extend_stream_ttl": 0.5,
        "bump_stream_ttl": 0.5,
        "set_emergency_guardian": 0.5,
        "set_protocol_pause": 0.4,
        "set_emergency_pause": 0.2,
        "migrate": 0.3,
        "upgrade": 0.05,
    },
}
# Choices that are not named after the entry point they call.
_FUNCTION = {"resume_cancelled": "resume_stream"}
_CREATIONS = frozenset(name for name in _WEIGHTS[NEWEST_BUILD] if name.startswith(("create_", "batch_create")))

Call = dict[str, Any]


class Traffic:
    """Chooses the next valid call; `next_call(contract, now)` is what the chain asks for each tx.
    `token`, when given, is the only token it streams; otherwise it streams the chain's own tokens."""

    def __init__(self, *, seed: int | None = None, accounts: int = 40, token: str | None = None) -> None:
        self.rng = random.Random(seed)
        self.accounts = [
            Keypair.from_raw_ed25519_seed(self.rng.randbytes(32)).public_key for _ in range(accounts)
        ]
        self._ours = frozenset(self.accounts)
        self._only_token = token
        self.token = token or Asset(DEFAULT_CODES[0], ISSUER).contract_id(LOCAL_PASSPHRASE)
        self._open: list[int] = []  # its streams, active when last seen
        self._finished: list[int] = []  # its streams cancelled or completed, not closed
        self._cancelled_while_paused: list[int] = []

    def next_call(self, contract: FlowFiContract, now: int) -> tuple[str, Call] | None:
        """The next call, or None when there is none it may make (the protocol paused by an admin that
        is not one of its accounts, and none of its streams to act on)."""
        config = contract.config
        if config is None:
            return "initialize", {
                "admin": self.rng.choice(self.accounts),
                "treasury": self.rng.choice(self.accounts),
                "fee_rate_bps": self.rng.choice([0, 10, 25, 50, 100]),
            }
        if config.is_protocol_paused and config.admin in self._ours:
            function = self.rng.choice(["set_protocol_pause", "set_emergency_pause"])
            return function, {"caller" if function == "set_protocol_pause" else "admin": config.admin,
                              "paused": False}
        weights = _WEIGHTS[contract.build]
        names, values = list(weights), list(weights.values())
        for _ in range(20):
            name = self.rng.choices(names, values)[0]
            if config.is_protocol_paused and (name in _CREATIONS or name == "top_up_stream"):
                continue
            choose: Callable[[FlowFiContract, int], Call | None] = getattr(self, "_" + name)
            call = choose(contract, now)
            if call is not None:
                return _FUNCTION.get(name, name), call
        if config.is_protocol_paused:
            return None
        return "create_stream", self._create_stream(contract, now)

    # Bookkeeping: its own streams only

    def _created(self, contract: FlowFiContract, count: int = 1) -> None:
        """Remember the ids the creation being returned will get (traffic calls never fail)."""
        self._open.extend(range(contract.stream_counter + 1, contract.stream_counter + 1 + count))

    def _pick(self, contract: FlowFiContract, accept: Callable[[Stream], bool] = lambda s: True) -> Stream | None:
        """A random stream of its own still active and accepted, forgetting finished ones on the way."""
        for _ in range(8):
            if not self._open:
                return None
            index = self.rng.randrange(len(self._open))
            stream = contract.streams.get(self._open[index])
            if stream is None or not stream.is_active:
                self._open[index] = self._open[-1]
                self._open.pop()
                if stream is not None:
                    self._finished.append(stream.stream_id)
                    if stream.paused:
                        self._cancelled_while_paused.append(stream.stream_id)
                continue
            if accept(stream):
                return stream
        return None

    def _tokens(self, contract: FlowFiContract) -> list[str]:
        if self._only_token is not None:
            return [self._only_token]
        return [token.contract_id for token in contract.tokens.defaults]

    def _net(self, contract: FlowFiContract, amount: int) -> int:
        bps = contract.config.fee_rate_bps if contract.config is not None else 0
        return amount - amount * bps // 10_000

    def _parties(self) -> tuple[str, str]:
        sender, recipient = self.rng.sample(self.accounts, 2)
        return sender, recipient

    def _split(self, total: int, parts: int) -> list[int]:
        """`total` in `parts` positive amounts; sometimes equal ones (milestones match steps by amount)."""
        if self.rng.random() < 0.3:
            share = total // parts
            return [share] * (parts - 1) + [total - share * (parts - 1)]
        cuts = sorted(self.rng.sample(range(1, total), parts - 1))
        return [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]

    # Creations

    def _create_stream(self, contract: FlowFiContract, now: int) -> Call:
        sender, recipient = self._parties()
        duration = self.rng.choice([30, 60, 120, 300, 600, 3600, 86_400])
        amount = duration * self.rng.randint(1_000, 10_000_000)
        self._created(contract)
        return {"sender": sender, "recipient": recipient, "token_address": self.rng.choice(self._tokens(contract)),
                "amount": amount, "duration": duration}

    def _batch_create_streams(self, contract: FlowFiContract, now: int) -> Call:
        sender = self.rng.choice(self.accounts)
        streams = []
        for _ in range(self.rng.randint(1, 4)):
            duration = self.rng.choice([60, 300, 3600])
            streams.append({
                "recipient": self.rng.choice([a for a in self.accounts if a != sender]),
                "token_address": self.rng.choice(self._tokens(contract)),
                "amount": duration * self.rng.randint(1_000, 1_000_000),
                "duration": duration,
                "cliff_duration": self.rng.choice([None, self.rng.randint(1, duration)]),
            })
        self._created(contract, len(streams))
        return {"sender": sender, "streams": streams}

    def _create_stream_with_cliff(self, contract: FlowFiContract, now: int) -> Call:
        call = self._create_stream(contract, now)
        call["cliff_duration"] = self.rng.randint(1, call["duration"])
        return call

    def _create_step_vesting_stream(self, contract: FlowFiContract, now: int) -> Call:
        sender, recipient = self._parties()
        amount = self.rng.randint(10_000, 10**10)
        count = self.rng.randint(1, 6)
        offsets = sorted(self.rng.sample(range(1, 3600), count))
        steps = [{"unlock_time": now + offset, "unlock_amount": part}
                 for offset, part in zip(offsets, self._split(self._net(contract, amount), count), strict=True)]
        self._created(contract)
        return {"sender": sender, "recipient": recipient, "token_address": self.rng.choice(self._tokens(contract)),
                "amount": amount, "steps": steps}

    def _create_hybrid_cliff_stream(self, contract: FlowFiContract, now: int) -> Call:
        sender, recipient = self._parties()
        amount = self.rng.randint(10**6, 10**11)
        net = self._net(contract, amount)
        self._created(contract)
        return {"sender": sender, "recipient": recipient, "token_address": self.rng.choice(self._tokens(contract)),
                "amount": amount, "cliff_time": now + self.rng.randint(1, 900),
                "cliff_unlock_amount": net * self.rng.randint(5, 60) // 100,
                "linear_duration": self.rng.choice([60, 600, 3600])}

    def _create_conditional_stream(self, contract: FlowFiContract, now: int) -> Call:
        sender, recipient = self._parties()
        amount = self.rng.randint(10_000, 10**10)
        count = self.rng.randint(1, 4)
        milestones = []
        for number, part in enumerate(self._split(self._net(contract, amount), count), start=1):
            condition: dict[str, Any] = {"TimeOnly": now + self.rng.randint(0, 1200)}
            if self.rng.random() < 0.4:
                condition = {"OracleAttestation": {"oracle_signer": self.rng.choice(self.accounts),
                                                   "attestation_id": self.rng.randbytes(32).hex()}}
            milestones.append({"milestone_id": number, "amount": part, "condition": condition})
        self.rng.shuffle(milestones)
        self._created(contract)
        return {"sender": sender, "recipient": recipient, "token_address": self.rng.choice(self._tokens(contract)),
                "amount": amount, "milestones": milestones}

    def _create_allowance_stream(self, contract: FlowFiContract, now: int) -> Call | None:
        sender, recipient = self._parties()
        token = self.rng.choice(self._tokens(contract))
        if contract.tokens.allowance(token, sender, contract.address) <= 0:
            return None
        self._created(contract)
        return {"sender": sender, "recipient": recipient, "token_address": token,
                "duration": self.rng.choice([600, 3600, 86_400])}

    # Stream operations

    def _withdraw(self, contract: FlowFiContract, now: int) -> Call | None:
        stream = self._pick(contract, lambda s: not s.paused and claimable(s, now) > 0)
        return None if stream is None else {"recipient": stream.recipient, "stream_id": stream.stream_id}

    def _batch_withdraw(self, contract: FlowFiContract, now: int) -> Call | None:
        first = self._pick(contract)
        if first is None:
            return None
        ids = [stream_id for stream_id in {*self._open, *self._finished}
               if (s := contract.streams.get(stream_id)) is not None and s.recipient == first.recipient]
        self.rng.shuffle(ids)
        return {"recipient": first.recipient, "stream_ids": sorted(ids[:6])}

    def _top_up_stream(self, contract: FlowFiContract, now: int) -> Call | None:
        stream = self._pick(contract, lambda s: contract.build != NEWEST_BUILD or not isinstance(s.schedule,
                                                                                                   StepTranches))
        if stream is None:
            return None
        amount = max(stream.rate_per_second, 1_000) * self.rng.randint(10, 600)
        return {"sender": stream.sender, "stream_id": stream.stream_id, "amount": amount}

    def _pause_stream(self, contract: FlowFiContract, now: int) -> Call | None:
        stream = self._pick(contract, lambda s: s.status is StreamStatus.ACTIVE)
        return None if stream is None else {"sender": stream.sender, "stream_id": stream.stream_id}

    def _resume_stream(self, contract: FlowFiContract, now: int) -> Call | None:
        stream = self._pick(contract, lambda s: s.status is StreamStatus.PAUSED)
        return None if stream is None else {"sender": stream.sender, "stream_id": stream.stream_id}

    def _resume_cancelled(self, contract: FlowFiContract, now: int) -> Call | None:
        """resume_stream on a stream cancelled while paused: 8723543 accepts it, and nothing moves."""
        if not self._cancelled_while_paused:
            return None
        stream = contract.streams.get(self._cancelled_while_paused.pop())
        return {"sender": stream.sender, "stream_id": stream.stream_id} if stream and stream.paused else None

    def _cancel_stream(self, contract: FlowFiContract, now: int) -> Call | None:
        stream = self._pick(contract)
        return None if stream is None else {"sender": stream.sender, "stream_id": stream.stream_id}

    def _transfer_recipient(self, contract: FlowFiContract, now: int) -> Call | None:
        stream = self._pick(contract)
        if stream is None:
            return None
        new = self.rng.choice([a for a in self.accounts if a != stream.recipient])
        return {"current_recipient": stream.recipient, "stream_id": stream.stream_id, "new_recipient": new}

    def _modify_rate(self, contract: FlowFiContract, now: int) -> Call | None:
        stream = self._pick(contract, lambda s: isinstance(s.schedule, Linear))
        if stream is None:
            return None
        rate = max(stream.rate_per_second * self.rng.randint(50, 200) // 100, 1)
        return {"sender": stream.sender, "stream_id": stream.stream_id, "new_rate_per_second": rate}

    def _verify_and_unlock_milestone(self, contract: FlowFiContract, now: int) -> Call | None:
        stream = self._pick(contract, lambda s: s.stream_id in contract.milestones)
        if stream is None:
            return None
        attested = contract.attested.get(stream.stream_id, ())
        for milestone in contract.milestones[stream.stream_id]:
            condition = milestone.condition
            ready = (isinstance(condition, TimeOnly) and condition.unlock_time <= now) or (
                isinstance(condition, OracleAttestation) and condition.attestation_id not in attested)
            if not milestone.is_unlocked and ready:
                return {"caller": self.rng.choice([stream.sender, stream.recipient]), "stream_id": stream.stream_id,
                        "milestone_id": milestone.milestone_id}
        return None

    def _close_stream(self, contract: FlowFiContract, now: int) -> Call | None:
        self._pick(contract, lambda s: False)  # moves a few finished streams over
        while self._finished:
            stream = contract.streams.get(self._finished.pop(self.rng.randrange(len(self._finished))))
            if stream is None or stream.is_active:
                continue
            if stream.status is StreamStatus.CANCELLED or (
                stream.status is StreamStatus.COMPLETED and stream.deposited_amount == stream.withdrawn_amount
                and claimable(stream, now) == 0
            ):
                return {"caller": self.rng.choice([stream.sender, stream.recipient]), "stream_id": stream.stream_id}
        return None

    def _extend_stream_ttl(self, contract: FlowFiContract, now: int) -> Call | None:
        stream = self._pick(contract)
        return None if stream is None else {"stream_id": stream.stream_id}

    _bump_stream_ttl = _extend_stream_ttl

    # Protocol administration, as its own admin only

    def _admin(self, contract: FlowFiContract) -> str | None:
        config = contract.config
        return config.admin if config is not None and config.admin in self._ours else None

    def _update_fee_config(self, contract: FlowFiContract, now: int) -> Call | None:
        admin = self._admin(contract)
        if admin is None:
            return None
        return {"admin": admin, "treasury": self.rng.choice(self.accounts),
                "fee_rate_bps": self.rng.choice([0, 10, 25, 50, 100, 1000])}

    def _transfer_admin(self, contract: FlowFiContract, now: int) -> Call | None:
        admin = self._admin(contract)
        return None if admin is None else {"current_admin": admin, "new_admin": self.rng.choice(self.accounts)}

    def _set_emergency_guardian(self, contract: FlowFiContract, now: int) -> Call | None:
        admin = self._admin(contract)
        return None if admin is None else {"admin": admin, "guardian": self.rng.choice([None, *self.accounts[:5]])}

    def _set_protocol_pause(self, contract: FlowFiContract, now: int) -> Call | None:
        """A pause, by the admin or the guardian; the next call lifts it."""
        admin = self._admin(contract)
        if admin is None or contract.config is None:
            return None
        guardian = contract.config.emergency_guardian
        return {"caller": self.rng.choice([admin, guardian or admin]), "paused": True}

    def _set_emergency_pause(self, contract: FlowFiContract, now: int) -> Call | None:
        admin = self._admin(contract)
        return None if admin is None else {"admin": admin, "paused": True}

    def _migrate(self, contract: FlowFiContract, now: int) -> Call | None:
        current = contract.contract_version or 0
        if self._admin(contract) is None or current > CURRENT_DATA_VERSION:
            return None
        return {"target_version": self.rng.randint(current, CURRENT_DATA_VERSION)}

    def _upgrade(self, contract: FlowFiContract, now: int) -> Call | None:
        if self._admin(contract) is None:
            return None
        return {"new_wasm_hash": WASM_HASHES[NEWEST_BUILD].hex()}

