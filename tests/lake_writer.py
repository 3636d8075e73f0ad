"""The local network's history recorded ledger by ledger as it closes (before its retention drops it), for
the tests that write part of it as a data lake (devnet.lake.write_lake)."""

from __future__ import annotations

import json

from devnet import Chain
from devnet.lake import LakeLedger
from indexer import ids


def record_ledgers(chain: Chain, first: int, last: int) -> list[LakeLedger]:
    """Ledgers first..last of `chain` (still within its retention) with their events."""
    recorded = []
    for sequence in range(first, last + 1):
        ledger = chain.ledger(sequence)
        assert ledger.sequence == sequence, f"ledger {sequence} is no longer kept"
        stored = chain.scan(after=ids.before_ledger(sequence), end_ledger=sequence + 1, limit=1 << 30)
        recorded.append(LakeLedger(ledger, tuple(json.loads(event.json) for event in stored)))
    return recorded


def grow(chain: Chain, ledgers: int) -> list[LakeLedger]:
    """Close `ledgers` ledgers, recording each as it closes, before the chain's retention drops it (on a
    chain that has only its genesis ledger, that ledger first)."""
    recorded = []
    if chain.oldest.sequence == chain.latest.sequence:
        recorded += record_ledgers(chain, chain.latest.sequence, chain.latest.sequence)
    for _ in range(ledgers):
        sequence = chain.close_ledger().sequence
        recorded += record_ledgers(chain, sequence, sequence)
    return recorded


