"""Stellar addresses as text (SEP-23 strkeys): base32 of a version byte, the key, and a CRC16-XModem
checksum (little-endian), unpadded. G... is an account, C... a contract.

Written here rather than taken from stellar-sdk, whose import costs a fifth of a second: settings and
request filters check addresses in every command and request without loading it, and the decoder
names addresses without its per-call overhead. Only the kinds of address this project names are here;
`tests/test_addresses.py` holds them to stellar-sdk's answers.
"""

from __future__ import annotations

import base64
import binascii

ACCOUNT = 6 << 3  # G...
CONTRACT = 2 << 3  # C...
MUXED_ACCOUNT = 12 << 3  # M...
CLAIMABLE_BALANCE = 1 << 3  # B...
LIQUIDITY_POOL = 11 << 3  # L...
_KEY_LENGTH = 56  # characters: version byte, 32-byte key and checksum, 35 bytes in base32 without padding


def strkey(version: int, payload: bytes) -> str:
    data = bytes((version,)) + payload
    check = binascii.crc_hqx(data, 0).to_bytes(2, "little")
    return base64.b32encode(data + check).decode("ascii").rstrip("=")


def is_account(text: object) -> bool:
    """Whether `text` is an account address (G... with a valid checksum)."""
    return _is_key(text, ACCOUNT)


def is_contract(text: object) -> bool:
    """Whether `text` is a contract address (C... with a valid checksum)."""
    return _is_key(text, CONTRACT)


def _is_key(text: object, version: int) -> bool:
    if not isinstance(text, str) or len(text) != _KEY_LENGTH:
        return False
    try:
        data = base64.b32decode(text.encode("ascii"))
    except (ValueError, binascii.Error):  # not ASCII, or not base32 (lower case included)
        return False
    return data[0] == version and binascii.crc_hqx(data[:-2], 0).to_bytes(2, "little") == data[-2:]
