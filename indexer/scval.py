"""Soroban ScVal XDR to plain Python values, tagged with their Soroban type.

A parsed value is a pair `(tag, value)`:

    tag                                   value
    "bool" "void"                         bool, None
    "u32" "i32" "u64" "i64"               int
    "u128" "i128" "u256" "i256"           int
    "timepoint" "duration"                int
    "bytes"                               bytes
    "string" "symbol"                     str (invalid UTF-8 replaced by U+FFFD)
    "address"                             strkey (G..., C..., M..., B..., L...)
    "vec"                                 list of pairs
    "map"                                 list of (key pair, value pair)
    anything else                         its XDR type name, lower case, and None
                                          ("error", "contract_instance", "ledger_key_nonce", ...)

The tag keeps what Python's int would lose (a u64 and an i128 are both ints), so the decoder can check
each field's declared type.

Two parsers give that result:

- `parse_scval`, the one the indexer uses, reads the bytes directly with `struct`. It exists for speed:
  decoding through stellar-sdk's generic XDR classes builds a Python object per XDR node and costs
  ~150 us per FlowFi event, about 25x more than this parser, and ingest must keep up with tens of
  thousands of events per second.
- `parse_scval_sdk` does the same through stellar-sdk. It is the reference: the tests prove, on the
  FlowFi test vectors, real RPC responses, random values and random corruptions of them, that both
  return the same value for every input, or both raise `ScValError`.

What is accepted: the canonical XDR encoding (RFC 4506) of one SCVal, in base64 with its padding and
nothing after it. Every discriminant is in range, bools and "is present" flags are 0 or 1, padding bytes
are zero, a Symbol holds at most 32 bytes. stellar-sdk's decoder alone is laxer (it reads any non-zero
bool as true and never looks at padding), so the reference path re-encodes what it decoded and rejects
input that does not come back byte for byte. Values nested deeper than stellar-sdk allows are rejected.

The fast parser reads every type itself except two rare cases it hands to the reference path, so that
it need not re-implement them: a contract instance (found in ledger entries, not in events), and
containers nested more than `_FAST_DEPTH` levels deep.
"""

from __future__ import annotations

import base64
import binascii
import struct
from typing import Any

from stellar_sdk import Address, xdr

from indexer.addresses import ACCOUNT, CLAIMABLE_BALANCE, CONTRACT, LIQUIDITY_POOL, MUXED_ACCOUNT, strkey

Sc = tuple[str, Any]


class ScValError(ValueError):
    """The text is not a valid base64 ScVal."""


# ---------------------------------------------------------------------------------------------------
# The fast parser
# ---------------------------------------------------------------------------------------------------

# Fixed-width big-endian readers: each returns a tuple and raises struct.error when the input is short.
_U32 = struct.Struct(">I").unpack_from
_I32 = struct.Struct(">i").unpack_from
_U64 = struct.Struct(">Q").unpack_from
_I64 = struct.Struct(">q").unpack_from
_U32_PAIR = struct.Struct(">II").unpack_from
_U32_TRIPLE = struct.Struct(">III").unpack_from
_U128 = struct.Struct(">QQ").unpack_from
_I128 = struct.Struct(">qQ").unpack_from
_U256 = struct.Struct(">QQQQ").unpack_from
_I256 = struct.Struct(">qQQQ").unpack_from

# The zero bytes that pad an n-byte string or opaque to a multiple of 4, by (padded end - end).
_PADDING = (b"", b"\0", b"\0\0", b"\0\0\0")

_SYMBOL_MAX = 32  # SCSYMBOL_LIMIT

# Containers nested deeper than this go to the reference path, which enforces stellar-sdk's depth limit
# (512 units, 2-3 per container level): 64 levels cost at most 192, so stellar-sdk never refuses a
# value the fast parser accepts, and Python's recursion limit is never near.
_FAST_DEPTH = 64

