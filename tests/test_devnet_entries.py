"""getLedgerEntries over real HTTP, read with stellar-sdk's own client and XDR classes: the contract's
storage equals the model's, in the layout of the build that saved each record; the tokens' metadata;
stellar-rpc's shapes and errors; lifetimes and archival."""

from collections.abc import Iterator
from typing import Any

import pytest
from stellar_sdk import Address, SorobanServer, StrKey, scval, xdr

from devnet import BUILDS, Devnet, Stream, running_devnet
from devnet.contract import FlowFiContract
from devnet.entries import instance_key, ledger_key, stream_ledger_key
from devnet.state import INSTANCE, stream_key
from devnet.terms import HybridCliffLinear, OracleAttestation, PriceTarget, StepTranches, TimeOnly
from devnet.tokens import ISSUER
from devnet.traffic import Traffic
from tests.devnet_model import ADMIN, RECIPIENT, SENDER, TOKEN, TREASURY
from tests.serving import http_client

CREATE = {"sender": SENDER, "recipient": RECIPIENT, "token_address": TOKEN, "amount": 1000, "duration": 100}


def native(value: Any) -> Any:
    """stellar-sdk's native reading of an ScVal, with addresses as strkeys."""
    if isinstance(value, Address):
        return value.address
    if isinstance(value, dict):
        return {native(k): native(v) for k, v in value.items()}
    if isinstance(value, list):
        return [native(item) for item in value]
    return value


def expected_stream(stream: Stream) -> dict[str, Any]:
    """The stored Stream as the contract's types.rs lays it out, from the model's fields."""
    fields: dict[str, Any] = {
        "sender": stream.sender, "recipient": stream.recipient, "token_address": stream.token_address,
        "rate_per_second": stream.rate_per_second, "deposited_amount": stream.deposited_amount,
        "withdrawn_amount": stream.withdrawn_amount, "start_time": stream.start_time,
        "last_update_time": stream.last_update_time, "is_active": stream.is_active, "paused": stream.paused,
        "paused_at": stream.paused_at, "status": [stream.status.value],
    }
    if stream.legacy:
        return fields
    schedule: list[Any] = ["Linear"]
    if isinstance(stream.schedule, StepTranches):
        schedule = ["StepTranches", [{"unlock_amount": s.unlock_amount, "unlock_time": s.unlock_time}
                                     for s in stream.schedule.steps]]
    elif isinstance(stream.schedule, HybridCliffLinear):
        schedule = ["HybridCliffLinear", stream.schedule.cliff_time, stream.schedule.cliff_unlock_amount]
    dispute = [stream.dispute_status.variant] + (
        [] if stream.dispute_status.approved is None else [stream.dispute_status.approved])
    return {**fields, "cliff_time": stream.cliff_time, "schedule": schedule, "arbiter": stream.arbiter,
            "dispute_status": dispute, "is_allowance_based": stream.is_allowance_based}


def entries(devnet: Devnet, keys: list[xdr.LedgerKey]) -> list[Any]:
    found = []
    server = SorobanServer(devnet.url)
    for start in range(0, len(keys), 200):
        response = server.get_ledger_entries(keys[start:start + 200])
        found += response.entries or []
    return found


def value_of(entry: Any) -> xdr.SCVal:
    data = xdr.LedgerEntryData.from_xdr(entry.xdr)
    assert data.type == xdr.LedgerEntryType.CONTRACT_DATA
    return data.contract_data.val  # type: ignore[union-attr, no-any-return]


def instance_storage(devnet: Devnet, contract_id: str) -> tuple[xdr.SCContractInstance, dict[Any, Any]]:
    (entry,) = entries(devnet, [instance_key(contract_id)])
    instance = value_of(entry).instance
    assert instance is not None and instance.storage is not None
    storage = {_key(e.key): native(scval.to_native(e.val)) for e in instance.storage.sc_map}
    return instance, storage


def _key(value: xdr.SCVal) -> Any:
    decoded = native(scval.to_native(value))
    return tuple(decoded) if isinstance(decoded, list) else decoded


@pytest.fixture
def devnet(request: pytest.FixtureRequest) -> Iterator[Devnet]:
    with running_devnet(**getattr(request, "param", {})) as running:
        yield running


