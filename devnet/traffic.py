"""Realistic random traffic against the contract model: only calls the contract accepts.

A seeded population of accounts (G... strkeys of random keypairs) and one token contract. The first call
initializes the contract; then streams are created, topped up, withdrawn from (short streams complete),
paused, resumed and cancelled, with an occasional fee change or admin transfer, and now and then a
resume of a stream cancelled while paused (the contract accepts it). Each call is chosen against the
contract's state at the moment it is applied, so a ledger full of traffic never fails.
"""

from __future__ import annotations

import random
from typing import Any

from stellar_sdk import Keypair, StrKey

from devnet.contract import FlowFiContract, StreamStatus, claimable

_WEIGHTS = {
    "create_stream": 30,
    "withdraw": 30,
    "top_up_stream": 10,
    "pause_stream": 8,
    "resume_stream": 8,
    "cancel_stream": 6,
    "resume_cancelled": 1,
    "update_fee_config": 1,
    "transfer_admin": 0.3,
}
# Choices that are not named after the entry point they call.
_FUNCTION = {"resume_cancelled": "resume_stream"}


class Traffic:
    """Chooses the next valid call; `next_call(contract, now)` is what the chain asks for each tx."""

    def __init__(self, *, seed: int | None = None, accounts: int = 40, token: str | None = None) -> None:
        self.rng = random.Random(seed)
        self.accounts = [
            Keypair.from_raw_ed25519_seed(self.rng.randbytes(32)).public_key for _ in range(accounts)
        ]
        self.token = token or StrKey.encode_contract(self.rng.randbytes(32))
        self._open: list[int] = []
        self._cancelled_while_paused: list[int] = []
        self._known = 0
        self._names = list(_WEIGHTS)
        self._weights = list(_WEIGHTS.values())

    def next_call(self, contract: FlowFiContract, now: int) -> tuple[str, dict[str, Any]]:
        if contract.config is None:
            return "initialize", {
                "admin": self.rng.choice(self.accounts),
                "treasury": self.rng.choice(self.accounts),
                "fee_rate_bps": self.rng.choice([0, 10, 25, 50, 100]),
            }
        self._track_new_streams(contract)
        for _ in range(20):
            name = self.rng.choices(self._names, self._weights)[0]
            call = getattr(self, "_" + name)(contract, now)
            if call is not None:
                return _FUNCTION.get(name, name), call
        return "create_stream", self._create_stream(contract, now)

    def _track_new_streams(self, contract: FlowFiContract) -> None:
        while self._known < contract.stream_counter:
            self._known += 1
            self._open.append(self._known)

    def _pick_open(self, contract: FlowFiContract, status: StreamStatus | None = None) -> int | None:
        """A random stream still open (and in `status`), forgetting finished ones on the way."""
        for _ in range(8):
            if not self._open:
                return None
            index = self.rng.randrange(len(self._open))
            stream = contract.streams[self._open[index]]
            if not stream.is_active:
                self._open[index] = self._open[-1]
                self._open.pop()
                if stream.paused:
                    self._cancelled_while_paused.append(stream.stream_id)
                continue
            if status is None or stream.status is status:
                return stream.stream_id
        return None

    def _create_stream(self, contract: FlowFiContract, now: int) -> dict[str, Any]:
        sender, recipient = self.rng.sample(self.accounts, 2)
        duration = self.rng.choice([30, 60, 120, 300, 600, 3600, 86_400])
        amount = duration * self.rng.randint(1_000, 10_000_000)
        return {
            "sender": sender,
            "recipient": recipient,
            "token_address": self.token,
            "amount": amount,
            "duration": duration,
        }

    def _withdraw(self, contract: FlowFiContract, now: int) -> dict[str, Any] | None:
        stream_id = self._pick_open(contract, StreamStatus.ACTIVE)
        if stream_id is None:
            return None
        stream = contract.streams[stream_id]
        if claimable(stream, now) <= 0:
            return None
        return {"recipient": stream.recipient, "stream_id": stream_id}

    def _top_up_stream(self, contract: FlowFiContract, now: int) -> dict[str, Any] | None:
        stream_id = self._pick_open(contract)
        if stream_id is None:
            return None
        stream = contract.streams[stream_id]
        amount = stream.rate_per_second * self.rng.randint(10, 600)
        return {"sender": stream.sender, "stream_id": stream_id, "amount": amount}

    def _pause_stream(self, contract: FlowFiContract, now: int) -> dict[str, Any] | None:
        stream_id = self._pick_open(contract, StreamStatus.ACTIVE)
        if stream_id is None:
            return None
        return {"sender": contract.streams[stream_id].sender, "stream_id": stream_id}

    def _resume_stream(self, contract: FlowFiContract, now: int) -> dict[str, Any] | None:
        stream_id = self._pick_open(contract, StreamStatus.PAUSED)
        if stream_id is None:
            return None
        return {"sender": contract.streams[stream_id].sender, "stream_id": stream_id}

    def _resume_cancelled(self, contract: FlowFiContract, now: int) -> dict[str, Any] | None:
        """resume_stream on a stream cancelled while paused: accepted, and nothing moves."""
        if not self._cancelled_while_paused:
            return None
        stream = contract.streams[self._cancelled_while_paused.pop()]
        return {"sender": stream.sender, "stream_id": stream.stream_id} if stream.paused else None

    def _cancel_stream(self, contract: FlowFiContract, now: int) -> dict[str, Any] | None:
        stream_id = self._pick_open(contract)
        if stream_id is None:
            return None
        return {"sender": contract.streams[stream_id].sender, "stream_id": stream_id}

    def _update_fee_config(self, contract: FlowFiContract, now: int) -> dict[str, Any] | None:
        assert contract.config is not None
        return {
            "admin": contract.config.admin,
            "treasury": self.rng.choice(self.accounts),
            "fee_rate_bps": self.rng.choice([0, 10, 25, 50, 100, 1000]),
        }

    def _transfer_admin(self, contract: FlowFiContract, now: int) -> dict[str, Any] | None:
        assert contract.config is not None
        return {"current_admin": contract.config.admin, "new_admin": self.rng.choice(self.accounts)}
