"""Stepping over XDR: for values stellar-sdk encodes, of kinds the test ledgers do not all hold (every
operation type, every ScVal type, fee bumps, muxed sources, preconditions, Soroban authorizations), each
skip function ends exactly where the encoding ends; an arm it does not know raises Unsupported."""

from __future__ import annotations

import struct
import warnings

import pytest
from stellar_sdk import (
    Account,
    Address,
    Asset,
    Claimant,
    ClaimPredicate,
    Keypair,
    LiquidityPoolAsset,
    MuxedAccount,
    Network,
    Signer,
    SignerKey,
    SorobanDataBuilder,
    TransactionBuilder,
    scval,
    xdr,
)
from stellar_sdk.operation.set_options import AuthorizationFlag

from indexer.lake import skip, skip_tx

SOURCE = Keypair.from_raw_ed25519_seed(bytes(range(32)))
OTHER = Keypair.from_raw_ed25519_seed(bytes(range(1, 33))).public_key
CONTRACT = Address.from_raw_contract(bytes(range(32))).address
USD = Asset("USD", OTHER)
LONG = Asset("LONGASSETCOD", OTHER)
POOL = LiquidityPoolAsset(USD, LONG)
POOL_ID = POOL.liquidity_pool_id
BALANCE_ID = "00000000" + "ab" * 32


def _builder() -> TransactionBuilder:
    account = Account(MuxedAccount(SOURCE.public_key, 7).account_muxed, 1)
    builder = TransactionBuilder(account, Network.TESTNET_NETWORK_PASSPHRASE, base_fee=100)
    return builder.set_timeout(30)


def _classic() -> TransactionBuilder:
    """A transaction with one operation of every classic type."""
    b = _builder()
    b.add_text_memo("memo").set_ledger_bounds(3, 4).set_min_sequence_age(5)
    b.set_min_sequence_ledger_gap(6).add_extra_signer(SignerKey.ed25519_public_key(OTHER))
    b.append_create_account_op(OTHER, "10")
    b.append_payment_op(MuxedAccount(OTHER, 9).account_muxed, USD, "1", source=SOURCE.public_key)
    b.append_path_payment_strict_receive_op(OTHER, Asset.native(), "5", USD, "1", [LONG, USD])
    b.append_manage_sell_offer_op(USD, LONG, "1", "0.5", offer_id=3)
    b.append_create_passive_sell_offer_op(USD, LONG, "1", "2")
    b.append_set_options_op(inflation_dest=OTHER, clear_flags=AuthorizationFlag.AUTHORIZATION_REQUIRED,
                            set_flags=AuthorizationFlag.AUTHORIZATION_REVOCABLE, master_weight=3, low_threshold=4,
                            med_threshold=5, high_threshold=6, home_domain="example.com",
                            signer=Signer.ed25519_public_key(OTHER, 1))
    b.append_change_trust_op(USD)
    b.append_change_trust_op(POOL)
    with warnings.catch_warnings():  # deprecated, and still in the ledgers of the past
        warnings.simplefilter("ignore", DeprecationWarning)
        b.append_allow_trust_op(OTHER, "USD", True)
        b.append_allow_trust_op(OTHER, "LONGASSETCOD", True)
    b.append_account_merge_op(OTHER)
    b.append_inflation_op()
    b.append_manage_data_op("key", b"value")
    b.append_manage_data_op("deleted", None)
    b.append_bump_sequence_op(99)
    b.append_manage_buy_offer_op(USD, LONG, "1", "0.5")
    b.append_path_payment_strict_send_op(OTHER, USD, "1", LONG, "2", [])
    b.append_create_claimable_balance_op(USD, "1", [
        Claimant(OTHER),
        Claimant(OTHER, ClaimPredicate.predicate_and(ClaimPredicate.predicate_before_relative_time(60),
                                               ClaimPredicate.predicate_not(ClaimPredicate.predicate_before_absolute_time(9)))),
        Claimant(OTHER, ClaimPredicate.predicate_or(ClaimPredicate.predicate_unconditional(),
                                              ClaimPredicate.predicate_unconditional())),
    ])
    b.append_claim_claimable_balance_op(BALANCE_ID)
    b.append_begin_sponsoring_future_reserves_op(OTHER)
    b.append_end_sponsoring_future_reserves_op()
    b.append_revoke_account_sponsorship_op(OTHER)
    b.append_revoke_trustline_sponsorship_op(OTHER, USD)
    b.append_revoke_offer_sponsorship_op(OTHER, 5)
    b.append_revoke_data_sponsorship_op(OTHER, "key")
    b.append_revoke_claimable_balance_sponsorship_op(BALANCE_ID)
    b.append_revoke_liquidity_pool_sponsorship_op(POOL_ID)
    b.append_revoke_ed25519_public_key_signer_sponsorship_op(OTHER, OTHER)
    b.append_clawback_op(USD, OTHER, "1")
    b.append_clawback_claimable_balance_op(BALANCE_ID)
    b.append_set_trust_line_flags_op(OTHER, USD)
    b.append_liquidity_pool_deposit_op(POOL_ID, "1", "2", "0.5", "2")
    b.append_liquidity_pool_withdraw_op(POOL_ID, "1", "0", "0")
    return b


