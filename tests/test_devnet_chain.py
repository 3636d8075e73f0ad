from collections import Counter

import pytest

from devnet.chain import Chain
from devnet.traffic import Traffic
from indexer.ids import event_id

SENDER = "GAJKUTWHRMNW375TPXCKYDF4MLUBJIRD7YVKGCNN3J6S44GZE3N2LUBQ"
RECIPIENT = "GDD24I62LHMI6FRWMZ3OD36DDAM4MDQSFWS7G37HZDHHXTMBOGFV7GCO"
TOKEN = "CC5VQ6PDN44JTGIJ7XZAN2WPQHHCRQLOKWI2RRAXXRS3WR2HI25AHEX2"
CREATE = {"sender": SENDER, "recipient": RECIPIENT, "token_address": TOKEN, "amount": 1000, "duration": 10}


def test_transactions_are_indexed_from_one_in_submission_order() -> None:
    chain = Chain(genesis_time=1000)
    first = chain.submit("create_stream", CREATE)
    failing = chain.submit("withdraw", {"recipient": SENDER, "stream_id": 1})
    second = chain.submit("create_stream", CREATE)
    ledger = chain.close_ledger(1005)
    assert ledger.sequence == 2
    receipts = [f.result(timeout=0) for f in (first, failing, second)]
    assert [r.tx_index for r in receipts] == [1, 2, 3]
    assert receipts[1].error is not None and receipts[1].error.name == "Unauthorized"
    assert receipts[1].events == ()
    assert chain.failed_transactions == 1
    assert [eid for eid, _ in receipts[2].events] == [event_id(2, 3, 0, 0)]
    assert receipts[0].result == 1 and receipts[2].result == 2
    assert len({r.tx_hash for r in receipts}) == 3
    stream = chain.contract.streams[1]
    assert stream.start_time == 1005


def test_close_times_increase() -> None:
    clock_value = [1000.0]
    chain = Chain(clock=lambda: clock_value[0])
    assert chain.close_ledger().close_time == 1001  # the wall clock has not moved: previous + 1
    clock_value[0] = 2000.5
    assert chain.close_ledger().close_time == 2000
    with pytest.raises(ValueError, match="not after"):
        chain.close_ledger(2000)


def test_retention_drops_old_ledgers_and_their_events() -> None:
    chain = Chain(retention=3, genesis_time=1)
    for _ in range(5):
        chain.submit("create_stream", CREATE)
        chain.close_ledger()
    oldest, latest = chain.ledger_range()
    assert (oldest.sequence, latest.sequence) == (4, 6)
    events = chain.scan(after="", end_ledger=latest.sequence + 1, limit=100)
    assert [e.ledger for e in events] == [4, 5, 6]


def test_traffic_only_makes_valid_calls_and_exercises_every_path() -> None:
    chain = Chain(genesis_time=1_700_000_000)
    chain.traffic, chain.traffic_per_ledger = Traffic(seed=7), 10
    for _ in range(300):
        chain.close_ledger(chain.latest.close_time + 5)
    assert chain.failed_transactions == 0
    topics = Counter(event.topic[0] for event in chain.scan(after="", end_ledger=10**6, limit=10**6))
    assert len(topics) == 11  # every event kind, initialized included


def test_generate_history_is_deterministic_for_a_seed() -> None:
    def history() -> list[tuple[str, str]]:
        chain = Chain(genesis_time=1_700_000_000, clock=lambda: 1_700_000_000.0)
        added = chain.generate_history(3000, traffic=Traffic(seed=11), tx_per_ledger=40)
        assert added >= 3000
        return [(e.id, e.value) for e in chain.scan(after="", end_ledger=10**6, limit=10**6)]

    first = history()
    assert first == history()
    assert first == sorted(first)
    assert len({eid for eid, _ in first}) == len(first)
