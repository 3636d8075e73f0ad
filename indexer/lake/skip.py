"""Stepping over the XDR of a ledger that the event reader does not need, without building it.

XDR carries no lengths for its structures: to reach the transaction metas of a LedgerCloseMeta, a reader
must walk the transaction set before them, and to reach the next transaction it must walk every ledger
entry change of this one. stellar-sdk builds a Python object for each node it passes (~0.4 s for a
ledger of 500 Soroban transactions); the functions here only move an offset. Each takes the buffer and
the offset where a value starts and returns the offset just after it.

They follow the XDR of stellar-core's `Stellar-*.x` files (protocol 28), and check every discriminant
that decides the layout: a union arm or optional flag they do not know raises `Unsupported`, and the
caller hands the whole ledger to stellar-sdk, which knows every arm it ships and says precisely what is
wrong when the input is corrupt. A buffer that ends too soon raises `struct.error`. Values are not
checked (stellar-sdk's decoder does not check most of them either); a ledger's walk must end exactly
where its record ends, which a misread length or arm would not survive.
"""

from __future__ import annotations

import struct

U32 = struct.Struct(">I").unpack_from
U32_PAIR = struct.Struct(">II").unpack_from
U32_TRIPLE = struct.Struct(">III").unpack_from
U64 = struct.Struct(">Q").unpack_from
I32 = struct.Struct(">i").unpack_from


class Unsupported(Exception):
    """A discriminant this walker does not know: the ledger goes to stellar-sdk."""


def opaque(buf: bytes, pos: int) -> int:
    """A variable-length opaque or string: a length, the bytes, zero padding to a multiple of 4."""
    return pos + 4 + ((U32(buf, pos)[0] + 3) & ~3)


def optional(buf: bytes, pos: int) -> bool:
    flag = U32(buf, pos)[0]
    if flag > 1:
        raise Unsupported(f"optional flag {flag}")
    return flag == 1


# ---------------------------------------------------------------------------------------------------
# Keys, accounts, assets
# ---------------------------------------------------------------------------------------------------

def account_id(buf: bytes, pos: int) -> int:
    """PublicKey (AccountID, NodeID): type 0 (ed25519) and 32 bytes."""
    if U32(buf, pos)[0] != 0:
        raise Unsupported("public key type")
    return pos + 36


def muxed_account(buf: bytes, pos: int) -> int:
    t = U32(buf, pos)[0]
    if t == 0:
        return pos + 36
    if t == 0x100:
        return pos + 44
    raise Unsupported(f"muxed account type {t}")


_ASSET_SIZE = (4, 44, 52)  # native; alphanum4 (code, issuer); alphanum12


def asset(buf: bytes, pos: int) -> int:
    t = U32(buf, pos)[0]
    if t > 2:
        raise Unsupported(f"asset type {t}")
    return pos + _ASSET_SIZE[t]


def change_trust_asset(buf: bytes, pos: int) -> int:
    if U32(buf, pos)[0] != 3:
        return asset(buf, pos)
    if U32(buf, pos + 4)[0] != 0:  # LiquidityPoolParameters: only constant product
        raise Unsupported("liquidity pool type")
    return _pool_params(buf, pos + 8)


def _pool_params(buf: bytes, pos: int) -> int:
    """LiquidityPoolConstantProductParameters: two assets and a fee."""
    return asset(buf, asset(buf, pos)) + 4


def _trustline_asset(buf: bytes, pos: int) -> int:
    if U32(buf, pos)[0] == 3:  # pool share: a pool id
        return pos + 36
    return asset(buf, pos)


def signer_key(buf: bytes, pos: int) -> int:
    t = U32(buf, pos)[0]
    if t < 3:  # ed25519, pre-auth tx, hash(x)
        return pos + 36
    if t == 3:  # ed25519 signed payload
        return opaque(buf, pos + 36)
    raise Unsupported(f"signer key type {t}")


def claimable_balance_id(buf: bytes, pos: int) -> int:
    if U32(buf, pos)[0] != 0:
        raise Unsupported("claimable balance id type")
    return pos + 36


_SC_ADDRESS_SIZE = (40, 36, 44, 40, 36)  # account, contract, muxed account, claimable balance, pool


