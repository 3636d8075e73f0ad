"""The data-lake reader end to end (`read_ledgers`) on every test file: the events Stellar RPC's getEvents
returns for them, ranges, contract filters, and the RawEvent the indexer's decoder takes."""

from __future__ import annotations

import orjson
import pytest

from indexer.lake import LakeEvent, LakeNetworkMismatch, LakeSourceError, check_network, newest_ledger, read_ledgers
from indexer.rpc import raw_event
from tests.lake_files import DATALAKE, FEES, MAINNET_BATCH, META_V3, TESTBUCKET, V23, V28


def _events(source: str, **kwargs: object) -> list[LakeEvent]:
    return [event for ledger in read_ledgers(source, **kwargs) for event in ledger.events]  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "count", "first", "last"), [
    (V23, 2000, "0000000365072224256-0000000000", "0000000377957531648-0000000009"),
    (FEES, 93, "0000000008589934592-0000000000", None),
    (META_V3, 12, "0000000064424513536-0000000000", None),
    (V28, 72_300, None, None),
])
def test_each_file_gives_the_events_rpc_gives(name: str, count: int, first: str | None, last: str | None) -> None:
    events = _events(str(DATALAKE / name))
    assert len(events) == count
    assert first is None or events[0].id == first
    assert last is None or events[-1].id == last
    ids = [event.id for event in events]
    assert all(a < b for a, b in zip(ids, ids[1:], strict=False))  # strictly increasing: chain order, no repeats


def test_the_first_events_are_where_rpc_puts_them() -> None:
    v23 = _events(str(DATALAKE / V23))[0]
    assert (v23.ledger, v23.transaction_index, v23.operation_index) == (85, 1, 0)
    v3 = _events(str(DATALAKE / META_V3))[0]
    assert (v3.ledger, v3.operation_index) == (15, 0)


def test_ledgers_without_contract_events_are_read_without_error() -> None:
    bucket = list(read_ledgers(str(TESTBUCKET)))
    assert [(ledger.sequence, ledger.events) for ledger in bucket] == [(997, ()), (998, ()), (999, ())]
    mainnet = list(read_ledgers(str(DATALAKE / MAINNET_BATCH)))
    assert [(ledger.sequence, ledger.events) for ledger in mainnet] == [(53312000, ())]


def test_start_and_end_bound_the_ledgers() -> None:
    everything = list(read_ledgers(str(DATALAKE / FEES)))
    some = list(read_ledgers(str(DATALAKE / FEES), start=5, end=9))
    assert [ledger.sequence for ledger in some] == [5, 6, 7, 8, 9]
    assert some == [ledger for ledger in everything if 5 <= ledger.sequence <= 9]
    assert [ledger.sequence for ledger in read_ledgers(str(TESTBUCKET), start=998)] == [998, 999]
    with pytest.raises(LakeSourceError, match="after the end ledger"):
        list(read_ledgers(str(TESTBUCKET), start=999, end=998))
    with pytest.raises(LakeSourceError, match="ends at ledger 999"):
        list(read_ledgers(str(TESTBUCKET), start=1000))


def test_a_file_lacking_a_ledger_of_the_range_asked_is_refused_not_skipped() -> None:
    """A file or an object may hold any ledgers: one asked for that it lacks stops the read, where a
    backfill or the worker would otherwise move its cursor past ledgers it never read."""
    source = str(DATALAKE / FEES)  # ledgers 2-45
    for start, end, missing in ((1, None, "1 \\(the next it holds is 2\\)"), (46, None, "46 or later"),
                                (40, 50, "46"), (None, 50, "46")):
        with pytest.raises(LakeSourceError, match=f"has no ledger {missing}: give the lake's root"):
            list(read_ledgers(source, start=start, end=end))
    assert [ledger.sequence for ledger in read_ledgers(source, start=40)] == [40, 41, 42, 43, 44, 45]


def test_contract_filters_keep_those_contracts_events() -> None:
    events = _events(str(DATALAKE / FEES))
    contracts = sorted({event.contract_id for event in events})
    assert len(contracts) >= 2
    for contract in contracts:
        assert _events(str(DATALAKE / FEES), contracts=[contract]) == [e for e in events if e.contract_id == contract]
    assert _events(str(DATALAKE / FEES), contracts=contracts) == events
    with pytest.raises(LakeSourceError, match="not a contract address"):
        _events(str(DATALAKE / FEES), contracts=["GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7"])


def test_rpc_json_has_getevents_keys_in_its_order() -> None:
    event = _events(str(DATALAKE / FEES))[0]
    assert list(event.rpc_json()) == ["type", "ledger", "ledgerClosedAt", "contractId", "id", "operationIndex",
                                      "transactionIndex", "txHash", "inSuccessfulContractCall", "topic", "value"]
    assert "topic" not in event._replace(topic=()).rpc_json()  # RPC omits an empty topic list


def test_a_lake_event_becomes_the_raw_event_the_rpc_client_makes() -> None:
    for event in _events(str(DATALAKE / FEES)):
        assert event.raw_event() == raw_event(orjson.dumps(event.rpc_json()))


def test_failed_transactions_keep_their_fee_events_marked_unsuccessful() -> None:
    events = _events(str(DATALAKE / FEES))
    failed = [e for e in events if not e.in_successful_contract_call]
    assert failed and all(e.transaction_index in (0, 1048575) for e in failed)
    assert {e.topic[0] for e in failed} == {"AAAADwAAAANmZWUA"}  # Symbol("fee")


def test_a_lake_names_its_network_and_its_newest_ledger() -> None:
    check_network(str(TESTBUCKET), "Test SDF Network ; September 2015")
    with pytest.raises(LakeNetworkMismatch, match="holds the ledgers of the network 'Test SDF Network"):
        check_network(str(TESTBUCKET), "Public Global Stellar Network ; September 2015")
    with pytest.raises(LakeNetworkMismatch):
        next(read_ledgers(str(TESTBUCKET), network="Standalone Network ; February 2017"))
    check_network(str(DATALAKE / V28), "Standalone Network ; February 2017")  # a file names no network
    assert newest_ledger(str(TESTBUCKET)) == 999
    assert newest_ledger(str(DATALAKE / V28)) is None
