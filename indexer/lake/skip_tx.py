"""Stepping over the parts of a ledger around its transaction metas: the transaction set's envelopes, the
transactions' results, the header, and the tail (upgrades, consensus messages). As in `skip`, each
function takes the buffer and an offset and returns the offset after the value; `Unsupported` for a
discriminant it does not know, `struct.error` when the bytes end too soon.
"""

from __future__ import annotations

from collections.abc import Callable

from indexer.lake.skip import (
    I32,
    U32,
    U64,
    Unsupported,
    account_id,
    asset,
    change_trust_asset,
    changes,
    claimable_balance_id,
    claimants,
    executable,
    ext_v0,
    ledger_key,
    ledger_keys,
    muxed_account,
    offer_entry,
    opaque,
    optional,
    sc_address,
    scval,
    scvals,
    signer_key,
)

# ---------------------------------------------------------------------------------------------------
# Transaction envelopes
# ---------------------------------------------------------------------------------------------------

def _path_payment(buf: bytes, pos: int) -> int:
    """Both path payments: send asset, amount, destination, destination asset, amount, path."""
    pos = asset(buf, muxed_account(buf, asset(buf, pos) + 8)) + 8
    count = U32(buf, pos)[0]
    pos += 4
    for _ in range(count):
        pos = asset(buf, pos)
    return pos


def _set_options(buf: bytes, pos: int) -> int:
    pos = account_id(buf, pos + 4) if optional(buf, pos) else pos + 4  # inflation destination
    for _ in range(6):  # clear flags, set flags, master weight, three thresholds
        pos += 8 if optional(buf, pos) else 4
    pos = opaque(buf, pos + 4) if optional(buf, pos) else pos + 4  # home domain
    return signer_key(buf, pos + 4) + 4 if optional(buf, pos) else pos + 4  # signer


def _invoke_contract(buf: bytes, pos: int) -> int:
    """InvokeContractArgs: contract address, function name, arguments."""
    return scvals(buf, opaque(buf, sc_address(buf, pos)))


def _create_contract(buf: bytes, pos: int, constructor_args: bool) -> int:
    """CreateContractArgs(V2): id preimage (from an address and salt, or from an asset), executable."""
    t = U32(buf, pos)[0]
    if t == 0:
        pos = sc_address(buf, pos + 4) + 32
    elif t == 1:
        pos = asset(buf, pos + 4)
    else:
        raise Unsupported(f"contract id preimage type {t}")
    pos = executable(buf, pos)
    return scvals(buf, pos) if constructor_args else pos


def _host_function(buf: bytes, pos: int) -> int:
    t = U32(buf, pos)[0]
    if t == 0:
        return _invoke_contract(buf, pos + 4)
    if t == 1 or t == 3:
        return _create_contract(buf, pos + 4, t == 3)
    if t == 2:  # upload wasm
        return opaque(buf, pos + 4)
    raise Unsupported(f"host function type {t}")


def _address_credentials(buf: bytes, pos: int) -> int:
    """SorobanAddressCredentials: address, nonce, signature expiration ledger, signature."""
    return scval(buf, sc_address(buf, pos) + 12)


def _delegate_signatures(buf: bytes, pos: int) -> int:
    count = U32(buf, pos)[0]
    pos += 4
    for _ in range(count):
        pos = _delegate_signatures(buf, scval(buf, sc_address(buf, pos)))
    return pos


def _authorized_invocation(buf: bytes, pos: int) -> int:
    t = U32(buf, pos)[0]
    if t == 0:
        pos = _invoke_contract(buf, pos + 4)
    elif t == 1 or t == 2:
        pos = _create_contract(buf, pos + 4, t == 2)
    else:
        raise Unsupported(f"authorized function type {t}")
    count = U32(buf, pos)[0]
    pos += 4
    for _ in range(count):
        pos = _authorized_invocation(buf, pos)
    return pos