def sc_address(buf: bytes, pos: int) -> int:
    t = U32(buf, pos)[0]
    if t > 4:
        raise Unsupported(f"address type {t}")
    return pos + _SC_ADDRESS_SIZE[t]


def _claim_predicate(buf: bytes, pos: int) -> int:
    t = U32(buf, pos)[0]
    pos += 4
    if t == 0:  # unconditional
        return pos
    if t == 1 or t == 2:  # and, or
        count = U32(buf, pos)[0]
        pos += 4
        for _ in range(count):
            pos = _claim_predicate(buf, pos)
        return pos
    if t == 3:  # not
        return _claim_predicate(buf, pos + 4) if optional(buf, pos) else pos + 4
    if t == 4 or t == 5:  # before an absolute or relative time
        return pos + 8
    raise Unsupported(f"claim predicate type {t}")


def claimants(buf: bytes, pos: int) -> int:
    count = U32(buf, pos)[0]
    pos += 4
    for _ in range(count):
        if U32(buf, pos)[0] != 0:
            raise Unsupported("claimant type")
        pos = _claim_predicate(buf, account_id(buf, pos + 4))
    return pos


# ---------------------------------------------------------------------------------------------------
# Soroban values
# ---------------------------------------------------------------------------------------------------

# The size of each ScVal type whose size does not depend on its content, its type word included:
# bool, void, u32, i32, u64, i64, timepoint, duration, u128, i128, u256, i256, error, ledger key
# contract instance, ledger key nonce.
_SCVAL_SIZE = {0: 8, 1: 4, 2: 12, 3: 8, 4: 8, 5: 12, 6: 12, 7: 12, 8: 12, 9: 20, 10: 20, 11: 36, 12: 36,
               20: 4, 21: 12}


def scval(buf: bytes, pos: int) -> int:
    t = U32(buf, pos)[0]
    size = _SCVAL_SIZE.get(t)
    if size is not None:
        if t == 2 and U32(buf, pos + 4)[0] > 9:  # SCError: a type (0-9) and a code
            raise Unsupported("error type")
        return pos + size
    if t == 15 or t == 14 or t == 13 or t == 22:  # symbol, string, bytes, executable tag
        return pos + 8 + ((U32(buf, pos + 4)[0] + 3) & ~3)
    if t == 18:
        return sc_address(buf, pos + 4)
    if t == 16:  # vec
        if not optional(buf, pos + 4):
            return pos + 8
        count = U32(buf, pos + 8)[0]
        pos += 12
        for _ in range(count):
            pos = scval(buf, pos)
        return pos
    if t == 17:  # map
        return _scmap(buf, pos + 8) if optional(buf, pos + 4) else pos + 8
    if t == 19:  # contract instance: executable, optional storage map
        pos = executable(buf, pos + 4)
        return _scmap(buf, pos + 4) if optional(buf, pos) else pos + 4
    raise Unsupported(f"ScVal type {t}")


def _scmap(buf: bytes, pos: int) -> int:
    count = U32(buf, pos)[0]
    pos += 4
    for _ in range(count):
        pos = scval(buf, scval(buf, pos))
    return pos


def scvals(buf: bytes, pos: int) -> int:
    """An array of ScVals."""
    count = U32(buf, pos)[0]
    pos += 4
    for _ in range(count):
        pos = scval(buf, pos)
    return pos


def executable(buf: bytes, pos: int) -> int:
    t = U32(buf, pos)[0]
    if t == 0:  # wasm hash
        return pos + 36
    if t == 1:  # stellar asset
        return pos + 4
    if t == 2:  # external reference: owner address, tag string
        return opaque(buf, sc_address(buf, pos + 4))
    raise Unsupported(f"contract executable type {t}")


# ---------------------------------------------------------------------------------------------------
# Ledger keys and entries
# ---------------------------------------------------------------------------------------------------

