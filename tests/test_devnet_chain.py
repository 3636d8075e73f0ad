import pytest

from devnet.chain import Chain
from devnet.terms import WASM_HASHES, InvalidInvocation
from devnet.traffic import Traffic
from indexer.ids import event_id

SENDER = "GAJKUTWHRMNW375TPXCKYDF4MLUBJIRD7YVKGCNN3J6S44GZE3N2LUBQ"
RECIPIENT = "GDD24I62LHMI6FRWMZ3OD36DDAM4MDQSFWS7G37HZDHHXTMBOGFV7GCO"
TOKEN = "CC5VQ6PDN44JTGIJ7XZAN2WPQHHCRQLOKWI2RRAXXRS3WR2HI25AHEX2"
TREASURY = "GDPMDGEVMG3NDHKMATXNBCVOOLZQEIIM2J6FSWTUXLGXWFNU5UWZDWK6"
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
    # the token's transfer into the contract is the operation's first event
    assert [eid for eid, _ in receipts[2].transfers] == [event_id(2, 3, 0, 0)]
    assert [eid for eid, _ in receipts[2].events] == [event_id(2, 3, 0, 1)]
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


def test_a_ledger_hash_covers_its_close_time_and_its_transactions() -> None:
    def ledger_two(close_time: int, *calls: dict[str, object]) -> str:
        chain = Chain(genesis_time=1000)
        for call in calls:
            chain.submit("create_stream", call)
        return chain.close_ledger(close_time).hash

    same = ledger_two(1005, CREATE)
    assert same == ledger_two(1005, CREATE), "the same ledger of the same network"
    assert len({same, ledger_two(1006, CREATE), ledger_two(1005), ledger_two(1005, {**CREATE, "amount": 999})}) == 4


def test_retention_drops_old_ledgers_and_their_events() -> None:
    chain = Chain(retention=3, genesis_time=1)
    for _ in range(5):
        chain.submit("create_stream", CREATE)
        chain.close_ledger()
    oldest, latest = chain.ledger_range()
    assert (oldest.sequence, latest.sequence) == (4, 6)
    events = chain.scan(after="", end_ledger=latest.sequence + 1, limit=100)
    assert [(e.ledger, e.contract_id) for e in events] == [
        (ledger, contract) for ledger in (4, 5, 6) for contract in (TOKEN, chain.contract_id)]
    assert chain.event_count == 3


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


def test_flowfi_events_take_their_place_after_the_token_transfers_of_the_same_operation() -> None:
    chain = Chain(genesis_time=1000)
    chain.execute("initialize", {"admin": SENDER, "treasury": TREASURY, "fee_rate_bps": 100})
    receipt = chain.execute("create_stream", {**CREATE, "amount": 10_000})
    ledger = receipt.ledger
    assert [eid for eid, _ in receipt.transfers] == [event_id(ledger, 1, 0, 0), event_id(ledger, 1, 0, 1)]
    assert [(eid, event.topic) for eid, event in receipt.events] == [
        (event_id(ledger, 1, 0, 2), "fee_collected"), (event_id(ledger, 1, 0, 3), "stream_created")]
    stored = chain.scan(after="", end_ledger=ledger + 1, limit=10)
    assert [(e.id, e.contract_id) for e in stored][-4:] == [
        (event_id(ledger, 1, 0, 0), TOKEN), (event_id(ledger, 1, 0, 1), TOKEN),
        (event_id(ledger, 1, 0, 2), chain.contract_id), (event_id(ledger, 1, 0, 3), chain.contract_id)]
    assert receipt.to_json()["transfers"] == [
        {"id": event_id(ledger, 1, 0, 0), "token": TOKEN, "from": SENDER, "to": chain.contract_id, "amount": "10000"},
        {"id": event_id(ledger, 1, 0, 1), "token": TOKEN, "from": chain.contract_id, "to": TREASURY, "amount": "100"},
    ]


def test_a_running_8723543_contract_is_upgraded_in_place_with_its_storage_as_it_was() -> None:
    chain = Chain(genesis_time=1000, build="8723543")
    refused = chain.upgrade("c9f5d2e")
    chain.close_ledger()
    error = refused.result(timeout=0).error
    assert error is not None and error.name == "NotInitialized"  # as c9f5d2e's upgrade would
    assert chain.contract.build == "8723543"
    chain.execute("initialize", {"admin": SENDER, "treasury": TREASURY, "fee_rate_bps": 0})
    chain.execute("create_stream", CREATE)
    future = chain.upgrade("c9f5d2e")
    chain.close_ledger()
    receipt = future.result(timeout=0)
    assert receipt.error is None
    ((_, upgraded),) = receipt.events
    assert (upgraded.topic, upgraded.old_wasm_hash, upgraded.new_wasm_hash) == (  # type: ignore[attr-defined]
        "contract_upgraded", "00" * 32, WASM_HASHES["c9f5d2e"].hex())
    contract = chain.contract
    assert (contract.build, contract.wasm_hash) == ("c9f5d2e", WASM_HASHES["c9f5d2e"])
    assert contract.streams[1].legacy and contract.config is not None and contract.config.legacy
    assert contract.contract_version is None and contract.recorded_wasm_hash is None
    assert chain.execute("pause_stream", {"sender": SENDER, "stream_id": 1}).error is None
    assert not contract.streams[1].legacy, "c9f5d2e saves the 17-field Stream"
    migrated = chain.execute("migrate", {"target_version": 2})
    assert [event.topic for _, event in migrated.events] == ["state_migrated"]
    assert not contract.config.legacy and contract.contract_version == 2
    again = chain.upgrade("c9f5d2e")
    chain.close_ledger()
    assert isinstance(again.result(timeout=0).error, InvalidInvocation)
    with pytest.raises(ValueError, match="unknown build"):
        chain.upgrade("v3")


def test_an_account_that_allows_the_contract_nothing_cannot_open_an_allowance_stream() -> None:
    chain = Chain(genesis_time=1000)
    allowance = {"sender": SENDER, "recipient": RECIPIENT, "token_address": TOKEN, "duration": 60}
    assert chain.execute("create_allowance_stream", allowance).error is None
    chain.approve(TOKEN, SENDER, 0)
    error = chain.execute("create_allowance_stream", allowance).error
    assert error is not None and (error.name, error.code) == ("AllowanceLocked", 33)
    chain.approve(TOKEN, SENDER, 1)
    assert chain.execute("create_allowance_stream", allowance).result == 2, "the refused call took no id"
