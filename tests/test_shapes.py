"""The fast path (an event decoded by the layout of one before it, indexer.shapes) gives what the general
path gives, for every event: the test vectors of every kind, a local network's traffic in both contract
builds, and each of them corrupted byte by byte."""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from devnet import Traffic, running_devnet
from indexer import shapes
from indexer.decode import Decoded, _topic, decode
from indexer.rpc import RawEvent

CLOSED_AT = datetime(2026, 7, 21, 18, 1, 10, tzinfo=UTC)


def _raw(topic: tuple[str, ...], value: str) -> RawEvent:
    return RawEvent(id="0000000004294971392-0000000000", ledger=1, ledger_closed_at=CLOSED_AT, contract_id="C",
                    tx_hash="ab", topic=topic, value=value)


def _general(raw: RawEvent) -> Decoded:
    """`raw` decoded with no layout known: by the general path."""
    known = dict(shapes._shapes)
    shapes._shapes.clear()
    try:
        return decode(raw)
    finally:
        shapes._shapes.clear()
        shapes._shapes.update(known)


def _corrupted(value: str, rng: random.Random) -> Iterator[str]:
    """The value with one byte changed: at each of a few places, to a few values (0, 1, 2, 255, random)."""
    data = base64.b64decode(value)
    for at in rng.sample(range(len(data)), min(len(data), 24)):
        for byte in {0, 1, 2, 255, rng.randrange(256)} - {data[at]}:
            yield base64.b64encode(data[:at] + bytes([byte]) + data[at + 1 :]).decode()


def _traffic(build: str) -> list[RawEvent]:
    with running_devnet(seed=5, build=build) as devnet:
        devnet.chain.generate_history(200, traffic=Traffic(seed=5), tx_per_ledger=8)
        return [_raw(event.topic, event.value) for _, events in devnet.chain.history() for event in events
                if event.contract_id == devnet.chain.contract_id]


@pytest.fixture(scope="module", params=["8723543", "c9f5d2e"])
def traffic(request: pytest.FixtureRequest) -> list[RawEvent]:
    return _traffic(request.param)


def test_every_vector_and_every_corruption_of_it_decodes_as_by_the_general_path(
    vectors: list[dict[str, Any]],
) -> None:
    rng = random.Random(1)
    for vector in vectors:
        raw = _raw(tuple(vector["topic"]), vector["value"])
        assert decode(raw) == _general(raw), vector["name"]
        assert decode(raw) == _general(raw), vector["name"]  # the second time by its layout, where it has one
        for value in _corrupted(vector["value"], rng):
            corrupted = _raw(raw.topic, value)
            assert decode(corrupted) == _general(corrupted), (vector["name"], value)


def test_a_local_networks_traffic_decodes_as_by_the_general_path(traffic: list[RawEvent]) -> None:
    rng = random.Random(2)
    for raw in traffic:
        assert decode(raw) == _general(raw)
    assert _by_layout(traffic) > 0.95 * len(traffic)
    for raw in rng.sample(traffic, 40):
        for value in _corrupted(raw.value, rng):
            corrupted = _raw(raw.topic, value)
            assert decode(corrupted) == _general(corrupted), value


def _by_layout(events: list[RawEvent]) -> int:
    """How many of these events the fast path decodes."""
    count = 0
    for raw in events:
        decoded = decode(raw)
        assert decoded.event is not None and decoded.topic_json is not None
        topic = [_topic(t)[0] for t in raw.topic]
        count += shapes.read(type(decoded.event.event), raw.value, topic) is not None
    return count