def ledger_key(buf: bytes, pos: int) -> int:
    t = U32(buf, pos)[0]
    pos += 4
    if t == 6:  # contract data: address, key, durability
        return scval(buf, sc_address(buf, pos)) + 4
    if t == 9 or t == 7 or t == 5:  # ttl (key hash), contract code (hash), liquidity pool (id)
        return pos + 32
    if t == 0:
        return account_id(buf, pos)
    if t == 1:
        return _trustline_asset(buf, account_id(buf, pos))
    if t == 2:  # offer: seller, offer id
        return account_id(buf, pos) + 8
    if t == 3:  # data: account, name
        return opaque(buf, account_id(buf, pos))
    if t == 4:
        return claimable_balance_id(buf, pos)
    if t == 8:  # config setting id
        return pos + 4
    raise Unsupported(f"ledger key type {t}")


def ledger_keys(buf: bytes, pos: int) -> int:
    count = U32(buf, pos)[0]
    pos += 4
    for _ in range(count):
        pos = ledger_key(buf, pos)
    return pos


def _sponsorship(buf: bytes, pos: int) -> int:
    """SponsorshipDescriptor: an optional account id."""
    return account_id(buf, pos + 4) if optional(buf, pos) else pos + 4


def ext_v0(buf: bytes, pos: int) -> int:
    """An extension point (a union with only arm 0, void)."""
    if U32(buf, pos)[0] != 0:
        raise Unsupported("extension version")
    return pos + 4


_ACCOUNT_MIDDLE = struct.Struct(">IIIIII").unpack_from


def _account_entry(buf: bytes, pos: int) -> int:
    """AccountEntry: id, balance, sequence number, sub-entries, inflation destination?, flags, home domain,
    thresholds, signers, extensions (v1: liabilities; v2: sponsorships; v3: sequence ledger and time)."""
    if U32(buf, pos)[0] != 0:
        raise Unsupported("account id type")
    inflation, _, domain, _, signers, v = _ACCOUNT_MIDDLE(buf, pos + 56)
    if inflation == 0 and domain == 0 and signers == 0:  # the usual account: read in one go
        pos += 76
    else:
        if inflation > 1:
            raise Unsupported("inflation destination flag")
        pos = account_id(buf, pos + 60) if inflation else pos + 60
        pos += 12 + ((U32(buf, pos + 4)[0] + 3) & ~3)  # flags, home domain, thresholds
        signers, = U32(buf, pos)
        pos += 4
        for _ in range(signers):
            pos = signer_key(buf, pos) + 4
        v, = U32(buf, pos)
    if v == 0:
        return pos + 4
    if v != 1:
        raise Unsupported("account entry extension")
    v, = U32(buf, pos + 20)  # after the liabilities
    if v == 0:
        return pos + 24
    if v != 2:
        raise Unsupported("account entry extension v1")
    count, = U32(buf, pos + 32)  # after the sponsored and sponsoring counts
    pos += 36
    for _ in range(count):
        pos = _sponsorship(buf, pos)
    v, = U32(buf, pos)
    if v == 0:
        return pos + 4
    if v != 3:
        raise Unsupported("account entry extension v2")
    return ext_v0(buf, pos + 4) + 12  # sequence ledger and time


def _trustline_entry(buf: bytes, pos: int) -> int:
    pos = _trustline_asset(buf, account_id(buf, pos)) + 20  # balance, limit, flags
    v = U32(buf, pos)[0]
    if v == 0:
        return pos + 4
    if v != 1:
        raise Unsupported("trustline extension")
    pos += 20  # liabilities
    v = U32(buf, pos)[0]
    if v == 0:
        return pos + 4
    if v != 2:
        raise Unsupported("trustline extension v1")
    return ext_v0(buf, pos + 8)  # pool use count


def offer_entry(buf: bytes, pos: int) -> int:
    """Seller, offer id, selling, buying, amount, price, flags, extension."""
    return ext_v0(buf, asset(buf, asset(buf, account_id(buf, pos) + 8)) + 20)


def _ledger_entry(buf: bytes, pos: int) -> int:
    """LedgerEntry: last modified ledger, data, extension."""
    return _entry_ext(buf, _entry_data(buf, pos + 8, U32(buf, pos + 4)[0]))


