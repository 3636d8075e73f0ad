"""Addresses are checked and written as stellar-sdk does: on real keys, on every one-character change of
them, and on random text."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st
from stellar_sdk import Keypair, StrKey

from indexer.addresses import ACCOUNT, CONTRACT, is_account, is_contract, strkey

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _keys() -> list[str]:
    accounts = [Keypair.random().public_key for _ in range(5)]
    return accounts + [StrKey.encode_contract(os.urandom(32)) for _ in range(5)]


def test_real_keys_and_each_one_character_change_are_judged_as_stellar_sdk_judges_them() -> None:
    judged = 0
    for key in _keys():
        variants = [key, key.lower(), key[:-1], key + "A", key[:10] + "=" + key[11:], key.replace(key[0], "é", 1)]
        variants += [key[:i] + c + key[i + 1:] for i in (0, 1, 27, 54, 55) for c in ALPHABET if c != key[i]]
        for text in variants:
            assert is_account(text) == StrKey.is_valid_ed25519_public_key(text), text
            assert is_contract(text) == StrKey.is_valid_contract(text), text
            judged += 1
    assert judged > 1_000


@given(st.text(alphabet=ALPHABET + "=a1", min_size=54, max_size=58) | st.text())
def test_random_text_is_judged_as_stellar_sdk_judges_it(text: str) -> None:
    assert is_account(text) == StrKey.is_valid_ed25519_public_key(text)
    assert is_contract(text) == StrKey.is_valid_contract(text)


@given(st.binary(min_size=32, max_size=32))
def test_keys_are_written_as_stellar_sdk_writes_them(key: bytes) -> None:
    assert strkey(ACCOUNT, key) == StrKey.encode_ed25519_public_key(key)
    assert strkey(CONTRACT, key) == StrKey.encode_contract(key)


def test_what_is_not_text_is_no_address() -> None:
    assert not is_account(None) and not is_contract(b"C" * 56) and not is_account(42)
