"""Addresses and helpers shared by the tests of the local network's contract model."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from devnet.contract import FlowFiContract
from devnet.terms import ContractError, ContractTrap, Emitted, Transfer
from devnet.traffic import Traffic
from indexer.events import FlowFiEvent
from indexer.networks import LOCAL_CONTRACT_ID

ADMIN = "GBDK4KAKYLSGPQSZB65NBASVBK7D6X7C6XCNA3EANO3KT7ZBDLGTP72S"
TREASURY = "GDPMDGEVMG3NDHKMATXNBCVOOLZQEIIM2J6FSWTUXLGXWFNU5UWZDWK6"
SENDER = "GAJKUTWHRMNW375TPXCKYDF4MLUBJIRD7YVKGCNN3J6S44GZE3N2LUBQ"
RECIPIENT = "GDD24I62LHMI6FRWMZ3OD36DDAM4MDQSFWS7G37HZDHHXTMBOGFV7GCO"
STRANGER = "GCRRSYF5JBFPXHN5DCG65A4J3MUYE53QMQ4XMXZ3CNKWFJIJJTGMH6MZ"
TOKEN = "CC5VQ6PDN44JTGIJ7XZAN2WPQHHCRQLOKWI2RRAXXRS3WR2HI25AHEX2"
OTHER_TOKEN = "CAWVV6VAHHIKEPMBBGYXKUMPZ2JZUVBPJMDF27EEM32P5ACRYUXTBFSK"
CONTRACT = LOCAL_CONTRACT_ID


def events(emitted: list[Emitted]) -> list[FlowFiEvent]:
    """FlowFi's own events of a call, in publish order."""
    return [e for e in emitted if not isinstance(e, Transfer)]


def transfers(emitted: list[Emitted]) -> list[Transfer]:
    return [e for e in emitted if isinstance(e, Transfer)]


def state_of(contract: FlowFiContract) -> dict[str, Any]:
    """Everything the contract keeps, comparable: its storage, its code and its entries' lifetimes."""
    return {
        "streams": {i: dataclasses.asdict(s) for i, s in contract.streams.items()},
        "config": None if contract.config is None else dataclasses.asdict(contract.config),
        "instance": (contract.stream_counter, contract.contract_version, contract.recorded_wasm_hash,
                     contract.wasm_hash, contract.build, dict(contract.milestones), dict(contract.attested)),
        "lifetimes": {k: (v.last_modified, v.live_until) for k, v in contract.lifetimes.items()},
    }


def refused(contract: FlowFiContract, call: Callable[..., list[Emitted]], *args: Any, **kwargs: Any) -> ContractError:
    """Call an entry point the contract must refuse; the refusal changes nothing."""
    before = state_of(contract)
    with pytest.raises(ContractError) as caught:
        call(*args, **kwargs)
    assert state_of(contract) == before
    return caught.value


def trapped(contract: FlowFiContract, call: Callable[..., list[Emitted]], *args: Any, **kwargs: Any) -> None:
    before = state_of(contract)
    with pytest.raises(ContractTrap):
        call(*args, **kwargs)
    assert state_of(contract) == before


def initialized(build: str, fee_rate_bps: int = 0) -> FlowFiContract:
    contract = FlowFiContract(build)
    contract.initialize(ADMIN, TREASURY, fee_rate_bps, now=1)
    return contract


def linear(contract: FlowFiContract, amount: int = 1000, duration: int = 10, now: int = 100) -> int:
    """A linear stream from SENDER to RECIPIENT; its id."""
    created = events(contract.create_stream(SENDER, RECIPIENT, TOKEN, amount, duration, now=now))[-1]
    return created.stream_id  # type: ignore[attr-defined, no-any-return]


class Recording:
    """Traffic that remembers which functions it called, and with what."""

    def __init__(self, traffic: Traffic) -> None:
        self.traffic = traffic
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def next_call(self, contract: FlowFiContract, now: int) -> tuple[str, dict[str, Any]] | None:
        call = self.traffic.next_call(contract, now)
        if call is not None:
            self.calls.append(call)
        return call