def _entry_data(buf: bytes, pos: int, t: int) -> int:
    """LedgerEntryData of type t, from just after its type word."""
    if t == 6:  # contract data: extension, address, key, durability, value
        return scval(buf, scval(buf, sc_address(buf, ext_v0(buf, pos))) + 4)
    if t == 0:
        return _account_entry(buf, pos)
    if t == 9:  # ttl: key hash, live until
        return pos + 36
    if t == 1:
        return _trustline_entry(buf, pos)
    if t == 7:  # contract code: extension (v1: cost inputs), hash, code
        v = U32(buf, pos)[0]
        if v == 1:
            pos = ext_v0(buf, ext_v0(buf, pos + 4)) + 40
        elif v == 0:
            pos += 4
        else:
            raise Unsupported("contract code extension")
        return opaque(buf, pos + 32)
    if t == 2:
        return offer_entry(buf, pos)
    if t == 3:  # data: account, name, value, extension
        return ext_v0(buf, opaque(buf, opaque(buf, account_id(buf, pos))))
    if t == 4:  # claimable balance: id, claimants, asset, amount, extension
        pos = asset(buf, claimants(buf, claimable_balance_id(buf, pos))) + 8
        v = U32(buf, pos)[0]
        if v == 1:
            return ext_v0(buf, pos + 4) + 4  # flags
        if v == 0:
            return pos + 4
        raise Unsupported("claimable balance extension")
    if t == 5:  # liquidity pool: id, constant-product body
        if U32(buf, pos + 32)[0] != 0:
            raise Unsupported("liquidity pool type")
        return _pool_params(buf, pos + 36) + 32  # reserves, shares, trustline count
    if t == 8:
        return _config_setting(buf, pos)
    raise Unsupported(f"ledger entry type {t}")


def _entry_ext(buf: bytes, pos: int) -> int:
    """LedgerEntry's extension: v1 names the entry's sponsor."""
    v, = U32(buf, pos)
    if v == 0:
        return pos + 4
    if v != 1:
        raise Unsupported("ledger entry extension")
    return ext_v0(buf, _sponsorship(buf, pos + 4))


# ConfigSettingEntry arms by setting id, their id word included: the fixed-size ones, then the arrays.
_CONFIG_SETTING_SIZE = {
    0: 8, 1: 32, 2: 88, 3: 12, 4: 16, 5: 20, 8: 8, 9: 8, 10: 52, 11: 8, 13: 20, 14: 8, 15: 16, 16: 24,
}


def _config_setting(buf: bytes, pos: int) -> int:
    t = U32(buf, pos)[0]
    size = _CONFIG_SETTING_SIZE.get(t)
    if size is not None:
        return pos + size
    pos += 4
    if t == 6 or t == 7:  # contract cost parameters: extension, constant term, linear term
        return pos + 4 + 20 * U32(buf, pos)[0]
    if t == 12:  # live Soroban state size window: u64s
        return pos + 4 + 8 * U32(buf, pos)[0]
    if t == 19 or t == 20:  # freeze-bypass transactions (a list of hashes; a delta: two lists)
        for _ in range(t - 18):
            pos += 4 + 32 * U32(buf, pos)[0]
        return pos
    if t == 17 or t == 18:  # frozen ledger keys (encoded keys; a delta: two lists)
        for _ in range(t - 16):
            count = U32(buf, pos)[0]
            pos += 4
            for _ in range(count):
                pos = opaque(buf, pos)
        return pos
    raise Unsupported(f"config setting {t}")


def ledger_entries(buf: bytes, pos: int) -> int:
    count = U32(buf, pos)[0]
    pos += 4
    for _ in range(count):
        pos = _ledger_entry(buf, pos)
    return pos


def changes(buf: bytes, pos: int) -> int:
    """LedgerEntryChanges: created, updated, state and restored carry an entry, removed a key."""
    count = U32(buf, pos)[0]
    pos += 4
    for _ in range(count):
        change, _, t = U32_TRIPLE(buf, pos)  # change type, then an entry's last modified ledger and type
        if change == 2:
            pos = ledger_key(buf, pos + 4)
        elif change <= 4:
            pos = _entry_ext(buf, _entry_data(buf, pos + 12, t))
        else:
            raise Unsupported(f"ledger entry change type {change}")
    return pos
