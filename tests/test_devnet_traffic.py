import dataclasses
from collections import Counter

import pytest
from stellar_sdk import scval, xdr

from devnet.calls import functions
from devnet.chain import Chain
from devnet.terms import BUILDS, NEWEST_BUILD, OLD_BUILD
from devnet.traffic import Traffic
from indexer.events import EVENT_KINDS, DisputeRequested, DisputeResolved, StateMigrated
from tests.devnet_model import ADMIN, RECIPIENT, SENDER, TOKEN, TREASURY, Recording

DISPUTES = {"request_dispute", "resolve_dispute"}  # never succeed on chain: no stream has an arbiter


def run(chain: Chain, traffic: Recording, ledgers: int, per_ledger: int = 10) -> None:
    chain.traffic, chain.traffic_per_ledger = traffic, per_ledger
    for _ in range(ledgers):
        chain.close_ledger(chain.latest.close_time + 5)


def published_kinds(chain: Chain) -> set[str]:
    """The kinds of event FlowFi published: each topic's name (the second Symbol of ("FlowFi", ...))."""
    kinds = set()
    for stored in chain.scan(after="", end_ledger=10**9, limit=10**9,
                             match=lambda e: e.contract_id == chain.contract_id):
        symbols = [scval.to_native(xdr.SCVal.from_xdr(segment)) for segment in stored.topic]
        kinds.add(symbols[1] if symbols[0] == "FlowFi" else symbols[0])
    return kinds


@pytest.mark.parametrize("build", BUILDS)
def test_traffic_calls_every_entry_point_of_the_build_and_none_fails(build: str) -> None:
    chain = Chain(genesis_time=1_700_000_000, build=build)
    traffic = Recording(Traffic(seed=7))
    run(chain, traffic, 300)
    assert chain.failed_transactions == 0
    called = Counter(function for function, _ in traffic.calls)
    assert set(called) == set(functions(build)) - DISPUTES
    # c9f5d2e initializes at data version 2: its migrate has nothing to do, and publishes nothing
    kinds = {kind.topic for kind in EVENT_KINDS} - {DisputeRequested.topic, DisputeResolved.topic, StateMigrated.topic}
    if build == OLD_BUILD:
        kinds = {kind.topic for kind in EVENT_KINDS[:11]}  # the schema lists 8723543's 11 kinds first
    assert published_kinds(chain) == kinds


def test_traffic_leaves_the_streams_and_the_protocol_of_others_alone() -> None:
    chain = Chain(genesis_time=1_700_000_000)
    chain.execute("initialize", {"admin": ADMIN, "treasury": TREASURY, "fee_rate_bps": 10})
    mine = {"sender": SENDER, "recipient": RECIPIENT, "token_address": TOKEN, "amount": 10**9, "duration": 10**6}
    assert chain.execute("create_stream", mine).result == 1
    before = dataclasses.asdict(chain.contract.streams[1]), chain.contract.lifetimes.get(("Stream", 1))
    config = dataclasses.asdict(chain.contract.config)  # type: ignore[arg-type]
    traffic = Recording(Traffic(seed=3))
    run(chain, traffic, 200)
    assert chain.failed_transactions == 0
    assert (dataclasses.asdict(chain.contract.streams[1]), chain.contract.lifetimes.get(("Stream", 1))) == before
    assert dataclasses.asdict(chain.contract.config) == config  # type: ignore[arg-type]
    assert not {"update_fee_config", "transfer_admin", "set_protocol_pause", "migrate", "upgrade"} & {
        function for function, _ in traffic.calls}
    named = {args.get("stream_id") for _, args in traffic.calls} | {
        i for _, args in traffic.calls for i in args.get("stream_ids", ())}
    assert 1 not in named and len(named) > 100


def test_traffic_carries_on_after_an_upgrade_in_place_and_heals_old_records_as_it_saves_them() -> None:
    chain = Chain(genesis_time=1_700_000_000, build=OLD_BUILD)
    traffic = Recording(Traffic(seed=5))
    run(chain, traffic, 100)
    legacy_before = sum(stream.legacy for stream in chain.contract.streams.values())
    assert legacy_before == len(chain.contract.streams) > 100
    future = chain.upgrade(NEWEST_BUILD)
    upgraded_at = len(traffic.calls)
    run(chain, traffic, 150)
    assert future.result(timeout=0).error is None
    assert chain.failed_transactions == 0
    assert chain.contract.build == NEWEST_BUILD
    assert 0 < sum(stream.legacy for stream in chain.contract.streams.values()) < legacy_before
    assert "migrate" in {function for function, _ in traffic.calls[upgraded_at:]}
    assert StateMigrated.topic in published_kinds(chain)
    assert chain.contract.contract_version is not None
