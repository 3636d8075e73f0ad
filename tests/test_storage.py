"""The contract's storage entries, built here with stellar-sdk as the contract lays them out (types.rs,
storage.rs), decoded by indexer/storage.py in either build's shape."""

from __future__ import annotations

from typing import Any

import pytest
from stellar_sdk import StrKey, scval, xdr

from indexer import storage
from indexer.accrual import LOCKED

CONTRACT = "CCR2RRS64MGIDMQUAWN3JOPTLWOJVDNN7WGCHNGZCVNGYBUXRV5QHFIG"
SENDER = "GAJKUTWHRMNW375TPXCKYDF4MLUBJIRD7YVKGCNN3J6S44GZE3N2LUBQ"
RECIPIENT = "GDD24I62LHMI6FRWMZ3OD36DDAM4MDQSFWS7G37HZDHHXTMBOGFV7GCO"
TOKEN = "CC5VQ6PDN44JTGIJ7XZAN2WPQHHCRQLOKWI2RRAXXRS3WR2HI25AHEX2"


def variant(name: str, *args: xdr.SCVal) -> xdr.SCVal:
    return scval.to_vec([scval.to_symbol(name), *args])


def struct(**fields: xdr.SCVal) -> xdr.SCVal:
    return scval.to_map({scval.to_symbol(k): v for k, v in sorted(fields.items())})


def legacy_stream(**overrides: Any) -> dict[str, xdr.SCVal]:
    fields = {
        "sender": scval.to_address(SENDER), "recipient": scval.to_address(RECIPIENT),
        "token_address": scval.to_address(TOKEN), "rate_per_second": scval.to_int128(10),
        "deposited_amount": scval.to_int128(1000), "withdrawn_amount": scval.to_int128(0),
        "start_time": scval.to_uint64(100), "last_update_time": scval.to_uint64(100),
        "is_active": scval.to_bool(True), "paused": scval.to_bool(False), "paused_at": scval.to_void(),
        "status": variant("Active"),
    }
    return {**fields, **overrides}


def stream(**overrides: Any) -> dict[str, xdr.SCVal]:
    fields = {**legacy_stream(), "cliff_time": scval.to_void(), "schedule": variant("Linear"),
              "arbiter": scval.to_void(), "dispute_status": variant("None"), "is_allowance_based": scval.to_bool(False)}
    return {**fields, **overrides}


def entry(value: xdr.SCVal, key: xdr.SCVal | None = None) -> str:
    address = xdr.SCAddress(xdr.SCAddressType.SC_ADDRESS_TYPE_CONTRACT,
                            contract_id=xdr.ContractID(xdr.Hash(StrKey.decode_contract(CONTRACT))))
    data = xdr.LedgerEntryData(
        xdr.LedgerEntryType.CONTRACT_DATA,
        contract_data=xdr.ContractDataEntry(
            ext=xdr.ExtensionPoint(0), contract=address, key=key or scval.to_void(),
            durability=xdr.ContractDataDurability.PERSISTENT, val=value,
        ),
    )
    return data.to_xdr()  # type: ignore[no-any-return]


def _renamed(fields: dict[str, xdr.SCVal], old: str, new: str) -> dict[str, xdr.SCVal]:
    return {new if name == old else name: value for name, value in fields.items()}


@pytest.mark.parametrize("fields", [
    _renamed(stream(), "status", "state"),
    _renamed(stream(), "paused_at", "paused_since"),
    _renamed(legacy_stream(), "sender", "funder"),
    stream(schedule=variant("StepTranches")),
    stream(schedule=variant("StepTranches", scval.to_uint64(5))),
    stream(schedule=variant("HybridCliffLinear", scval.to_uint64(300))),
    stream(schedule=variant("HybridCliffLinear", scval.to_address(TOKEN), scval.to_int128(250))),
    stream(dispute_status=variant("Resolved")),
    stream(status=scval.to_symbol("Active")),
], ids=["status renamed", "paused_at renamed", "12 fields, sender renamed", "steps without their list",
        "steps not a list", "hybrid of one argument", "hybrid of an address", "resolved without its verdict",
        "status not a variant"])
def test_a_stream_in_a_layout_this_indexer_does_not_know_is_a_storage_error(fields: dict[str, xdr.SCVal]) -> None:
    """Whatever is wrong with it: the worker puts such a stream aside (StorageError), it does not crash."""
    with pytest.raises(storage.StorageError, match="stream 7"):
        storage.decode_stream(7, entry(struct(**fields)))


def test_a_stream_of_8723543s_shape_decodes_as_a_linear_stream() -> None:
    decoded = storage.decode_stream(4, entry(struct(**legacy_stream(withdrawn_amount=scval.to_int128(300)))), 500)
    assert (decoded.fields, decoded.schedule, decoded.cliff_time, decoded.withdrawn_amount) == (12, "linear", None, 300)
    assert (decoded.status, decoded.is_active, decoded.live_until_ledger) == ("Active", True, 500)


