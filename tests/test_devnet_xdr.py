import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from stellar_sdk import scval, xdr

from devnet.terms import Transfer
from devnet.tokens import ISSUER, Token
from devnet.xdr import encode_event, encode_transfer
from indexer.events import BY_TOPIC, EVENT_KINDS, FlowFiEvent, ScType, StreamCreated, field_types
from indexer.networks import LOCAL_CONTRACT_ID

VECTORS = json.loads((Path(__file__).parent / "data" / "flowfi_events.json").read_text())["vectors"]


def event_from_expected(name: str, expected: dict[str, Any]) -> FlowFiEvent:
    kind = BY_TOPIC[name]
    types = field_types(kind)
    numbers = (ScType.U32, ScType.U64, ScType.I128)
    return kind(**{k: int(v) if types[k] in numbers else v for k, v in expected.items()})


@pytest.mark.parametrize("vector", VECTORS, ids=[f"{v['name']}-{i}" for i, v in enumerate(VECTORS)])
def test_encoding_reproduces_the_published_vectors(vector: dict[str, Any]) -> None:
    topic, value = encode_event(event_from_expected(vector["name"], vector["expected"]))
    assert topic == vector["topic"]
    assert value == vector["value"]


def test_vectors_cover_every_event_kind() -> None:
    assert {v["name"] for v in VECTORS} == {kind.topic for kind in EVENT_KINDS}


def sdk_value(event: FlowFiEvent) -> str:
    """The same value built the slow way, through stellar-sdk's object tree."""
    convert: dict[ScType, Callable[[Any], xdr.SCVal]] = {
        ScType.U32: scval.to_uint32,
        ScType.U64: scval.to_uint64,
        ScType.I128: scval.to_int128,
        ScType.ADDRESS: scval.to_address,
    }
    entries = [
        xdr.SCMapEntry(scval.to_symbol(name), convert[sc_type](getattr(event, name)))
        for name, sc_type in sorted(field_types(type(event)).items())
    ]
    return xdr.SCVal(xdr.SCValType.SCV_MAP, map=xdr.SCMap(entries)).to_xdr()  # type: ignore[no-any-return]


@pytest.mark.parametrize("amount", [0, 1, 2**64, -1, -(2**127), 2**127 - 1])
def test_i128_edges_match_stellar_sdk(amount: int) -> None:
    event = StreamCreated(
        stream_id=2**64 - 1,
        sender="GBDK4KAKYLSGPQSZB65NBASVBK7D6X7C6XCNA3EANO3KT7ZBDLGTP72S",
        recipient="CAWVV6VAHHIKEPMBBGYXKUMPZ2JZUVBPJMDF27EEM32P5ACRYUXTBFSK",
        rate_per_second=amount,
        token_address="CC5VQ6PDN44JTGIJ7XZAN2WPQHHCRQLOKWI2RRAXXRS3WR2HI25AHEX2",
        deposited_amount=amount,
        start_time=0,
    )
    topic, value = encode_event(event)
    assert value == sdk_value(event)
    assert scval.to_native(xdr.SCVal.from_xdr(topic[1])) == 2**64 - 1
    decoded: Any = scval.to_native(xdr.SCVal.from_xdr(value))
    assert decoded["deposited_amount"] == amount


@pytest.mark.parametrize(
    ("source", "destination", "shape"),
    [
        ("GBDK4KAKYLSGPQSZB65NBASVBK7D6X7C6XCNA3EANO3KT7ZBDLGTP72S", LOCAL_CONTRACT_ID, "transfer"),
        (ISSUER, LOCAL_CONTRACT_ID, "mint"),
        (LOCAL_CONTRACT_ID, ISSUER, "burn"),
    ],
)
def test_a_token_transfer_is_published_as_a_stellar_asset_contract_publishes_it(
    source: str, destination: str, shape: str
) -> None:
    token = Token("CC5VQ6PDN44JTGIJ7XZAN2WPQHHCRQLOKWI2RRAXXRS3WR2HI25AHEX2", "USDC")
    topic, value = encode_transfer(Transfer(token.contract_id, source, destination, 2**100 + 7), token)
    parties = {"transfer": [source, destination], "mint": [destination], "burn": [source]}[shape]
    assert topic == [scval.to_symbol(shape).to_xdr(), *(scval.to_address(p).to_xdr() for p in parties),
                     scval.to_string(f"USDC:{ISSUER}").to_xdr()]
    assert value == scval.to_int128(2**100 + 7).to_xdr()
