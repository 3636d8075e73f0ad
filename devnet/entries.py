"""The ledger entries of the FlowFi contract and of the tokens, as getLedgerEntries returns them.

FlowFi keeps (storage.rs, types.rs): one instance entry, the contract instance (executable: the build's
wasm hash; storage: DataKey::StreamCounter u64, ProtocolConfig, ContractVersion u32, ContractWasmHash
BytesN<32>, ConditionalMilestones(id), AttestedIds(id)), and one persistent entry per stream under
DataKey::Stream(id). Values are `#[contracttype]` encodings: a struct is an ScMap keyed by its field
names' Symbols, sorted; an enum variant is ScVec[Symbol(variant), values...]; an Option is Void or the
value; a record keeps the layout of the build that last saved it (12 or 17 stream fields, 3 or 5 config
fields). A token's instance is a Stellar Asset Contract's: executable STELLAR_ASSET, storage METADATA
{decimal, name, symbol}, [Admin] and [AssetInfo].

Map keys are ordered as the Soroban host orders values: by type, then symbols by their bytes, vectors
element by element, numbers by value.
"""

from __future__ import annotations

from collections.abc import Hashable
from functools import lru_cache
from typing import Any

from stellar_sdk import Address, StrKey, scval, xdr

from devnet.contract import FlowFiContract
from devnet.state import INSTANCE, stream_key
from devnet.terms import (
    ConditionalMilestone,
    Config,
    HybridCliffLinear,
    OracleAttestation,
    PriceTarget,
    Schedule,
    StepTranches,
    Stream,
    TimeOnly,
    UnlockCondition,
)
from devnet.tokens import Token, Tokens
from devnet.xdr import scval_to_json
from indexer.addresses import CONTRACT, strkey

PERSISTENT = xdr.ContractDataDurability.PERSISTENT
INSTANCE_KEY = xdr.SCVal(xdr.SCValType.SCV_LEDGER_KEY_CONTRACT_INSTANCE)


def _symbol(name: str) -> xdr.SCVal:
    return scval.to_symbol(name)


def _vec(items: list[xdr.SCVal]) -> xdr.SCVal:
    return xdr.SCVal(xdr.SCValType.SCV_VEC, vec=xdr.SCVec(items))


def _order(value: xdr.SCVal) -> tuple[Any, ...]:
    kind = value.type
    if value.sym is not None:
        return (kind.value, value.sym.sc_symbol)
    if value.vec is not None:
        return (kind.value, tuple(_order(item) for item in value.vec.sc_vec))
    return (kind.value, scval.to_native(value))


def _map(entries: dict[str, xdr.SCVal] | list[tuple[xdr.SCVal, xdr.SCVal]]) -> xdr.SCVal:
    pairs = [(_symbol(k), v) for k, v in entries.items()] if isinstance(entries, dict) else entries
    ordered = sorted(pairs, key=lambda pair: _order(pair[0]))
    return xdr.SCVal(xdr.SCValType.SCV_MAP, map=xdr.SCMap([xdr.SCMapEntry(k, v) for k, v in ordered]))


def _option_u64(value: int | None) -> xdr.SCVal:
    return scval.to_void() if value is None else scval.to_uint64(value)


# The same few accounts and contracts fill every entry: their strkeys are decoded once (stellar-sdk's
# checks make a decode cost more than the rest of an entry's encoding). The values are not mutated.
@lru_cache(maxsize=4096)
def _address(strkey: str) -> xdr.SCVal:
    return scval.to_address(strkey)


def _strkey(address: xdr.SCAddress) -> str:
    return strkey(CONTRACT, address.contract_id.contract_id.hash) if address.contract_id is not None \
        else Address.from_xdr_sc_address(address).address


def _option_address(value: str | None) -> xdr.SCVal:
    return scval.to_void() if value is None else _address(value)


def data_key(variant: str, *values: xdr.SCVal) -> xdr.SCVal:
    """A DataKey (or any contracttype enum value): ScVec[Symbol(variant), values...]."""
    return _vec([_symbol(variant), *values])


def _schedule(schedule: Schedule) -> xdr.SCVal:
    match schedule:
        case StepTranches(steps):
            return data_key("StepTranches", _vec([
                _map({"unlock_amount": scval.to_int128(s.unlock_amount), "unlock_time": scval.to_uint64(s.unlock_time)})
                for s in steps
            ]))
        case HybridCliffLinear(cliff_time, cliff_amount):
            return data_key("HybridCliffLinear", scval.to_uint64(cliff_time), scval.to_int128(cliff_amount))
    return data_key("Linear")