def _invoke_host_function(buf: bytes, pos: int) -> int:
    pos = _host_function(buf, pos)
    count = U32(buf, pos)[0]
    pos += 4
    for _ in range(count):  # authorization entries: credentials, root invocation
        t = U32(buf, pos)[0]
        if t == 0:  # source account
            pos += 4
        elif t == 1 or t == 2:
            pos = _address_credentials(buf, pos + 4)
        elif t == 3:  # with delegates
            pos = _delegate_signatures(buf, _address_credentials(buf, pos + 4))
        else:
            raise Unsupported(f"credentials type {t}")
        pos = _authorized_invocation(buf, pos)
    return pos


def _revoke_sponsorship(buf: bytes, pos: int) -> int:
    t = U32(buf, pos)[0]
    if t == 0:
        return ledger_key(buf, pos + 4)
    if t == 1:
        return signer_key(buf, account_id(buf, pos + 4))
    raise Unsupported(f"revoke sponsorship type {t}")


def _allow_trust(buf: bytes, pos: int) -> int:
    pos = account_id(buf, pos)
    t = U32(buf, pos)[0]
    if t == 1:
        return pos + 12  # 4-byte code, authorize flag
    if t == 2:
        return pos + 20
    raise Unsupported(f"asset code type {t}")


def _manage_data(buf: bytes, pos: int) -> int:
    pos = opaque(buf, pos)  # name
    return opaque(buf, pos + 4) if optional(buf, pos) else pos + 4  # value, if set


def _fixed(size: int) -> Callable[[bytes, int], int]:
    return lambda buf, pos: pos + size


# Operation bodies by operation type, each from just after the type word.
_OPERATIONS = (
    lambda buf, pos: account_id(buf, pos) + 8,  # create account
    lambda buf, pos: asset(buf, muxed_account(buf, pos)) + 8,  # payment
    _path_payment,  # path payment strict receive
    lambda buf, pos: asset(buf, asset(buf, pos)) + 24,  # manage sell offer
    lambda buf, pos: asset(buf, asset(buf, pos)) + 16,  # create passive sell offer
    _set_options,
    lambda buf, pos: change_trust_asset(buf, pos) + 8,  # change trust
    _allow_trust,
    muxed_account,  # account merge
    _fixed(0),  # inflation
    _manage_data,
    _fixed(8),  # bump sequence
    lambda buf, pos: asset(buf, asset(buf, pos)) + 24,  # manage buy offer
    _path_payment,  # path payment strict send
    lambda buf, pos: claimants(buf, asset(buf, pos) + 8),  # create claimable balance
    claimable_balance_id,  # claim claimable balance
    account_id,  # begin sponsoring future reserves
    _fixed(0),  # end sponsoring future reserves
    _revoke_sponsorship,
    lambda buf, pos: muxed_account(buf, asset(buf, pos)) + 8,  # clawback
    claimable_balance_id,  # clawback claimable balance
    lambda buf, pos: asset(buf, account_id(buf, pos)) + 8,  # set trustline flags
    _fixed(64),  # liquidity pool deposit
    _fixed(56),  # liquidity pool withdraw
    _invoke_host_function,
    lambda buf, pos: ext_v0(buf, pos) + 4,  # extend footprint ttl
    ext_v0,  # restore footprint
)


def _operations(buf: bytes, pos: int) -> int:
    count = U32(buf, pos)[0]
    pos += 4
    for _ in range(count):
        pos = muxed_account(buf, pos + 4) if optional(buf, pos) else pos + 4  # source account
        t = U32(buf, pos)[0]
        if t >= len(_OPERATIONS):
            raise Unsupported(f"operation type {t}")
        pos = _OPERATIONS[t](buf, pos + 4)
    return pos


def _time_bounds_optional(buf: bytes, pos: int) -> int:
    return pos + 20 if optional(buf, pos) else pos + 4