def _auth() -> xdr.SorobanAuthorizationEntry:
    invocation = xdr.SorobanAuthorizedInvocation(
        function=xdr.SorobanAuthorizedFunction(
            xdr.SorobanAuthorizedFunctionType.SOROBAN_AUTHORIZED_FUNCTION_TYPE_CONTRACT_FN,
            contract_fn=xdr.InvokeContractArgs(Address(CONTRACT).to_xdr_sc_address(), xdr.SCSymbol(b"f"),
                                               [scval.to_uint32(1)]),
        ),
        sub_invocations=[],
    )
    credentials = xdr.SorobanCredentials(
        xdr.SorobanCredentialsType.SOROBAN_CREDENTIALS_ADDRESS,
        address=xdr.SorobanAddressCredentials(Address(OTHER).to_xdr_sc_address(), xdr.Int64(1), xdr.Uint32(2),
                                              scval.to_vec([scval.to_bytes(b"sig")])),
    )
    return xdr.SorobanAuthorizationEntry(credentials, xdr.SorobanAuthorizedInvocation(
        invocation.function, [invocation]))


def _soroban() -> list[TransactionBuilder]:
    data = (SorobanDataBuilder().set_resource_fee(100).set_resources(1, 2, 3)
            .set_read_only([xdr.LedgerKey(xdr.LedgerEntryType.TTL, ttl=xdr.LedgerKeyTtl(xdr.Hash(bytes(32))))])
            .set_read_write([]).build())
    builders = [
        _builder().append_invoke_contract_function_op(CONTRACT, "transfer", [scval.to_symbol("x")], auth=[_auth()]),
        _builder().append_create_contract_op(bytes(32), OTHER, [scval.to_int128(5)], salt=bytes(32)),
        _builder().append_upload_contract_wasm_op(b"\0asm" + bytes(9)),
        _builder().append_extend_footprint_ttl_op(100),
        _builder().append_restore_footprint_op(),
        _builder().append_create_stellar_asset_contract_from_asset_op(USD),
    ]
    for builder in builders:
        builder.set_soroban_data(data)
    return builders


def _envelopes() -> list[xdr.TransactionEnvelope]:
    envelopes = []
    for builder in [_classic(), *_soroban()]:
        envelope = builder.build()
        envelope.sign(SOURCE)
        envelopes.append(envelope.to_xdr_object())
    fee_bump = TransactionBuilder.build_fee_bump_transaction(OTHER, 200, _classic().build(),
                                                             Network.TESTNET_NETWORK_PASSPHRASE)
    envelopes.append(fee_bump.to_xdr_object())
    return envelopes


@pytest.mark.parametrize("index", range(8))
def test_every_operation_type_and_envelope_kind_is_stepped_over_exactly(index: int) -> None:
    envelope = _envelopes()[index]
    data = envelope.to_xdr_bytes() + b"\xff" * 8  # what follows must not be read
    assert skip_tx.envelope(data, 0) == len(data) - 8