def check_against_the_model(devnet: Devnet) -> None:
    contract: FlowFiContract = devnet.chain.contract
    contract_id, latest = devnet.chain.contract_id, devnet.chain.latest.sequence
    ids = sorted(contract.streams)
    found = entries(devnet, [stream_ledger_key(contract_id, i) for i in ids])
    assert len(found) == len(ids)
    for stream_id, entry in zip(ids, found, strict=True):
        stream = contract.streams[stream_id]
        decoded = native(scval.to_native(value_of(entry)))
        assert list(decoded) == sorted(decoded), "fields in the order of their names"
        assert decoded == expected_stream(stream), stream_id
        lifetime = contract.lifetimes.get(stream_key(stream_id))
        assert lifetime is not None
        assert (entry.last_modified_ledger, entry.live_until_ledger) == (
            lifetime.last_modified, contract.lifetimes.live_until(stream_key(stream_id), latest))
    instance, storage = instance_storage(devnet, contract_id)
    assert instance.executable.wasm_hash.hash == contract.wasm_hash  # type: ignore[union-attr]
    assert contract.config is not None
    config = {"admin": contract.config.admin, "treasury": contract.config.treasury,
              "fee_rate_bps": contract.config.fee_rate_bps}
    if not contract.config.legacy:
        config.update(emergency_guardian=contract.config.emergency_guardian,
                      is_protocol_paused=contract.config.is_protocol_paused)
    expected: dict[Any, Any] = {("StreamCounter",): contract.stream_counter, ("ProtocolConfig",): config}
    if contract.contract_version is not None:
        expected[("ContractVersion",)] = contract.contract_version
    for stream_id, milestones in contract.milestones.items():
        expected[("ConditionalMilestones", stream_id)] = [
            {"amount": m.amount, "condition": _condition(m.condition), "is_unlocked": m.is_unlocked,
             "milestone_id": m.milestone_id} for m in milestones]
        expected[("AttestedIds", stream_id)] = list(contract.attested[stream_id])
    assert storage == expected
    assert list(storage) == sorted(storage, key=lambda k: (k[0], k[1:]))


def _condition(condition: TimeOnly | OracleAttestation | PriceTarget) -> list[Any]:
    """UnlockCondition as its enum reads: the variant, then its values."""
    if isinstance(condition, TimeOnly):
        return ["TimeOnly", condition.unlock_time]
    assert isinstance(condition, OracleAttestation)
    return ["OracleAttestation", condition.oracle_signer, condition.attestation_id]


@pytest.mark.parametrize("build", BUILDS)
def test_the_contracts_entries_hold_its_storage_as_the_model_keeps_it(build: str) -> None:
    with running_devnet(build=build) as devnet:
        devnet.chain.generate_history(1500, traffic=Traffic(seed=4), tx_per_ledger=20)
        assert len(devnet.chain.contract.streams) > 200
        check_against_the_model(devnet)
        if build == "c9f5d2e":
            assert devnet.chain.contract.milestones, "traffic made conditional streams"


def test_records_of_8723543_keep_their_12_fields_after_an_upgrade_until_they_are_saved() -> None:
    with running_devnet(build="8723543") as devnet:
        chain = devnet.chain
        chain.execute("initialize", {"admin": ADMIN, "treasury": TREASURY, "fee_rate_bps": 0})
        for _ in range(2):
            chain.execute("create_stream", CREATE)
        upgrade = chain.upgrade("c9f5d2e")
        chain.close_ledger()
        assert upgrade.result(timeout=0).error is None
        check_against_the_model(devnet)
        keys = [stream_ledger_key(chain.contract_id, 1), stream_ledger_key(chain.contract_id, 2)]
        assert [len(scval.to_native(value_of(entry))) for entry in entries(devnet, keys)] == [12, 12]
        chain.execute("pause_stream", {"sender": SENDER, "stream_id": 2})
        assert [len(scval.to_native(value_of(entry))) for entry in entries(devnet, keys)] == [12, 17]
        assert len(instance_storage(devnet, chain.contract_id)[1][("ProtocolConfig",)]) == 3
        chain.execute("migrate", {"target_version": 2})
        _, storage = instance_storage(devnet, chain.contract_id)
        assert (len(storage[("ProtocolConfig",)]), storage[("ContractVersion",)]) == (5, 2)
        check_against_the_model(devnet)


def test_a_tokens_instance_holds_its_metadata_as_a_stellar_asset_contract_does(devnet: Devnet) -> None:
    usdc = devnet.chain.tokens.defaults[0]
    devnet.chain.execute("create_stream", CREATE)  # TOKEN is not one of the chain's: deployed on first use
    for contract_id, code in ((usdc.contract_id, "USDC"), (TOKEN, TOKEN[1:5])):
        instance, storage = instance_storage(devnet, contract_id)
        assert instance.executable.type == xdr.ContractExecutableType.CONTRACT_EXECUTABLE_STELLAR_ASSET
        assert storage == {
            "METADATA": {"decimal": 7, "name": f"{code}:{ISSUER}", "symbol": code},
            ("Admin",): ISSUER,
            ("AssetInfo",): ["AlphaNum4", {"asset_code": code, "issuer": StrKey.decode_ed25519_public_key(ISSUER)}],
        }


def test_missing_keys_are_left_out_and_the_entries_follow_the_request(devnet: Devnet) -> None:
    chain = devnet.chain
    for _ in range(2):
        chain.execute("create_stream", CREATE)
    contract_id = chain.contract_id
    temporary = stream_ledger_key(contract_id, 1)
    temporary.contract_data.durability = xdr.ContractDataDurability.TEMPORARY  # type: ignore[union-attr]
    account = xdr.LedgerKey(xdr.LedgerEntryType.ACCOUNT, account=xdr.LedgerKeyAccount(
        Address(SENDER).to_xdr_sc_address().account_id))
    keys = [stream_ledger_key(contract_id, 2), stream_ledger_key(contract_id, 9), temporary, account,
            ledger_key(contract_id, scval.to_symbol("Stream")), instance_key(contract_id)]
    response = SorobanServer(devnet.url).get_ledger_entries(keys)
    assert [entry.key for entry in response.entries or []] == [keys[0].to_xdr(), keys[-1].to_xdr()]
    assert response.latest_ledger == chain.latest.sequence
    assert SorobanServer(devnet.url).get_ledger_entries([keys[1]]).entries == []