# SCAddress in XDR: a 4-byte type, then per type (size of the whole encoding, strkey version byte):
#   0 account:           key type (4 bytes, 0 = ed25519) + 32-byte key           40  G
#   1 contract:          32-byte contract id                                     36  C
#   2 muxed account:     8-byte id + 32-byte ed25519 key                          44  M (key then id)
#   3 claimable balance: id type (4 bytes, 0 = v0) + 32-byte hash                 40  B (1-byte type + hash)
#   4 liquidity pool:    32-byte pool id                                          36  L
ADDRESS_SIZE = (40, 36, 44, 40, 36)
_ZERO_WORD = b"\0\0\0\0"

# Parsed Symbols and Addresses by their XDR bytes (type word included). Both recur: every event repeats
# its field names, and a stream's sender, recipient and token appear in each of its events. A hit costs
# one slice and one dict lookup instead of UTF-8 decoding or base32 + CRC16 (~2 us), and returns a
# shared, immutable output pair. Only validated encodings go in, so a hit also means the bytes are
# valid. Each cache is emptied when full (a full address cache holds ~18 MB).
_SYMBOL_CACHE_MAX = 4_096
_ADDRESS_CACHE_MAX = 65_536
_symbol_cache: dict[bytes, Sc] = {}
_address_cache: dict[bytes, Sc] = {}


class _Unsupported(Exception):
    """A value the fast parser leaves to the reference path."""


def parse_scval(b64: str) -> Sc:
    """Parse one base64 ScVal. Raises ScValError when it is not one."""
    try:
        buf = binascii.a2b_base64(b64, strict_mode=True)
        sc, end = _parse(buf, 0, 0)
    except ScValError:
        raise
    except _Unsupported:
        return parse_scval_sdk(b64)
    except struct.error as exc:
        raise ScValError("not a base64 ScVal: truncated") from exc
    except (binascii.Error, ValueError, TypeError) as exc:  # bad base64, non-ASCII text, not text
        raise ScValError(f"not a base64 ScVal: {exc}") from exc
    if end != len(buf):
        raise ScValError(f"not a base64 ScVal: {len(buf) - end} trailing bytes")
    return sc


_CONTRACT_DATA = 6  # LedgerEntryType


def parse_contract_data(b64: str) -> tuple[Sc, Sc]:
    """The key and value of a base64 LedgerEntryData holding contract data (what getLedgerEntries returns
    for a contract's storage entry), read without stellar-sdk: a stored stream costs ~1 ms through its
    XDR classes, and a page of creations asks for hundreds. An entry the fast parser does not read (a
    contract instance) goes through stellar-sdk. Raises ScValError when it is not contract data."""
    try:
        buf = binascii.a2b_base64(b64, strict_mode=True)
        entry_type, extension, address_kind = _U32_TRIPLE(buf, 0)
        if entry_type != _CONTRACT_DATA or extension != 0 or address_kind > 4:
            raise ScValError("not contract data")
        key, pos = _parse(buf, 8 + ADDRESS_SIZE[address_kind], 0)
        value, end = _parse(buf, pos + 4, 0)  # after the durability
    except ScValError:
        raise
    except _Unsupported:
        try:
            entry = xdr.LedgerEntryData.from_xdr_bytes(buf)
            canonical = entry.to_xdr_bytes() == buf
        except Exception as exc:  # the XDR runtime raises bare errors of several kinds on bad input
            raise ScValError(f"not contract data: {exc}") from exc
        if not canonical:  # stellar-sdk alone reads any non-zero bool as true, and never looks at padding
            raise ScValError("not contract data: not the canonical encoding (bool, flag or padding)") from None
        data = entry.contract_data
        if data is None:
            raise ScValError("not contract data") from None
        return from_xdr(data.key), from_xdr(data.val)
    except (struct.error, IndexError) as exc:
        raise ScValError("not contract data: truncated") from exc
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ScValError(f"not contract data: {exc}") from exc
    if end != len(buf):
        raise ScValError(f"not contract data: {len(buf) - end} trailing bytes")
    return key, value


