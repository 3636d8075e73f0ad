"""The fast path (a storage entry parsed by the layout of one before it, indexer.layouts) gives what the
general parser gives, for every entry: a local network's streams in both contract builds, each of them
corrupted byte by byte, and random contract data."""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stellar_sdk import Address, scval, xdr

from devnet import Traffic, running_devnet
from devnet.entries import stream_ledger_key
from indexer import layouts
from indexer.scval import Sc, ScValError, parse_contract_data
from tests.test_scval import CONTRACT_OWNER as OWNERS_CONTRACT
from tests.test_scval import OWNERS, _contract_data, addresses, extend, ints, raw_symbol, scvals, symbol_text

# Values of the types a layout reads, in any arrangement: every entry made of them has a layout.
LAID_OUT = st.recursive(st.one_of(
    st.booleans().map(scval.to_bool), st.just(scval.to_void()), ints(32, False).map(scval.to_uint32),
    ints(32, True).map(scval.to_int32), ints(64, False).map(scval.to_uint64), ints(64, True).map(scval.to_int64),
    ints(64, False).map(scval.to_timepoint), ints(64, False).map(scval.to_duration),
    ints(128, False).map(scval.to_uint128), ints(128, True).map(scval.to_int128), symbol_text.map(scval.to_symbol),
    st.binary(max_size=32).map(raw_symbol), addresses,
), extend, max_leaves=12)


def _general(entry: str) -> Sc | str:
    """The entry's value by the general parser, or why it is refused."""
    try:
        return parse_contract_data(entry)[1]
    except ScValError as exc:
        return f"refused: {exc}"


def _fast(entry: str) -> Sc | str:
    try:
        return layouts.contract_data_value(entry)
    except ScValError as exc:
        return f"refused: {exc}"


def _corrupted(entry: str, rng: random.Random) -> Iterator[str]:
    """The entry with one byte changed: at each of a few places, to a few values (0, 1, 2, 255, random)."""
    data = base64.b64decode(entry)
    for at in rng.sample(range(len(data)), min(len(data), 40)):
        for byte in {0, 1, 2, 255, rng.randrange(256)} - {data[at]}:
            yield base64.b64encode(data[:at] + bytes([byte]) + data[at + 1 :]).decode()


@pytest.fixture(scope="module", params=["8723543", "c9f5d2e"])
def stream_entries(request: pytest.FixtureRequest) -> list[str]:
    """Every stream entry of a local network's traffic, in one build."""
    with running_devnet(seed=7, build=request.param) as devnet:
        chain = devnet.chain
        chain.generate_history(300, traffic=Traffic(seed=7), tx_per_ledger=8)
        found = [chain.ledger_entry(stream_ledger_key(chain.contract_id, stream_id)) for stream_id in range(1, 400)]
        return [entry[0].to_xdr() for entry in found if entry is not None]


def test_a_local_networks_streams_parse_as_by_the_general_parser(stream_entries: list[str]) -> None:
    layouts._layouts.clear()
    assert len(stream_entries) > 50
    for entry in stream_entries:
        assert _fast(entry) == _general(entry)
    kept = sum(len(known) for known in layouts._layouts.values())
    assert 0 < kept < len(stream_entries) / 3  # the entries share a few layouts
    by_layout = [entry for entry in stream_entries if _by_layout(entry)]
    assert len(by_layout) == len(stream_entries)
    for entry in stream_entries:
        assert _fast(entry) == _general(entry)  # now all by their layout


def test_every_corruption_of_a_stream_entry_parses_as_by_the_general_parser(stream_entries: list[str]) -> None:
    rng = random.Random(3)
    for entry in stream_entries:
        _fast(entry)  # its layout is known
    for entry in rng.sample(stream_entries, 30):
        for corrupted in _corrupted(entry, rng):
            assert _fast(corrupted) == _general(corrupted), corrupted


def test_a_bool_out_of_range_or_a_bad_address_goes_to_the_general_parser_which_refuses_it(
    stream_entries: list[str],
) -> None:
    entry = base64.b64decode(stream_entries[0])
    _fast(stream_entries[0])
    is_active = entry.index(b"is_active") + 12 + 4  # the Symbol's 9 bytes padded to 12, then the bool's tag
    assert entry[is_active : is_active + 4] in (b"\0\0\0\0", b"\0\0\0\1")
    bad_bool = base64.b64encode(entry[:is_active] + b"\0\0\0\2" + entry[is_active + 4 :]).decode()
    assert _fast(bad_bool) == _general(bad_bool) == "refused: not a base64 ScVal: bool 2"
    sender = entry.index(b"sender") + 8 + 4 + 4  # the Symbol padded to 8, the address's tag and kind
    bad_key_type = base64.b64encode(entry[:sender] + b"\0\0\0\1" + entry[sender + 4 :]).decode()
    assert _fast(bad_key_type).startswith("refused") and _fast(bad_key_type) == _general(bad_key_type)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OWNERS, scvals, scvals, st.integers(0, 2**64 - 1))
def test_random_contract_data_parses_as_by_the_general_parser_the_second_time_too(
    owner: xdr.SCAddress, key: xdr.SCVal, value: xdr.SCVal, other: int,
) -> None:
    entry = _contract_data(owner, key, value)
    assert _fast(entry) == _general(entry)
    assert _fast(entry) == _general(entry)
    # the same layout with other numbers in it, where there are numbers
    data = bytearray(base64.b64decode(entry))
    data[-8:] = other.to_bytes(8, "big")
    changed = base64.b64encode(bytes(data)).decode()
    assert _fast(changed) == _general(changed)


ACCOUNT = Address.from_raw_account(bytes(32)).to_xdr_sc_val()


@pytest.mark.parametrize("key", [scval.to_bool(False), ACCOUNT, scval.to_vec([scval.to_symbol("Balance"), ACCOUNT])],
                         ids=["bool", "address", "enum variant with an address"])
def test_a_bad_bool_or_address_in_the_key_is_refused_as_by_the_general_parser(key: xdr.SCVal) -> None:
    good = base64.b64decode(_contract_data(OWNERS_CONTRACT, key, scval.to_uint32(5)))
    layouts._layouts.clear()
    assert _fast(base64.b64encode(good).decode()) == ("u32", 5)  # its layout is learned
    # the bool's word, or the account's key type word (0: ed25519), made 2
    key_at = 8 + 36  # after the entry type, its extension and the contract address
    at = good.index(b"\0\0\0\x12", key_at) + 8 if key != scval.to_bool(False) else key_at + 4
    bad = base64.b64encode(good[:at] + b"\0\0\0\x02" + good[at + 4 :]).decode()
    assert _general(bad).startswith("refused")
    assert _fast(bad) == _general(bad)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OWNERS, LAID_OUT, LAID_OUT, st.randoms(use_true_random=False))
def test_every_corruption_of_random_contract_data_parses_as_by_the_general_parser(
    owner: xdr.SCAddress, key: xdr.SCVal, value: xdr.SCVal, rng: random.Random,
) -> None:
    """In the key as in the value: a bool of 2 or a bad address where the layout has one is refused."""
    entry = _contract_data(owner, key, value)
    layouts._layouts.clear()
    assert _fast(entry) == _general(entry)
    assert _by_layout(entry)
    for corrupted in _corrupted(entry, rng):
        assert _fast(corrupted) == _general(corrupted), corrupted


def _by_layout(entry: str) -> bool:
    data = base64.b64decode(entry)
    return any(layout.recurring(layout.unpack(data)) == layout.expected
               for layout in layouts._layouts.get(len(data), ()))