def _preconditions(buf: bytes, pos: int) -> int:
    t = U32(buf, pos)[0]
    if t == 0:
        return pos + 4
    if t == 1:
        return pos + 20
    if t != 2:
        raise Unsupported(f"precondition type {t}")
    pos = _time_bounds_optional(buf, pos + 4)
    pos = pos + 12 if optional(buf, pos) else pos + 4  # ledger bounds
    pos = pos + 12 if optional(buf, pos) else pos + 4  # minimum sequence number
    count = U32(buf, pos + 12)[0]  # after the minimum sequence age and ledger gap
    pos += 16
    for _ in range(count):  # extra signers
        pos = signer_key(buf, pos)
    return pos


def _memo(buf: bytes, pos: int) -> int:
    t = U32(buf, pos)[0]
    if t == 0:
        return pos + 4
    if t == 1:
        return opaque(buf, pos + 4)
    if t == 2:
        return pos + 12
    if t == 3 or t == 4:
        return pos + 36
    raise Unsupported(f"memo type {t}")


def _soroban_data(buf: bytes, pos: int) -> int:
    """SorobanTransactionData: extension (v1: archived entry indexes), footprint, resources, fee."""
    v = U32(buf, pos)[0]
    if v == 1:
        pos += 8 + 4 * U32(buf, pos + 4)[0]
    elif v == 0:
        pos += 4
    else:
        raise Unsupported("soroban transaction data extension")
    return ledger_keys(buf, ledger_keys(buf, pos)) + 20  # instructions, read and write bytes, fee


def _transaction(buf: bytes, pos: int) -> int:
    """Transaction: source, fee, sequence number, preconditions, memo, operations, extension."""
    pos = _operations(buf, _memo(buf, _preconditions(buf, muxed_account(buf, pos) + 12)))
    v = U32(buf, pos)[0]
    if v == 0:
        return pos + 4
    if v == 1:
        return _soroban_data(buf, pos + 4)
    raise Unsupported("transaction extension")


def _signatures(buf: bytes, pos: int) -> int:
    count = U32(buf, pos)[0]
    pos += 4
    for _ in range(count):
        pos = opaque(buf, pos + 4)  # hint, signature
    return pos


def envelope(buf: bytes, pos: int) -> int:
    t = U32(buf, pos)[0]
    if t == 2:
        return _signatures(buf, _transaction(buf, pos + 4))
    if t == 5:  # fee bump: fee source, fee, inner transaction, extension
        pos = muxed_account(buf, pos + 4) + 8
        if U32(buf, pos)[0] != 2:
            raise Unsupported("fee bump inner transaction type")
        pos = ext_v0(buf, _signatures(buf, _transaction(buf, pos + 4)))
        return _signatures(buf, pos)
    if t == 0:  # v0: ed25519 source, fee, sequence number, time bounds, memo, operations, extension
        pos = _operations(buf, _memo(buf, _time_bounds_optional(buf, pos + 48)))
        return _signatures(buf, ext_v0(buf, pos))
    raise Unsupported(f"envelope type {t}")


def envelopes(buf: bytes, pos: int) -> int:
    count = U32(buf, pos)[0]
    pos += 4
    for _ in range(count):
        pos = envelope(buf, pos)
    return pos


def generalized_tx_set(buf: bytes, pos: int) -> int:
    """GeneralizedTransactionSet v1: previous ledger hash, phases (classic components, or Soroban stages
    of clusters of transactions)."""
    if U32(buf, pos)[0] != 1:
        raise Unsupported("transaction set version")
    count = U32(buf, pos + 36)[0]
    pos += 40
    for _ in range(count):
        v = U32(buf, pos)[0]
        if v == 0:
            components = U32(buf, pos + 4)[0]
            pos += 8
            for _ in range(components):
                if U32(buf, pos)[0] != 0:
                    raise Unsupported("transaction set component type")
                pos = envelopes(buf, pos + 16 if optional(buf, pos + 4) else pos + 8)  # base fee
        elif v == 1:
            pos = pos + 16 if optional(buf, pos + 4) else pos + 8  # base fee
            stages = U32(buf, pos)[0]
            pos += 4
            for _ in range(stages):
                clusters = U32(buf, pos)[0]
                pos += 4
                for _ in range(clusters):
                    pos = envelopes(buf, pos)
        else:
            raise Unsupported(f"transaction phase version {v}")
    return pos


