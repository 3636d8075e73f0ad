"""When each ledger entry was last written and until when it lives: Soroban's TTL rules, per entry.

A new persistent entry lives `min_persistent_ttl` ledgers counting the one that creates it (stellar-core's
initial network setting is 4096). `extend(threshold, extend_to)` (the contract's and the token's
`extend_ttl`) moves an entry's end to `extend_to` ledgers after the current one when it is `threshold`
ledgers or less away. An entry whose end has passed is archived: getLedgerEntries still returns it,
with liveUntilLedgerSeq 0. A transaction that touches an archived entry restores it first, as a
protocol 23 client does with the restore footprint simulation gives it; the devnet does not model
eviction to the hot archive (the entry stays readable the same way either way).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

MIN_PERSISTENT_TTL = 4096


@dataclass(slots=True)
class Lifetime:
    last_modified: int
    live_until: int


class Lifetimes:
    """The lifetimes of a contract's entries, by key (any hashable naming an entry)."""

    def __init__(self, min_persistent_ttl: int = MIN_PERSISTENT_TTL) -> None:
        if min_persistent_ttl < 1:
            raise ValueError("the minimum persistent TTL is at least one ledger")
        self.min_persistent_ttl = min_persistent_ttl
        self._entries: dict[Hashable, Lifetime] = {}

    def get(self, key: Hashable) -> Lifetime | None:
        return self._entries.get(key)

    def items(self) -> list[tuple[Hashable, Lifetime]]:
        return list(self._entries.items())

    def live_until(self, key: Hashable, ledger: int) -> int:
        """The entry's liveUntilLedgerSeq as getLedgerEntries reports it at `ledger`: 0 once archived."""
        lifetime = self._entries[key]
        return 0 if lifetime.live_until < ledger else lifetime.live_until

    def touch(self, keys: Iterable[Hashable], ledger: int) -> None:
        """Restore the archived entries among `keys` (those a transaction at `ledger` reads or writes)."""
        for key in keys:
            lifetime = self._entries.get(key)
            if lifetime is not None and lifetime.live_until < ledger:
                lifetime.live_until = ledger + self.min_persistent_ttl - 1

    def write(self, key: Hashable, ledger: int) -> None:
        lifetime = self._entries.get(key)
        if lifetime is None:
            self._entries[key] = Lifetime(ledger, ledger + self.min_persistent_ttl - 1)
        else:
            lifetime.last_modified = ledger

    def remove(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def extend(self, key: Hashable, ledger: int, threshold: int, extend_to: int) -> None:
        lifetime = self._entries.get(key)
        if lifetime is not None and lifetime.live_until - ledger <= threshold:
            lifetime.live_until = max(lifetime.live_until, ledger + extend_to)
