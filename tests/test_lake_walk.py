"""The fast walk of LedgerCloseMeta XDR against stellar-sdk's full decode, on every data-lake test file:
the same events, ids, fields and base64 bytes, ledger by ledger, with and without a contract filter."""

from __future__ import annotations

import pytest
from stellar_sdk import StrKey, xdr

from indexer.lake import reference, walk
from indexer.lake.event import LakeEvent
from tests.lake_files import FEES, FILES, META_V3, V23, V28, decompressed, ledger_spans


def _both(buf: bytes, want: frozenset[bytes] | None = None) -> list[tuple[tuple[LakeEvent, ...], ...]]:
    pairs = []
    for pos, end in ledger_spans(buf):
        fast, stop = walk.walk_ledger(buf, pos, end, want)
        assert stop == end
        slow = reference.ledger_events(reference.decode_ledger(buf, pos, end)[0], want)
        assert fast.sequence == slow.sequence
        pairs.append((fast.events, slow.events))
    return pairs


# stellar-sdk takes some 30 s to decode the 30 ledgers of the v28 load test: a long run
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == V28 else n for n in FILES])
def test_the_walk_gives_every_ledger_the_events_stellar_sdk_decodes(name: str) -> None:
    """No ledger falls back to stellar-sdk here: walk_ledger raises for what it cannot read."""
    pairs = _both(decompressed(name))
    assert all(fast == slow for fast, slow in pairs)
    assert len(pairs) >= 1


@pytest.mark.parametrize("name", [FEES, META_V3, V23])
def test_a_contract_filter_keeps_that_contracts_events_with_their_unfiltered_ids(name: str) -> None:
    buf = decompressed(name)
    everything = [event for pos, end in ledger_spans(buf) for event in walk.walk_ledger(buf, pos, end)[0].events]
    contracts = {event.contract_id for event in everything}
    assert contracts
    for contract in contracts:
        want = frozenset({StrKey.decode_contract(contract)})
        pairs = _both(buf, want)
        assert all(fast == slow for fast, slow in pairs)
        assert [e for fast, _ in pairs for e in fast] == [e for e in everything if e.contract_id == contract]


def test_a_contract_that_is_not_there_gives_no_events() -> None:
    buf = decompressed(FEES)
    absent = frozenset({bytes(32)})
    assert all(not fast and not slow for fast, slow in _both(buf, absent))


@pytest.mark.parametrize("name", [FEES, META_V3, V23])
def test_topics_and_values_are_stellar_sdks_encoding_of_the_parsed_xdr(name: str) -> None:
    buf = decompressed(name)
    for pos, end in ledger_spans(buf):
        for event in walk.walk_ledger(buf, pos, end)[0].events:
            for b64 in (*event.topic, event.value):
                assert xdr.SCVal.from_xdr(b64).to_xdr() == b64


def test_transaction_level_events_take_rpcs_ids_by_stage() -> None:
    buf = decompressed(FEES)
    events = [event for pos, end in ledger_spans(buf) for event in walk.walk_ledger(buf, pos, end)[0].events]
    before = [e for e in events if e.transaction_index == 0]
    after = [e for e in events if e.transaction_index == 1048575]
    assert (len(before), len(after), len(events) - len(before) - len(after)) == (42, 30, 21)
    assert all(e.operation_index == 0 for e in before + after)
    for ledger in {e.ledger for e in after}:
        indexes = [int(e.id.split("-")[1]) for e in after if e.ledger == ledger]
        assert indexes == list(range(len(indexes)))  # counted over the ledger, in transaction order
    assert "0000000017179865088-0000000000" in {e.id for e in after if e.ledger == 3}