def stream_value(stream: Stream) -> xdr.SCVal:
    """The stored Stream: 12 fields in 8723543's layout, 17 in c9f5d2e's."""
    fields = {
        "sender": _address(stream.sender),
        "recipient": _address(stream.recipient),
        "token_address": _address(stream.token_address),
        "rate_per_second": scval.to_int128(stream.rate_per_second),
        "deposited_amount": scval.to_int128(stream.deposited_amount),
        "withdrawn_amount": scval.to_int128(stream.withdrawn_amount),
        "start_time": scval.to_uint64(stream.start_time),
        "last_update_time": scval.to_uint64(stream.last_update_time),
        "is_active": scval.to_bool(stream.is_active),
        "paused": scval.to_bool(stream.paused),
        "paused_at": _option_u64(stream.paused_at),
        "status": data_key(stream.status.value),
    }
    if not stream.legacy:
        dispute = stream.dispute_status
        fields.update(
            cliff_time=_option_u64(stream.cliff_time),
            schedule=_schedule(stream.schedule),
            arbiter=_option_address(stream.arbiter),
            dispute_status=data_key(dispute.variant) if dispute.approved is None
            else data_key(dispute.variant, scval.to_bool(dispute.approved)),
            is_allowance_based=scval.to_bool(stream.is_allowance_based),
        )
    return _map(fields)


def config_value(config: Config) -> xdr.SCVal:
    fields = {"admin": _address(config.admin), "treasury": _address(config.treasury),
              "fee_rate_bps": scval.to_uint32(config.fee_rate_bps)}
    if not config.legacy:
        fields.update(is_protocol_paused=scval.to_bool(config.is_protocol_paused),
                      emergency_guardian=_option_address(config.emergency_guardian))
    return _map(fields)


def _condition(condition: UnlockCondition) -> xdr.SCVal:
    match condition:
        case TimeOnly(unlock_time):
            return data_key("TimeOnly", scval.to_uint64(unlock_time))
        case OracleAttestation(signer, attestation_id):
            return data_key("OracleAttestation", _address(signer), scval.to_bytes(attestation_id))
        case PriceTarget(oracle, target, is_above):
            return data_key("PriceTarget", _address(oracle), scval.to_int128(target), scval.to_bool(is_above))
    raise TypeError(condition)


def _milestone(milestone: ConditionalMilestone) -> xdr.SCVal:
    return _map({"milestone_id": scval.to_uint32(milestone.milestone_id), "amount": scval.to_int128(milestone.amount),
                 "condition": _condition(milestone.condition), "is_unlocked": scval.to_bool(milestone.is_unlocked)})


def instance_storage(contract: FlowFiContract) -> xdr.SCVal:
    """The contract's instance storage map, with the keys it has written."""
    entries: list[tuple[xdr.SCVal, xdr.SCVal]] = []
    if contract.stream_counter:
        entries.append((data_key("StreamCounter"), scval.to_uint64(contract.stream_counter)))
    if contract.config is not None:
        entries.append((data_key("ProtocolConfig"), config_value(contract.config)))
    if contract.contract_version is not None:
        entries.append((data_key("ContractVersion"), scval.to_uint32(contract.contract_version)))
    if contract.recorded_wasm_hash is not None:
        entries.append((data_key("ContractWasmHash"), scval.to_bytes(contract.recorded_wasm_hash)))
    for stream_id, milestones in contract.milestones.items():
        entries.append((data_key("ConditionalMilestones", scval.to_uint64(stream_id)),
                        _vec([_milestone(m) for m in milestones])))
    for stream_id, attested in contract.attested.items():
        entries.append((data_key("AttestedIds", scval.to_uint64(stream_id)),
                        _vec([scval.to_bytes(a) for a in attested])))
    return _map(entries)


def _instance(executable: xdr.ContractExecutable, storage: xdr.SCVal) -> xdr.SCVal:
    return xdr.SCVal(xdr.SCValType.SCV_CONTRACT_INSTANCE,
                     instance=xdr.SCContractInstance(executable=executable, storage=storage.map))


def flowfi_instance(contract: FlowFiContract) -> xdr.SCVal:
    executable = xdr.ContractExecutable(xdr.ContractExecutableType.CONTRACT_EXECUTABLE_WASM,
                                        wasm_hash=xdr.Hash(contract.wasm_hash))
    return _instance(executable, instance_storage(contract))


