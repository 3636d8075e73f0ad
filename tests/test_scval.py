"""The fast ScVal parser returns exactly what the stellar-sdk reference returns, and rejects what it rejects.

Results are compared by repr, so that True and 1, or b"a" and "a", never pass for each other.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stellar_sdk import Address, scval, xdr

from indexer import scval as scval_module
from indexer.scval import ScValError, parse_scval, parse_scval_sdk, to_json

DATA = Path(__file__).parent / "data"
VECTORS = json.loads((DATA / "flowfi_events.json").read_text())["vectors"]


def outcome(parse: Any, b64: str) -> str:
    """What a parser makes of the text: the repr of its value, or "rejected"."""
    try:
        return repr(parse(b64))
    except ScValError:
        return "rejected"


def assert_same(b64: str) -> str:
    fast, sdk = outcome(parse_scval, b64), outcome(parse_scval_sdk, b64)
    assert fast == sdk, b64
    return fast


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def word(n: int) -> bytes:
    return struct.pack(">I", n)


def rpc_scvals() -> list[str]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "value" in node and "contractId" in node:
                found.extend([*node.get("topic", []), node["value"]])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(json.loads((DATA / "rpc_getEvents_examples.json").read_text()))
    return found


# -- test vectors and real RPC data -------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_flowfi_vectors_parse_identically(vector: dict[str, Any]) -> None:
    for text in [*vector["topic"], vector["value"]]:
        assert assert_same(text) != "rejected"


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_flowfi_vector_values_give_the_expected_json(vector: dict[str, Any]) -> None:
    assert to_json(parse_scval(vector["value"])) == vector["expected"]
    symbols = [to_json(parse_scval(topic)) for topic in vector["topic"]]
    assert vector["name"] in symbols[:2]


def test_real_rpc_events_parse_identically() -> None:
    texts = rpc_scvals()
    assert len(texts) > 10
    for text in texts:
        assert assert_same(text) != "rejected"


# -- values the fast parser expands itself, and the ones it leaves to the reference ------------------


def test_every_address_kind_renders_as_stellar_sdk_renders_it() -> None:
    key = bytes(range(32))
    addresses = [
        Address.from_raw_account(key),
        Address.from_raw_contract(key),
        Address.from_raw_muxed_account(key + bytes(range(8))),
        Address.from_raw_claimable_balance(b"\0" + key),
        Address.from_raw_liquidity_pool(key),
    ]
    for address in addresses:
        text = address.to_xdr_sc_val().to_xdr()
        assert assert_same(text) == repr(("address", address.address))
        assert parse_scval(text) == ("address", address.address)  # a second time, from the cache


def test_rare_types_are_tagged_by_name() -> None:
    instance = xdr.SCVal(
        xdr.SCValType.SCV_CONTRACT_INSTANCE,
        instance=xdr.SCContractInstance(
            xdr.ContractExecutable(xdr.ContractExecutableType.CONTRACT_EXECUTABLE_STELLAR_ASSET),
            xdr.SCMap([xdr.SCMapEntry(scval.to_symbol("k"), scval.to_uint32(1))]),
        ),
    )
    cases = {
        "contract_instance": instance,
        "error": xdr.SCVal(
            xdr.SCValType.SCV_ERROR,
            error=xdr.SCError(xdr.SCErrorType.SCE_BUDGET, code=xdr.SCErrorCode.SCEC_EXCEEDED_LIMIT),
        ),
        "ledger_key_contract_instance": xdr.SCVal(xdr.SCValType.SCV_LEDGER_KEY_CONTRACT_INSTANCE),
        "ledger_key_nonce": xdr.SCVal(
            xdr.SCValType.SCV_LEDGER_KEY_NONCE, nonce_key=xdr.SCNonceKey(xdr.Int64(-5))
        ),
        "executable_tag": scval.to_executable_tag("wasm"),
    }
    for tag, value in cases.items():
        assert assert_same(value.to_xdr()) == repr((tag, None))
        assert to_json(parse_scval(value.to_xdr())) == {"type": tag}
    inside = scval.to_vec([scval.to_uint32(7), instance])
    assert parse_scval(inside.to_xdr()) == ("vec", [("u32", 7), ("contract_instance", None)])


def nested_vec(levels: int) -> str:
    return b64(b"".join(word(16) + word(1) + word(1) for _ in range(levels)) + word(1))


def test_deep_values_parse_identically_and_too_deep_ones_are_rejected() -> None:
    assert assert_same(nested_vec(10)) != "rejected"
    assert assert_same(nested_vec(scval_module._FAST_DEPTH + 20)) != "rejected"  # the reference path
    assert assert_same(nested_vec(300)) == "rejected"  # beyond stellar-sdk's depth limit


def test_absent_vec_and_map_are_empty() -> None:
    assert assert_same(b64(word(16) + word(0))) == repr(("vec", []))
    assert assert_same(b64(word(17) + word(0))) == repr(("map", []))


def test_address_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scval_module, "_ADDRESS_CACHE_MAX", 4)
    monkeypatch.setattr(scval_module, "_address_cache", {})
    for i in range(10):
        address = Address.from_raw_contract(bytes([i]) * 32)
        assert parse_scval(address.to_xdr_sc_val().to_xdr()) == ("address", address.address)
        assert len(scval_module._address_cache) <= 4


# -- what is rejected --------------------------------------------------------------------------------

SYMBOL_AB = word(15) + word(2) + b"ab\0\0"
ACCOUNT = word(18) + word(0) + word(0) + bytes(32)

REJECTED = {
    "empty": b"",
    "truncated type": word(3)[:2],
    "truncated u32": word(3) + b"\0\0",
    "truncated i128": word(10) + bytes(15),
    "trailing bytes": word(1) + word(0),
    "unknown type": word(23),
    "negative type": word(0xFFFFFFFF) + word(0),
    "bool 2": word(0) + word(2),
    "vec flag 2": word(16) + word(2) + word(0),
    "map flag 2": word(17) + word(2) + word(0),
    "non-zero padding": word(15) + word(2) + b"ab\0\1",
    "padding missing": word(15) + word(2) + b"ab",
    "symbol of 33 bytes": word(15) + word(33) + b"a" * 33 + b"\0\0\0",
    "string longer than the input": word(14) + word(0xFFFFFFFF) + b"abcd",
    "vec longer than the input": word(16) + word(1) + word(1000) + word(1),
    "map key without value": word(17) + word(1) + word(1) + word(1),
    "map entry cut in the key": word(17) + word(1) + word(1) + SYMBOL_AB[:6],
    "address type 5": word(18) + word(5) + bytes(32),
    "public key type 1": word(18) + word(0) + word(1) + bytes(32),
    "claimable balance id type 1": word(18) + word(3) + word(1) + bytes(32),
    "truncated address": ACCOUNT[:-1],
    "error type 10": word(2) + word(10) + word(0),
    "error code 10": word(2) + word(1) + word(10),
}


@pytest.mark.parametrize("raw", REJECTED.values(), ids=REJECTED.keys())
def test_invalid_xdr_is_rejected_by_both(raw: bytes) -> None:
    assert assert_same(b64(raw)) == "rejected"


BAD_TEXT = {
    "padding removed": "AAAAAQ",
    "non-alphabet": "AAAA*AAA",
    "url-safe alphabet": "AAAAEgAAAAAAAAAA_-__",
    "whitespace": "AAAA AQ==",
    "data after padding": "AAAAAQ==AAAA",
    "non-ASCII": "AAAAAQé=",
}


@pytest.mark.parametrize("text", BAD_TEXT.values(), ids=BAD_TEXT.keys())
def test_invalid_base64_is_rejected_by_both(text: str) -> None:
    assert assert_same(text) == "rejected"


def test_cached_symbols_and_addresses_still_reject_what_follows_them() -> None:
    assert assert_same(b64(SYMBOL_AB)) == repr(("symbol", "ab"))
    assert assert_same(b64(SYMBOL_AB + word(1))) == "rejected"
    assert assert_same(b64(ACCOUNT)) != "rejected"
    assert assert_same(b64(ACCOUNT + b"\0")) == "rejected"
    map_of_symbols = word(17) + word(1) + word(1) + SYMBOL_AB + SYMBOL_AB
    assert assert_same(b64(map_of_symbols)) != "rejected"
    assert assert_same(b64(map_of_symbols[:-1])) == "rejected"


# -- random values and random corruptions of them ----------------------------------------------------

U32, U64, U128, U256 = 2**32, 2**64, 2**128, 2**256


def ints(bits: int, signed: bool) -> st.SearchStrategy[int]:
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    bounds = st.sampled_from([low, high, 0, 1, -1 if signed else high - 1, low + 1])
    return bounds | st.integers(low, high)


def raw_symbol(value: bytes) -> xdr.SCVal:
    return xdr.SCVal(xdr.SCValType.SCV_SYMBOL, sym=xdr.SCSymbol(value))


def raw_string(value: bytes) -> xdr.SCVal:
    return xdr.SCVal(xdr.SCValType.SCV_STRING, str=xdr.SCString(value))


keys32 = st.binary(min_size=32, max_size=32)
addresses = st.one_of(
    keys32.map(Address.from_raw_account),
    keys32.map(Address.from_raw_contract),
    st.binary(min_size=40, max_size=40).map(Address.from_raw_muxed_account),
    keys32.map(lambda k: Address.from_raw_claimable_balance(b"\0" + k)),
    keys32.map(Address.from_raw_liquidity_pool),
).map(lambda a: a.to_xdr_sc_val())
symbol_text = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789ABCZ", max_size=32)

leaves = st.one_of(
    st.booleans().map(scval.to_bool),
    st.just(scval.to_void()),
    ints(32, False).map(scval.to_uint32),
    ints(32, True).map(scval.to_int32),
    ints(64, False).map(scval.to_uint64),
    ints(64, True).map(scval.to_int64),
    ints(64, False).map(scval.to_timepoint),
    ints(64, False).map(scval.to_duration),
    ints(128, False).map(scval.to_uint128),
    ints(128, True).map(scval.to_int128),
    ints(256, False).map(scval.to_uint256),
    ints(256, True).map(scval.to_int256),
    st.binary(max_size=40).map(scval.to_bytes),
    st.text(max_size=20).map(scval.to_string),
    st.binary(max_size=12).map(raw_string),  # not necessarily UTF-8
    symbol_text.map(scval.to_symbol),
    st.binary(max_size=32).map(raw_symbol),  # not necessarily UTF-8
    addresses,
    st.just(xdr.SCVal(xdr.SCValType.SCV_LEDGER_KEY_CONTRACT_INSTANCE)),
    ints(64, True).map(
        lambda n: xdr.SCVal(xdr.SCValType.SCV_LEDGER_KEY_NONCE, nonce_key=xdr.SCNonceKey(xdr.Int64(n)))
    ),
    st.text(max_size=8).map(scval.to_executable_tag),
    st.sampled_from(list(xdr.SCErrorCode)).map(
        lambda c: xdr.SCVal(xdr.SCValType.SCV_ERROR, error=xdr.SCError(xdr.SCErrorType.SCE_VALUE, code=c))
    ),
    ints(32, False).map(
        lambda n: xdr.SCVal(
            xdr.SCValType.SCV_ERROR,
            error=xdr.SCError(xdr.SCErrorType.SCE_CONTRACT, contract_code=xdr.Uint32(n)),
        )
    ),
)


def extend(children: st.SearchStrategy[xdr.SCVal]) -> st.SearchStrategy[xdr.SCVal]:
    entries = st.lists(st.tuples(symbol_text.map(scval.to_symbol) | children, children), max_size=6)
    return st.one_of(
        st.lists(children, max_size=6).map(scval.to_vec),
        entries.map(
            lambda es: xdr.SCVal(xdr.SCValType.SCV_MAP, map=xdr.SCMap([xdr.SCMapEntry(k, v) for k, v in es]))
        ),
        st.just(xdr.SCVal(xdr.SCValType.SCV_VEC, vec=None)),
        st.just(xdr.SCVal(xdr.SCValType.SCV_MAP, map=None)),
    )


scvals = st.recursive(leaves, extend, max_leaves=30)
RANDOM = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.slow
@RANDOM
@given(scvals)
def test_random_values_parse_identically(value: xdr.SCVal) -> None:
    assert assert_same(value.to_xdr()) != "rejected"


@pytest.mark.slow
@RANDOM
@given(st.lists(st.tuples(symbol_text, leaves), min_size=1, max_size=8))
def test_random_event_shaped_maps_parse_identically(fields: list[tuple[str, xdr.SCVal]]) -> None:
    value = xdr.SCVal(
        xdr.SCValType.SCV_MAP, map=xdr.SCMap([xdr.SCMapEntry(scval.to_symbol(k), v) for k, v in fields])
    )
    assert assert_same(value.to_xdr()) != "rejected"


# Byte values that turn a word into another valid or nearly valid discriminant, length or flag.
interesting_bytes = st.sampled_from([0, 1, 2, 3, 4, 5, 9, 10, 15, 16, 17, 18, 19, 22, 23, 32, 33, 0x80, 0xFF])
edits = st.tuples(
    st.sampled_from(["set", "truncate", "delete", "insert"]),
    st.integers(0, 10_000),
    interesting_bytes | st.integers(0, 255),
)


def corrupt(raw: bytes, edit: tuple[str, int, int]) -> bytes:
    kind, at, byte = edit
    at %= len(raw) + 1
    if kind == "set":
        at = min(at, len(raw) - 1)
        return raw[:at] + bytes([byte]) + raw[at + 1 :]
    if kind == "truncate":
        return raw[:at]
    if kind == "delete":
        return raw[:at] + raw[at + 1 :]
    return raw[:at] + bytes([byte]) + raw[at:]


@pytest.mark.slow
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scvals, st.lists(edits, min_size=1, max_size=3))
def test_corrupted_values_are_parsed_identically_or_rejected_by_both(
    value: xdr.SCVal, corruptions: list[tuple[str, int, int]]
) -> None:
    raw = value.to_xdr_bytes()
    for edit in corruptions:
        raw = corrupt(raw, edit) if raw else raw
    assert_same(b64(raw))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VECTORS), st.integers(0, 10_000), st.sampled_from("A/+=*é\n"), st.booleans())
def test_corrupted_base64_text_is_parsed_identically_or_rejected_by_both(
    vector: dict[str, Any], at: int, char: str, replace: bool
) -> None:
    text = vector["value"]
    at %= len(text)
    assert_same(text[:at] + char + text[at + int(replace) :])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VECTORS), st.lists(edits, min_size=1, max_size=2))
def test_corrupted_flowfi_events_are_parsed_identically_or_rejected_by_both(
    vector: dict[str, Any], corruptions: list[tuple[str, int, int]]
) -> None:
    raw = base64.b64decode(vector["value"])
    for edit in corruptions:
        raw = corrupt(raw, edit)
    assert_same(b64(raw))


def _contract_data(owner: xdr.SCAddress, key: xdr.SCVal, value: xdr.SCVal) -> str:
    return xdr.LedgerEntryData(  # type: ignore[no-any-return]
        xdr.LedgerEntryType.CONTRACT_DATA,
        contract_data=xdr.ContractDataEntry(ext=xdr.ExtensionPoint(0), contract=owner, key=key,
                                            durability=xdr.ContractDataDurability.PERSISTENT, val=value),
    ).to_xdr()


CONTRACT_OWNER = scval.to_address("CCR2RRS64MGIDMQUAWN3JOPTLWOJVDNN7WGCHNGZCVNGYBUXRV5QHFIG").address
OWNERS = st.sampled_from([CONTRACT_OWNER,
                          scval.to_address("GAJKUTWHRMNW375TPXCKYDF4MLUBJIRD7YVKGCNN3J6S44GZE3N2LUBQ").address])


@RANDOM
@given(OWNERS, scvals, scvals)
def test_contract_data_entries_give_the_value_stellar_sdk_reads(owner: xdr.SCAddress, key: xdr.SCVal,
                                                                value: xdr.SCVal) -> None:
    entry = _contract_data(owner, key, value)
    assert scval_module.parse_contract_data(entry) == (scval_module.from_xdr(key), scval_module.from_xdr(value))


def test_what_is_not_a_whole_contract_data_entry_is_rejected() -> None:
    entry = base64.b64decode(_contract_data(CONTRACT_OWNER, scval.to_symbol("k"), scval.to_uint64(5)))
    account = xdr.LedgerEntryData(xdr.LedgerEntryType.TTL, ttl=xdr.TTLEntry(xdr.Hash(bytes(32)), xdr.Uint32(5)))
    for bad in (entry[:-3], entry + bytes(4), account.to_xdr_bytes(), b"", entry[:4] + b"\x00\x00\x00\x01" + entry[8:]):
        with pytest.raises(scval_module.ScValError):
            scval_module.parse_contract_data(base64.b64encode(bad).decode())


def test_a_deep_contract_data_entry_read_by_stellar_sdk_must_be_canonical() -> None:
    """Beyond the fast parser's depth stellar-sdk reads the entry; a bool of 2 (which it alone would read as
    true) is refused there too."""
    value = scval.to_bool(True)
    for _ in range(scval_module._FAST_DEPTH + 5):
        value = scval.to_vec([value])
    entry = base64.b64decode(_contract_data(CONTRACT_OWNER, scval.to_symbol("k"), value))
    assert scval_module.parse_contract_data(base64.b64encode(entry).decode())[1][0] == "vec"
    assert entry.endswith(b"\0\0\0\0\0\0\0\1")  # the bool's tag and word
    bad = base64.b64encode(entry[:-4] + b"\0\0\0\2").decode()
    with pytest.raises(scval_module.ScValError, match="canonical"):
        scval_module.parse_contract_data(bad)
