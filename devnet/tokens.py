"""The devnet's tokens: Stellar Asset Contracts (SACs), as far as FlowFi uses them.

Two tokens are deployed with the chain, "USDC" and "EURC", issued by a fixed devnet account; their
contract ids are those Stellar derives for the assets on the network's passphrase. Any other contract
address a call names as a token is taken to be a token too (the devnet deploys one there when it is
first used), with the first four characters after the "C" as its asset code.

What each token keeps is what a SAC keeps in its instance storage (soroban-env-host,
builtin_contracts/stellar_asset_contract): `METADATA` {decimal: 7, name: "CODE:ISSUER", symbol:
"CODE"}, `AssetInfo` and `Admin` (the issuer). Balances are not kept: every account holds as much of
every token as a call moves. Allowances are kept simply: every account allows the FlowFi contract an
unlimited amount of every token unless the devnet is told otherwise (`approve`, the devnet's
`POST /allowance`), which create_allowance_stream's `allowance(sender, contract) > 0` check reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from stellar_sdk import Asset, Keypair, StrKey

from devnet.terms import I128_MAX
from devnet.ttl import MIN_PERSISTENT_TTL, Lifetimes
from indexer.networks import LOCAL_PASSPHRASE

ISSUER = Keypair.from_raw_ed25519_seed(hashlib.sha256(b"flowfi devnet token issuer").digest()).public_key
DEFAULT_CODES = ("USDC", "EURC")
DECIMALS = 7  # every SAC's
# A SAC extends its instance on every call (storage_types.rs: 7 days of ledgers, when 6 or less are left).
INSTANCE_TTL_THRESHOLD = 6 * 17_280
INSTANCE_EXTEND_AMOUNT = 7 * 17_280
UNLIMITED = I128_MAX


@dataclass(frozen=True, slots=True)
class Token:
    contract_id: str
    code: str
    issuer: str = ISSUER
    decimals: int = DECIMALS

    @property
    def name(self) -> str:
        """The SAC's name: the asset as SEP-11 writes it, which is also the fourth topic of its transfers."""
        return f"{self.code}:{self.issuer}"

    @property
    def symbol(self) -> str:
        return self.code


class Tokens:
    """The token contracts of a chain, their allowances to spenders, and their instances' lifetimes."""

    def __init__(
        self, passphrase: str = LOCAL_PASSPHRASE, *, ledger: int = 0, min_persistent_ttl: int = MIN_PERSISTENT_TTL
    ) -> None:
        self.lifetimes = Lifetimes(min_persistent_ttl)
        self._tokens: dict[str, Token] = {}
        self._allowances: dict[tuple[str, str, str], int] = {}
        self.defaults = tuple(
            self._deploy(Token(Asset(code, ISSUER).contract_id(passphrase), code), ledger) for code in DEFAULT_CODES
        )

    def get(self, contract_id: str) -> Token | None:
        return self._tokens.get(contract_id)

    def __iter__(self) -> Iterator[Token]:
        return iter(self._tokens.values())

    def used(self, contract_id: str, ledger: int) -> Token:
        """The token at `contract_id`, called by a transaction at `ledger` (deployed there if new): a SAC
        call restores its instance if archived and extends it."""
        token = self._tokens.get(contract_id)
        if token is None:
            if not StrKey.is_valid_contract(contract_id):
                raise ValueError(f"not a contract address: {contract_id!r}")
            token = self._deploy(Token(contract_id, contract_id[1:5]), ledger)
        self.lifetimes.touch([contract_id], ledger)
        self.lifetimes.extend(contract_id, ledger, INSTANCE_TTL_THRESHOLD, INSTANCE_EXTEND_AMOUNT)
        return token

    def _deploy(self, token: Token, ledger: int) -> Token:
        self._tokens[token.contract_id] = token
        self.lifetimes.write(token.contract_id, ledger)
        return token

    def allowance(self, token: str, owner: str, spender: str) -> int:
        return self._allowances.get((token, owner, spender), UNLIMITED)

    def approve(self, token: str, owner: str, spender: str, amount: int) -> None:
        if not 0 <= amount <= I128_MAX:
            raise ValueError(f"an allowance is an amount in [0, 2**127 - 1], not {amount}")
        self._allowances[(token, owner, spender)] = amount