async def test_errors_are_stellar_rpcs(devnet: Devnet) -> None:
    key = stream_ledger_key(devnet.chain.contract_id, 1).to_xdr()
    ttl = xdr.LedgerKey(xdr.LedgerEntryType.TTL, ttl=xdr.LedgerKeyTtl(xdr.Hash(bytes(32)))).to_xdr()
    cases = [
        ({"keys": [key] * 201}, -32602, "key count (201) exceeds maximum supported (200)"),
        ({"keys": ["AAAA"]}, -32602, "cannot unmarshal key value AAAA at index 0"),
        ({"keys": [key, ttl]}, -32602, "ledger ttl entries cannot be queried directly"),
        ({"keys": [key], "xdrFormat": "xml"}, -32602, "got 'xml': expected base64, json for optional 'xdrFormat'"),
        ({"keys": []}, -32603, "could not query captive core: no keys specified in request"),
        ({"keys": [key, key]}, -32603, "could not query captive core: http request failed"),
    ]
    async with http_client(timeout=5) as client:
        for params, code, message in cases:
            body = {"jsonrpc": "2.0", "id": 1, "method": "getLedgerEntries", "params": params}
            error = (await client.post(devnet.url, json=body)).json()["error"]
            assert error["code"] == code and message in error["message"], (params, error)


async def test_xdr_format_json_gives_the_key_and_the_entry_as_json(devnet: Devnet) -> None:
    devnet.chain.execute("create_stream", CREATE)
    contract_id = devnet.chain.contract_id
    body = {"jsonrpc": "2.0", "id": 1, "method": "getLedgerEntries",
            "params": {"keys": [instance_key(contract_id).to_xdr(), stream_ledger_key(contract_id, 1).to_xdr()],
                       "xdrFormat": "json"}}
    async with http_client(timeout=5) as client:
        result = (await client.post(devnet.url, json=body)).json()["result"]
    instance, stream = result["entries"]
    assert set(instance) == {"keyJson", "dataJson", "extJson", "lastModifiedLedgerSeq", "liveUntilLedgerSeq"}
    assert instance["keyJson"] == {"contract_data": {"contract": contract_id, "key": "ledger_key_contract_instance",
                                                     "durability": "persistent"}}
    value = instance["dataJson"]["contract_data"]["val"]["contract_instance"]
    assert value["executable"] == {"wasm": devnet.chain.contract.wasm_hash.hex()}
    assert {"key": {"vec": [{"symbol": "StreamCounter"}]}, "val": {"u64": "1"}} in value["storage"]
    assert stream["keyJson"]["contract_data"]["key"] == {"vec": [{"symbol": "Stream"}, {"u64": "1"}]}
    fields = {e["key"]["symbol"]: e["val"] for e in stream["dataJson"]["contract_data"]["val"]["map"]}
    assert fields["deposited_amount"] == {"i128": "1000"} and fields["status"] == {"vec": [{"symbol": "Active"}]}


def test_an_8723543_stream_is_archived_when_its_ttl_runs_out_and_restored_when_touched() -> None:
    with running_devnet(build="8723543", min_persistent_ttl=5) as devnet:
        chain = devnet.chain
        created = chain.execute("create_stream", CREATE).ledger
        key = stream_ledger_key(chain.contract_id, 1)
        (entry,) = entries(devnet, [key])
        assert (entry.last_modified_ledger, entry.live_until_ledger) == (created, created + 4)
        for _ in range(5):
            chain.close_ledger()
        (entry,) = entries(devnet, [key])
        assert (entry.last_modified_ledger, entry.live_until_ledger) == (created, 0), "archived, still readable"
        assert native(scval.to_native(value_of(entry)))["deposited_amount"] == 1000
        touched = chain.execute("pause_stream", {"sender": SENDER, "stream_id": 1}).ledger
        (entry,) = entries(devnet, [key])
        assert (entry.last_modified_ledger, entry.live_until_ledger) == (touched, touched + 4)
        assert chain.contract.lifetimes.get(INSTANCE) is not None


def test_a_c9f5d2e_stream_lives_a_month_of_ledgers_from_its_last_save_and_a_closed_one_is_gone() -> None:
    with running_devnet(min_persistent_ttl=5) as devnet:
        chain = devnet.chain
        created = chain.execute("create_stream", CREATE).ledger
        key = stream_ledger_key(chain.contract_id, 1)
        (entry,) = entries(devnet, [key])
        assert entry.live_until_ledger == created + 518_400
        chain.execute("cancel_stream", {"sender": SENDER, "stream_id": 1})
        chain.execute("close_stream", {"caller": SENDER, "stream_id": 1})
        assert entries(devnet, [key]) == []