def _parse(buf: bytes, pos: int, depth: int) -> tuple[Sc, int]:
    """The ScVal at `pos` and the offset just after it. The branches go by how often FlowFi events use
    each type (Symbol keys, Address, i128, u64, the map itself) so the common ones test least."""
    t = _U32(buf, pos)[0]
    pos += 4
    if t == 15:  # SCV_SYMBOL
        n = _U32(buf, pos)[0]
        start = pos + 4
        end = start + n
        padded_end = (end + 3) & ~3
        sc = _symbol_cache.get(buf[pos - 4 : padded_end])
        if sc is not None:
            return sc, padded_end
        if n > _SYMBOL_MAX:
            raise ScValError(f"not a base64 ScVal: symbol of {n} bytes")
        if padded_end > len(buf):
            raise ScValError("not a base64 ScVal: truncated")
        if buf[end:padded_end] != _PADDING[padded_end - end]:
            raise ScValError("not a base64 ScVal: non-zero padding")
        sc = ("symbol", buf[start:end].decode("utf-8", "replace"))
        if len(_symbol_cache) >= _SYMBOL_CACHE_MAX:
            _symbol_cache.clear()
        _symbol_cache[buf[pos - 4 : padded_end]] = sc
        return sc, padded_end
    if t == 18:  # SCV_ADDRESS
        kind = _U32(buf, pos)[0]
        if kind > 4:
            raise ScValError(f"not a base64 ScVal: address type {kind}")
        end = pos + ADDRESS_SIZE[kind]
        key = buf[pos:end]
        sc = _address_cache.get(key)
        if sc is None:
            sc = _address(key)
        return sc, end
    if t == 10:  # SCV_I128
        hi, lo = _I128(buf, pos)
        return ("i128", (hi << 64) | lo), pos + 16
    if t == 5:  # SCV_U64
        return ("u64", _U64(buf, pos)[0]), pos + 8
    if t == 3:  # SCV_U32
        return ("u32", _U32(buf, pos)[0]), pos + 4
    if t == 17 or t == 16:  # SCV_MAP, SCV_VEC: an optional (flag 0/1) array
        present = _U32(buf, pos)[0]
        pos += 4
        if present == 0:
            return ("map" if t == 17 else "vec", []), pos
        if present != 1:
            raise ScValError(f"not a base64 ScVal: optional flag {present}")
        count = _U32(buf, pos)[0]
        pos += 4
        if count > len(buf) - pos:  # each element takes at least 4 bytes
            raise ScValError("not a base64 ScVal: truncated")
        if depth >= _FAST_DEPTH:
            raise _Unsupported
        depth += 1
        items: list[Any] = []
        append = items.append
        if t == 17:
            for _ in range(count):
                # Map keys are nearly always Symbols seen before: look them up without a call. A key
                # is followed by a value, so 8 bytes are there to read unless the input is truncated.
                key_type, n = _U32_PAIR(buf, pos)
                if key_type == 15:
                    end = pos + 8 + ((n + 3) & ~3)
                    key_sc = _symbol_cache.get(buf[pos:end])
                    if key_sc is None:
                        key_sc, end = _parse(buf, pos, depth)
                    pos = end
                else:
                    key_sc, pos = _parse(buf, pos, depth)
                val_sc, pos = _parse(buf, pos, depth)
                append((key_sc, val_sc))
            return ("map", items), pos
        for _ in range(count):
            item, pos = _parse(buf, pos, depth)
            append(item)
        return ("vec", items), pos
    if t == 0:  # SCV_BOOL
        b = _U32(buf, pos)[0]
        if b > 1:
            raise ScValError(f"not a base64 ScVal: bool {b}")
        return ("bool", b == 1), pos + 4
    if t == 1:  # SCV_VOID
        return ("void", None), pos
    if t == 6:  # SCV_I64
        return ("i64", _I64(buf, pos)[0]), pos + 8
    if t == 4:  # SCV_I32
        return ("i32", _I32(buf, pos)[0]), pos + 4
    if t == 7:  # SCV_TIMEPOINT
        return ("timepoint", _U64(buf, pos)[0]), pos + 8
    if t == 8:  # SCV_DURATION
        return ("duration", _U64(buf, pos)[0]), pos + 8
    if t == 9:  # SCV_U128
        hi, lo = _U128(buf, pos)
        return ("u128", (hi << 64) | lo), pos + 16
    if t == 11:  # SCV_U256
        a, b, c, d = _U256(buf, pos)
        return ("u256", (a << 192) | (b << 128) | (c << 64) | d), pos + 32
    if t == 12:  # SCV_I256
        a, b, c, d = _I256(buf, pos)
        return ("i256", (a << 192) | (b << 128) | (c << 64) | d), pos + 32
    if t == 13 or t == 14 or t == 22:  # SCV_BYTES, SCV_STRING, SCV_EXECUTABLE_TAG: length-prefixed
        n = _U32(buf, pos)[0]
        start = pos + 4
        end = start + n
        pos = (end + 3) & ~3
        if pos > len(buf):
            raise ScValError("not a base64 ScVal: truncated")
        if buf[end:pos] != _PADDING[pos - end]:
            raise ScValError("not a base64 ScVal: non-zero padding")
        if t == 13:
            return ("bytes", buf[start:end]), pos
        if t == 14:
            return ("string", buf[start:end].decode("utf-8", "replace")), pos
        return ("executable_tag", None), pos
    if t == 2:  # SCV_ERROR: SCErrorType (0..9), then a u32 contract code (type 0) or an SCErrorCode (0..9)
        kind, code = _U32_PAIR(buf, pos)
        if kind > 9 or (kind != 0 and code > 9):
            raise ScValError("not a base64 ScVal: bad error value")
        return ("error", None), pos + 8
    if t == 20:  # SCV_LEDGER_KEY_CONTRACT_INSTANCE
        return ("ledger_key_contract_instance", None), pos
    if t == 21:  # SCV_LEDGER_KEY_NONCE: an int64
        _I64(buf, pos)
        return ("ledger_key_nonce", None), pos + 8
    if t == 19:  # SCV_CONTRACT_INSTANCE: an executable and a storage map, never in FlowFi events
        raise _Unsupported
    raise ScValError(f"not a base64 ScVal: type {t}")