def test_the_later_shape_carries_cliffs_steps_hybrids_and_disputes() -> None:
    steps = scval.to_vec([struct(unlock_time=scval.to_uint64(t), unlock_amount=scval.to_int128(a))
                          for t, a in ((200, 400), (LOCKED, 600))])
    stepped = storage.decode_stream(1, entry(struct(**stream(schedule=variant("StepTranches", steps)))))
    assert (stepped.fields, stepped.schedule, stepped.steps) == (17, "steps", ((200, 400), (LOCKED, 600)))
    hybrid = storage.decode_stream(2, entry(struct(**stream(
        cliff_time=scval.to_uint64(300),
        schedule=variant("HybridCliffLinear", scval.to_uint64(300), scval.to_int128(250))))))
    assert (hybrid.schedule, hybrid.cliff_time, hybrid.cliff_amount) == ("hybrid", 300, 250)
    cliff = storage.decode_stream(3, entry(struct(**stream(cliff_time=scval.to_uint64(150)))))
    assert cliff.schedule_facts() == storage.StoredSchedule(found=True, cliff_time=150)
    resolved = variant("Resolved", scval.to_bool(False))
    disputed = storage.decode_stream(5, entry(struct(**stream(dispute_status=resolved))))
    assert disputed.dispute == "rejected"


def test_8723543s_resume_after_cancel_is_indexed_as_cancelled() -> None:
    quirk = storage.decode_stream(6, entry(struct(**legacy_stream(
        is_active=scval.to_bool(False), status=variant("Active"), withdrawn_amount=scval.to_int128(300)))))
    state = storage.stream_state(CONTRACT, quirk, conditional=False, ledger=90, closed_at=10_000)
    assert (state.status, state.refunded, state.claimable(10_000), state.bootstrap_ledger) == ("cancelled", 700, 0, 90)
    running = storage.stream_state(CONTRACT, storage.decode_stream(7, entry(struct(**legacy_stream()))), False, 90, 130)
    assert (running.status, running.claimable(130), running.end_time) == ("active", 300, 100 + 1000 // 10)


def test_the_instance_gives_the_config_counter_version_and_conditional_streams() -> None:
    storage_map = xdr.SCMap([xdr.SCMapEntry(key, value) for key, value in (
        (variant("StreamCounter"), scval.to_uint64(9)),
        (variant("ProtocolConfig"), struct(admin=scval.to_address(SENDER), treasury=scval.to_address(RECIPIENT),
                                           fee_rate_bps=scval.to_uint32(25), is_protocol_paused=scval.to_bool(True),
                                           emergency_guardian=scval.to_void())),
        (variant("ContractVersion"), scval.to_uint32(2)),
        (variant("ConditionalMilestones", scval.to_uint64(7)), scval.to_vec([])),
    )])
    instance = xdr.SCVal(xdr.SCValType.SCV_CONTRACT_INSTANCE, instance=xdr.SCContractInstance(
        executable=xdr.ContractExecutable(xdr.ContractExecutableType.CONTRACT_EXECUTABLE_WASM,
                                          wasm_hash=xdr.Hash(bytes(range(32)))),
        storage=storage_map))
    decoded = storage.decode_instance(entry(instance, xdr.SCVal(xdr.SCValType.SCV_LEDGER_KEY_CONTRACT_INSTANCE)))
    assert (decoded.stream_counter, decoded.contract_version, decoded.conditional_streams) == (9, 2, frozenset({7}))
    assert decoded.wasm_hash == bytes(range(32)).hex()
    assert decoded.config == storage.StoredConfig(admin=SENDER, treasury=RECIPIENT, fee_rate_bps=25, is_paused=True,
                                                  emergency_guardian=None)


@pytest.mark.parametrize("stream_id", [0, 1, 2**32, 2**64 - 1])
def test_keys_are_the_contracts_data_keys(stream_id: int) -> None:
    key = xdr.LedgerKey.from_xdr(storage.stream_ledger_key(CONTRACT, stream_id))
    assert key.contract_data is not None
    assert key.contract_data.contract.contract_id.contract_id.hash == StrKey.decode_contract(CONTRACT)
    assert key.contract_data.key == variant("Stream", scval.to_uint64(stream_id))
    assert key.contract_data.durability == xdr.ContractDataDurability.PERSISTENT
    assert storage.stream_ledger_key(TOKEN, stream_id) != storage.stream_ledger_key(CONTRACT, stream_id)
    # the instance key of stellar-rpc's own integration test, for another contract
    assert storage.instance_key("CDLZFC3SYJYDZT7K67VZ75HPJVIEUVNIXF47ZG2FB2RMQQVU2HHGCYSC") == (
        "AAAABgAAAAHXkotywnA8z+r365/0701QSlWouXn8m0UOoshCtNHOYQAAABQAAAAB")
