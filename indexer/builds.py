"""The contract's builds, as data: the rules that differ between them where an event alone cannot tell.

The deployed build is not named on chain, and the contract can be upgraded in place (contract_upgraded,
then state_migrated) at the same address. The build in force at a ledger is the configured one
(`FLOWFI_CONTRACT_BUILD`, for the code the contract ran before any upgrade the index has seen), and
after a code upgrade, code this indexer cannot name: it follows the newest build's rules.

Most differences need no rule: an event says enough (a resume of a cancelled stream exists only in
8723543; the events 8723543 lacks appear only later). The one that does: whether a plain stream_created
may hide a cliff kept in storage only (8723543 has no cliffs, later builds do).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Build:
    name: str
    hides_cliffs: bool  # stream_created may come from create_stream_with_cliff or batch_create_streams


BUILDS = {
    "8723543": Build("8723543", hides_cliffs=False),
    "c9f5d2e": Build("c9f5d2e", hides_cliffs=True),
}
NEWEST = BUILDS["c9f5d2e"]


def build_name(value: str) -> str:
    """`value`, a build's name; ValueError naming the builds when it is none."""
    if value not in BUILDS:
        raise ValueError(f"{value!r} is not a build of the contract; one of {', '.join(BUILDS)}")
    return value


class History:
    """The builds in force over one contract's history: `first` until its first code upgrade (by event
    id), the newest rules after."""

    def __init__(self, first: Build, upgrades: Iterable[str] = ()) -> None:
        self.first = first
        self.upgrades = sorted(upgrades)

    def at(self, event_id: str) -> Build:
        return self.first if bisect.bisect_left(self.upgrades, event_id) == 0 else NEWEST

    def upgraded(self, event_id: str) -> None:
        bisect.insort(self.upgrades, event_id)