def address_of(key: bytes) -> str:
    """The strkey of an SCAddress's XDR bytes (type word first). Raises ScValError when they are not one."""
    sc = _address_cache.get(key)
    return (sc or _address(key))[1]


def _address(key: bytes) -> Sc:
    """The parsed form of an SCAddress's XDR bytes (type word first), validated and cached."""
    kind = key[3]
    if len(key) != ADDRESS_SIZE[kind]:
        raise ScValError("not a base64 ScVal: truncated")
    if kind == 0:
        if key[4:8] != _ZERO_WORD:
            raise ScValError("not a base64 ScVal: public key type")
        text = strkey(ACCOUNT, key[8:])
    elif kind == 1:
        text = strkey(CONTRACT, key[4:])
    elif kind == 2:
        text = strkey(MUXED_ACCOUNT, key[12:] + key[4:12])
    elif kind == 3:
        if key[4:8] != _ZERO_WORD:
            raise ScValError("not a base64 ScVal: claimable balance id type")
        text = strkey(CLAIMABLE_BALANCE, key[7:])
    else:
        text = strkey(LIQUIDITY_POOL, key[4:])
    sc = ("address", text)
    if len(_address_cache) >= _ADDRESS_CACHE_MAX:
        _address_cache.clear()
    _address_cache[key] = sc
    return sc


# ---------------------------------------------------------------------------------------------------
# The reference parser (stellar-sdk)
# ---------------------------------------------------------------------------------------------------

_INT_PARTS: dict[xdr.SCValType, tuple[str, str]] = {
    xdr.SCValType.SCV_U32: ("u32", "u32"),
    xdr.SCValType.SCV_I32: ("i32", "i32"),
    xdr.SCValType.SCV_U64: ("u64", "u64"),
    xdr.SCValType.SCV_I64: ("i64", "i64"),
    xdr.SCValType.SCV_TIMEPOINT: ("timepoint", "timepoint"),
    xdr.SCValType.SCV_DURATION: ("duration", "duration"),
}