def test_the_envelopes_hold_every_operation_type() -> None:
    envelopes = _envelopes()
    kinds = {op.body.type for envelope in envelopes[:-1] for op in envelope.v1.tx.operations}
    assert kinds == set(xdr.OperationType)
    assert envelopes[0].v1.tx.source_account.type == xdr.CryptoKeyType.KEY_TYPE_MUXED_ED25519
    assert envelopes[-1].type == xdr.EnvelopeType.ENVELOPE_TYPE_TX_FEE_BUMP


SCVALS = [
    scval.to_bool(True), scval.to_void(), scval.to_uint32(1), scval.to_int32(-1), scval.to_uint64(2),
    scval.to_int64(-2), scval.to_timepoint(3), scval.to_duration(4), scval.to_uint128(5), scval.to_int128(-5),
    scval.to_uint256(6), scval.to_int256(-6), scval.to_bytes(b"abcde"), scval.to_string("hello"),
    scval.to_symbol("sym"), scval.to_address(OTHER), scval.to_address(CONTRACT),
    scval.to_vec([scval.to_uint32(1), scval.to_vec([])]),
    scval.to_map({scval.to_symbol("a"): scval.to_int128(1), scval.to_symbol("b"): scval.to_map({})}),
    xdr.SCVal(xdr.SCValType.SCV_VEC), xdr.SCVal(xdr.SCValType.SCV_MAP),
    xdr.SCVal(xdr.SCValType.SCV_ERROR, error=xdr.SCError(xdr.SCErrorType.SCE_CONTRACT, contract_code=xdr.Uint32(7))),
    xdr.SCVal(xdr.SCValType.SCV_ERROR, error=xdr.SCError(xdr.SCErrorType.SCE_AUTH,
                                                         code=xdr.SCErrorCode.SCEC_INVALID_ACTION)),
    xdr.SCVal(xdr.SCValType.SCV_LEDGER_KEY_CONTRACT_INSTANCE),
    xdr.SCVal(xdr.SCValType.SCV_LEDGER_KEY_NONCE, nonce_key=xdr.SCNonceKey(xdr.Int64(8))),
    xdr.SCVal(xdr.SCValType.SCV_CONTRACT_INSTANCE, instance=xdr.SCContractInstance(
        xdr.ContractExecutable(xdr.ContractExecutableType.CONTRACT_EXECUTABLE_WASM, wasm_hash=xdr.Hash(bytes(32))),
        xdr.SCMap([xdr.SCMapEntry(scval.to_symbol("k"), scval.to_uint32(1))]))),
    xdr.SCVal(xdr.SCValType.SCV_CONTRACT_INSTANCE, instance=xdr.SCContractInstance(
        xdr.ContractExecutable(xdr.ContractExecutableType.CONTRACT_EXECUTABLE_STELLAR_ASSET), None)),
]


@pytest.mark.parametrize("value", SCVALS, ids=lambda v: v.type.name)
def test_every_scval_type_is_stepped_over_exactly(value: xdr.SCVal) -> None:
    data = value.to_xdr_bytes() + b"\xff" * 8
    assert skip.scval(data, 0) == len(data) - 8


@pytest.mark.parametrize("data", [
    struct.pack(">I", 23),  # an ScVal type past the last one known
    struct.pack(">II", 16, 2),  # a vec whose "present" flag is neither 0 nor 1
    struct.pack(">III", 18, 5, 0),  # an address type past the last one known
])
def test_an_unknown_arm_is_left_to_stellar_sdk(data: bytes) -> None:
    with pytest.raises(skip.Unsupported):
        skip.scval(data + bytes(64), 0)


def test_bytes_that_end_too_soon_raise_struct_error() -> None:
    data = _envelopes()[0].to_xdr_bytes()
    with pytest.raises(struct.error):
        skip_tx.envelope(data[: len(data) // 2], 0)