# ---------------------------------------------------------------------------------------------------
# Transaction results
# ---------------------------------------------------------------------------------------------------

def _claim_atoms(buf: bytes, pos: int) -> int:
    count = U32(buf, pos)[0]
    pos += 4
    for _ in range(count):
        t = U32(buf, pos)[0]
        if t == 0:  # v0: seller key, offer id
            pos += 44
        elif t == 1:  # order book: seller account, offer id
            pos = account_id(buf, pos + 4) + 8
        elif t == 2:  # liquidity pool id
            pos += 36
        else:
            raise Unsupported(f"claim atom type {t}")
        pos = asset(buf, asset(buf, pos) + 8) + 8  # sold, amount, bought, amount
    return pos


def _path_payment_result(buf: bytes, pos: int, code: int) -> int:
    if code == 0:  # offers crossed, then the last payment: destination, asset, amount
        return asset(buf, account_id(buf, _claim_atoms(buf, pos))) + 8
    if code == -9:  # no issuer: the asset
        return asset(buf, pos)
    return pos


def _manage_offer_result(buf: bytes, pos: int, code: int) -> int:
    if code != 0:
        return pos
    pos = _claim_atoms(buf, pos)
    effect = U32(buf, pos)[0]
    if effect == 0 or effect == 1:  # created, updated
        return offer_entry(buf, pos + 4)
    if effect == 2:  # deleted
        return pos + 4
    raise Unsupported(f"manage offer effect {effect}")


def _inflation_result(buf: bytes, pos: int, code: int) -> int:
    return pos + 4 + 44 * U32(buf, pos)[0] if code == 0 else pos  # payouts: destination, amount


def _fixed_on_success(size: int) -> Callable[[bytes, int, int], int]:
    return lambda buf, pos, code: pos + size if code == 0 else pos


# Operation results with content, by operation type, from just after their code; the others are a code.
_OPERATION_RESULTS = {
    2: _path_payment_result,
    3: _manage_offer_result,
    4: _manage_offer_result,
    8: _fixed_on_success(8),  # account merge: the source account's balance
    9: _inflation_result,
    12: _manage_offer_result,
    13: _path_payment_result,
    14: _fixed_on_success(36),  # create claimable balance: its id
    24: _fixed_on_success(32),  # invoke host function: the hash of its return value and events
}


def _operation_results(buf: bytes, pos: int) -> int:
    count = U32(buf, pos)[0]
    pos += 4
    for _ in range(count):
        if I32(buf, pos)[0] != 0:  # not opINNER: only a code
            pos += 4
            continue
        t = U32(buf, pos + 4)[0]
        code = I32(buf, pos + 8)[0]
        pos += 12
        if t > 26:
            raise Unsupported(f"operation type {t}")
        result = _OPERATION_RESULTS.get(t)
        if result is not None:
            pos = result(buf, pos, code)
    return pos


def tx_result(buf: bytes, pos: int) -> tuple[int, int]:
    """TransactionResult: fee charged, result, extension. Returns (offset after it, result code)."""
    code = I32(buf, pos + 8)[0]
    pos += 12
    if code == 0 or code == -1:
        pos = _operation_results(buf, pos)
    elif code == 1 or code == -13:  # fee bump: inner hash, fee charged, inner result, extension
        inner = I32(buf, pos + 40)[0]
        pos += 44
        if inner == 0 or inner == -1:
            pos = _operation_results(buf, pos)
        pos = ext_v0(buf, pos)
    return ext_v0(buf, pos), code


# ---------------------------------------------------------------------------------------------------
# Ledger headers, upgrades, consensus messages
# ---------------------------------------------------------------------------------------------------