def parse_scval_sdk(b64: str) -> Sc:
    """`parse_scval` through stellar-sdk's XDR classes: slow, the reference the fast parser matches."""
    try:
        raw = base64.b64decode(b64, validate=True)
        value = xdr.SCVal.from_xdr_bytes(raw)
        canonical = value.to_xdr_bytes() == raw
    except (binascii.Error, ValueError, IndexError, EOFError, TypeError) as exc:
        raise ScValError(f"not a base64 ScVal: {exc}") from exc
    except Exception as exc:  # the XDR runtime raises bare errors of several kinds on short input
        raise ScValError(f"not a base64 ScVal: {exc!r}") from exc
    if not canonical:
        raise ScValError("not a base64 ScVal: not the canonical encoding (bool, flag or padding)")
    return from_xdr(value)


def from_xdr(value: xdr.SCVal) -> Sc:
    """The tagged form of a stellar-sdk SCVal."""
    t = value.type
    T = xdr.SCValType
    v: Any = value  # the union's arms are all Optional to the type checker; `t` says which one is set
    if t == T.SCV_BOOL:
        return "bool", bool(v.b)
    if t == T.SCV_VOID:
        return "void", None
    if t in _INT_PARTS:
        tag, attr = _INT_PARTS[t]
        return tag, _unwrap_int(getattr(v, attr))
    if t == T.SCV_U128:
        return "u128", (v.u128.hi.uint64 << 64) | v.u128.lo.uint64
    if t == T.SCV_I128:
        return "i128", (v.i128.hi.int64 << 64) | v.i128.lo.uint64
    if t == T.SCV_U256:
        u = v.u256
        return "u256", _from_words(u.hi_hi.uint64, u.hi_lo.uint64, u.lo_hi.uint64, u.lo_lo.uint64)
    if t == T.SCV_I256:
        i = v.i256
        return "i256", _from_words(i.hi_hi.int64, i.hi_lo.uint64, i.lo_hi.uint64, i.lo_lo.uint64)
    if t == T.SCV_BYTES:
        return "bytes", bytes(v.bytes.sc_bytes)
    if t == T.SCV_STRING:
        return "string", bytes(v.str.sc_string).decode("utf-8", "replace")
    if t == T.SCV_SYMBOL:
        return "symbol", bytes(v.sym.sc_symbol).decode("utf-8", "replace")
    if t == T.SCV_ADDRESS:
        return "address", Address.from_xdr_sc_address(v.address).address
    if t == T.SCV_VEC:
        return "vec", [from_xdr(item) for item in (v.vec.sc_vec if v.vec else [])]
    if t == T.SCV_MAP:
        return "map", [(from_xdr(e.key), from_xdr(e.val)) for e in (v.map.sc_map if v.map else [])]
    return t.name.removeprefix("SCV_").lower(), None


def _from_words(*words: int) -> int:
    """The integer whose 64-bit words, most significant first, these are."""
    result = 0
    for w in words:
        result = (result << 64) | w
    return result


def _unwrap_int(inner: Any) -> int:
    while not isinstance(inner, int):
        # Uint32/Int64/TimePoint/Duration wrap their int one or two levels deep.
        inner = next(v for k, v in vars(inner).items() if not k.startswith("_"))
    return inner


# ---------------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------------

_JSON_AS_IS = frozenset(("u32", "i32", "bool", "void", "string", "symbol", "address"))
_JSON_DECIMAL = frozenset(("u64", "i64", "u128", "i128", "u256", "i256", "timepoint", "duration"))
_TEXT_KEYS = frozenset(("symbol", "string"))


def to_json(sc: Sc) -> Any:
    """The JSON form of a parsed value: 32-bit ints as numbers, wider ints as decimal strings,
    bytes as hex, maps with text keys as objects (others as [key, value] pairs), and the types not
    expanded as {"type": tag}."""
    tag, value = sc
    if tag in _JSON_AS_IS:
        return value
    if tag in _JSON_DECIMAL:
        return str(value)
    if tag == "map":
        for key, _ in value:
            if key[0] not in _TEXT_KEYS:
                return [[to_json(k), to_json(v)] for k, v in value]
        # The fields of an event: convert scalars here rather than by a call each.
        return {
            k[1]: v[1] if v[0] in _JSON_AS_IS else str(v[1]) if v[0] in _JSON_DECIMAL else to_json(v)
            for k, v in value
        }
    if tag == "vec":
        return [to_json(item) for item in value]
    if tag == "bytes":
        return value.hex()
    return {"type": tag}
