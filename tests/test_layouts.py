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
from stellar_sdk import xdr

from devnet import Traffic, running_devnet
from devnet.entries import stream_ledger_key
from indexer import layouts
from indexer.scval import Sc, ScValError, parse_contract_data
from tests.test_scval import OWNERS, _contract_data, scvals


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


def _by_layout(entry: str) -> bool:
    data = base64.b64decode(entry)
    return any(layout.recurring(layout.unpack(data)) == layout.expected
               for layout in layouts._layouts.get(len(data), ()))