def header_entry(buf: bytes, pos: int) -> tuple[int, int, int]:
    """LedgerHeaderHistoryEntry: hash, header, extension. Returns (offset after it, ledger sequence,
    close time in unix seconds)."""
    pos += 36  # hash, ledger version
    close_time = U64(buf, pos + 64)[0]  # after the previous ledger hash and the tx set hash
    pos += 72
    count = U32(buf, pos)[0]
    pos += 4
    for _ in range(count):  # upgrades
        pos = opaque(buf, pos)
    v = U32(buf, pos)[0]
    if v == 0:
        pos += 4
    elif v == 1:  # signed: node id, signature
        pos = opaque(buf, account_id(buf, pos + 4))
    elif v == 2:  # empty tx set: tx set hash, previous ledger hash and version, signature
        pos = opaque(buf, account_id(buf, pos + 72))
    else:
        raise Unsupported(f"stellar value type {v}")
    sequence = U32(buf, pos + 64)[0]  # after the tx set result hash and the bucket list hash
    pos += 68 + 8 + 8 + 4 + 8 + 12 + 128  # coins, fee pool, inflation seq, id pool, fees and sizes, skips
    v = U32(buf, pos)[0]
    if v == 1:
        pos = ext_v0(buf, pos + 8)  # flags
    elif v == 0:
        pos += 4
    else:
        raise Unsupported("ledger header extension")
    return ext_v0(buf, pos), sequence, close_time


def upgrades(buf: bytes, pos: int) -> int:
    """UpgradeEntryMeta<>: each upgrade and the ledger entry changes it made."""
    count = U32(buf, pos)[0]
    pos += 4
    for _ in range(count):
        t = U32(buf, pos)[0]
        if t == 6:  # config: contract id, content hash
            pos += 68
        elif 1 <= t <= 7:
            pos += 8
        else:
            raise Unsupported(f"ledger upgrade type {t}")
        pos = changes(buf, pos)
    return pos


def _quorum_set(buf: bytes, pos: int) -> int:
    pos += 4 + 4 + 36 * U32(buf, pos + 4)[0]  # threshold, validators
    count = U32(buf, pos)[0]
    pos += 4
    for _ in range(count):
        pos = _quorum_set(buf, pos)
    return pos


def _ballot(buf: bytes, pos: int) -> int:
    return opaque(buf, pos + 4)  # counter, value


def _values(buf: bytes, pos: int) -> int:
    count = U32(buf, pos)[0]
    pos += 4
    for _ in range(count):
        pos = opaque(buf, pos)
    return pos


def _scp_envelope(buf: bytes, pos: int) -> int:
    pos = account_id(buf, pos) + 8  # node, slot
    t = U32(buf, pos)[0]
    pos += 4
    if t == 0:  # prepare: quorum set hash, ballot, prepared?, prepared prime?, nC, nH
        pos = _ballot(buf, pos + 32)
        for _ in range(2):
            pos = _ballot(buf, pos + 4) if optional(buf, pos) else pos + 4
        pos += 8
    elif t == 1:  # confirm: ballot, nPrepared, nCommit, nH, quorum set hash
        pos = _ballot(buf, pos) + 44
    elif t == 2:  # externalize: commit ballot, nH, commit quorum set hash
        pos = _ballot(buf, pos) + 36
    elif t == 3:  # nominate: quorum set hash, votes, accepted
        pos = _values(buf, _values(buf, pos + 32))
    else:
        raise Unsupported(f"SCP statement type {t}")
    return opaque(buf, pos)  # signature


def scp_history(buf: bytes, pos: int) -> int:
    """SCPHistoryEntry<>: quorum sets and the ledger's SCP messages."""
    count = U32(buf, pos)[0]
    pos += 4
    for _ in range(count):
        if U32(buf, pos)[0] != 0:
            raise Unsupported("SCP history entry version")
        sets = U32(buf, pos + 4)[0]
        pos += 8
        for _ in range(sets):
            pos = _quorum_set(buf, pos)
        messages = U32(buf, pos + 4)[0]  # after the ledger sequence
        pos += 8
        for _ in range(messages):
            pos = _scp_envelope(buf, pos)
    return pos