def token_instance(token: Token) -> xdr.SCVal:
    """A Stellar Asset Contract's instance: its metadata, its admin (the issuer) and its asset."""
    variant = "AlphaNum4" if len(token.code) <= 4 else "AlphaNum12"
    asset = _map({"asset_code": scval.to_string(token.code),
                  "issuer": scval.to_bytes(StrKey.decode_ed25519_public_key(token.issuer))})
    storage = _map([
        (_symbol("METADATA"), _map({"decimal": scval.to_uint32(token.decimals), "name": scval.to_string(token.name),
                                    "symbol": scval.to_string(token.symbol)})),
        (data_key("Admin"), _address(token.issuer)),
        (data_key("AssetInfo"), data_key(variant, asset)),
    ])
    return _instance(xdr.ContractExecutable(xdr.ContractExecutableType.CONTRACT_EXECUTABLE_STELLAR_ASSET), storage)


def ledger_key(contract_id: str, key: xdr.SCVal) -> xdr.LedgerKey:
    """The LedgerKey of a persistent contract data entry."""
    return xdr.LedgerKey(xdr.LedgerEntryType.CONTRACT_DATA, contract_data=xdr.LedgerKeyContractData(
        contract=Address(contract_id).to_xdr_sc_address(), key=key, durability=PERSISTENT))


def instance_key(contract_id: str) -> xdr.LedgerKey:
    return ledger_key(contract_id, INSTANCE_KEY)


def stream_ledger_key(contract_id: str, stream_id: int) -> xdr.LedgerKey:
    return ledger_key(contract_id, data_key("Stream", scval.to_uint64(stream_id)))


def _stream_id(key: xdr.SCVal) -> int | None:
    """The id of a DataKey::Stream(id) key, else None."""
    if key.vec is None or len(key.vec.sc_vec) != 2:
        return None
    variant, stream_id = key.vec.sc_vec
    if variant.sym is None or variant.sym.sc_symbol != b"Stream" or stream_id.u64 is None:
        return None
    return stream_id.u64.uint64  # type: ignore[no-any-return]


def _flowfi_entry(contract: FlowFiContract, key: xdr.SCVal) -> tuple[Hashable, xdr.SCVal] | None:
    if key.type == xdr.SCValType.SCV_LEDGER_KEY_CONTRACT_INSTANCE:
        return INSTANCE, flowfi_instance(contract)
    stream_id = _stream_id(key)
    stream = None if stream_id is None else contract.streams.get(stream_id)
    if stream is None:
        return None
    return stream_key(stream.stream_id), stream_value(stream)


def find(
    contract: FlowFiContract, tokens: Tokens, key: xdr.LedgerKey, ledger: int
) -> tuple[xdr.SCVal, int, int] | None:
    """The value of the contract data entry at `key` with its lastModifiedLedgerSeq and
    liveUntilLedgerSeq as of `ledger` (0 once archived), or None when there is no such entry."""
    data = key.contract_data
    if data is None or data.durability != PERSISTENT:
        return None
    if data.contract.type != xdr.SCAddressType.SC_ADDRESS_TYPE_CONTRACT:
        return None
    contract_id = _strkey(data.contract)
    found: tuple[Hashable, xdr.SCVal] | None = None
    if contract_id == contract.address:
        lifetimes = contract.lifetimes
        found = _flowfi_entry(contract, data.key)
    else:
        lifetimes = tokens.lifetimes
        token = tokens.get(contract_id)
        if token is not None and data.key.type == xdr.SCValType.SCV_LEDGER_KEY_CONTRACT_INSTANCE:
            found = contract_id, token_instance(token)
    if found is None:
        return None
    name, value = found
    lifetime = lifetimes.get(name)
    assert lifetime is not None, name
    return value, lifetime.last_modified, lifetimes.live_until(name, ledger)


def entry_data(key: xdr.LedgerKey, value: xdr.SCVal) -> xdr.LedgerEntryData:
    """The LedgerEntryData (what getLedgerEntries calls `xdr`) of a contract data entry."""
    data = key.contract_data
    assert data is not None
    return xdr.LedgerEntryData(xdr.LedgerEntryType.CONTRACT_DATA, contract_data=xdr.ContractDataEntry(
        ext=xdr.ExtensionPoint(0), contract=data.contract, key=data.key, durability=data.durability, val=value))


def _durability(value: xdr.ContractDataDurability) -> str:
    return "persistent" if value == PERSISTENT else "temporary"


def key_json(key: xdr.LedgerKey) -> object:
    """A contract data LedgerKey in the JSON form of `xdrFormat: "json"` (rs-stellar-xdr's)."""
    data = key.contract_data
    assert data is not None
    return {"contract_data": {"contract": _strkey(data.contract),
                              "key": scval_to_json(data.key), "durability": _durability(data.durability)}}


def data_json(data: xdr.LedgerEntryData) -> object:
    entry = data.contract_data
    assert entry is not None
    return {"contract_data": {"ext": "v0", "contract": _strkey(entry.contract),
                              "key": scval_to_json(entry.key), "durability": _durability(entry.durability),
                              "val": scval_to_json(entry.val)}}
