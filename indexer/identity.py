"""Is the chain the RPC serves the one indexed? Telling a network that was reset, or another network on
the same passphrase, from a node that lags behind its peers.

The cursor keeps an anchor: a ledger the index went through, with the hash and close time the RPC gave
for it (getLedgers; events carry neither). `ChainWatch.judge` applies these rules to the RPC's newest
ledger, at start and whenever the RPC is behind the ledger the worker asks for:

- the RPC has the anchor's ledger: its hash must be the anchor's, else this is another chain; with the
  same hash it is the chain indexed, however far behind the cursor it is;
- the RPC's newest ledger comes before the anchor's, yet closed at or after it: on one chain a later
  ledger closes later, so this is another chain (a reset network starts again at ledger 1, closing now);
- the RPC's newest ledger is more than `max_lag_ledgers` behind the index, or has stayed behind it for
  `max_lag_seconds`: not a lagging node;
- otherwise it is a lagging node, to wait for; once it has the anchor's ledger, the hash applies.

Nothing is compared when the anchor is older than the RPC keeps (the retention handling applies), or
the server has no getLedgers, nor when the index has no anchor yet (one written before anchors were
kept): the next page records one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from indexer.rpc import FatalRpcError, LedgerInfo, NotYetAvailable

# A lagging node is at most this many ledgers behind: an hour of five-second ledgers. Stellar RPC calls
# itself unhealthy half a minute after its newest ledger closed, and a load balancer drops such a node
# long before it is an hour behind; a chain further back is another one (a network reset not long ago).
MAX_LAG_LEDGERS = 720
# How long a node may stay behind the index before it is taken for another chain: a node that restarts
# ingests the ledgers it missed in minutes, and a load balancer sends the next requests to other nodes.
MAX_LAG_SECONDS = 600.0

FIX = ("Index it into a new database (another DATABASE_URL), or, for the local network, start over with "
       "`flowfi reset` or `flowfi dev --fresh`.")


class OtherChain(Exception):
    """The RPC serves another chain than the one indexed; the message says how it shows and what to do."""


class ChainWatch:
    """What the worker knows of the chain it indexes: the last ledger of its index and its anchor, kept up
    to date as pages are written; and, while the RPC is behind the index, since when."""

    def __init__(self, rpc_url: str, *, max_lag_ledgers: int = MAX_LAG_LEDGERS,
                 max_lag_seconds: float = MAX_LAG_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.rpc_url = rpc_url
        self.max_lag_ledgers = max_lag_ledgers
        self.max_lag_seconds = max_lag_seconds
        self.ledger: int | None = None  # the index's last whole ledger; None: nothing indexed
        self.anchor: LedgerInfo | None = None
        self._clock = clock
        self._behind_since: float | None = None
        self._anchor_checked = False

    def indexed(self, ledger: int, anchor: LedgerInfo | None) -> None:
        """The index now reaches `ledger`; `anchor`, when given, is its newer anchor."""
        self.ledger = ledger
        if anchor is not None:
            self.anchor, self._anchor_checked = anchor, False

    def caught_up(self) -> None:
        """The RPC answered for the ledgers after the index: whatever it lagged is over."""
        self._behind_since = None
        self._anchor_checked = False

    async def judge(self, latest: LedgerInfo, fetch_ledger: Callable[[int], Awaitable[LedgerInfo]]) -> None:
        """OtherChain unless the RPC whose newest ledger is `latest` serves the chain indexed (as far as
        the rules above can tell); `fetch_ledger` reads a ledger's hash from it."""
        if self.ledger is None:
            return
        anchor = self.anchor
        if anchor is not None and latest.sequence >= anchor.sequence:
            if not self._anchor_checked:
                await self._check_hash(anchor, latest, fetch_ledger)
                self._anchor_checked = True
            return
        if latest.sequence >= self.ledger:
            self._behind_since = None
            return
        now = self._clock()
        if self._behind_since is None:
            self._behind_since = now
        where = f"{self.rpc_url}'s newest ledger, {latest.sequence},"
        if anchor is not None and latest.close_time >= anchor.close_time:
            raise OtherChain(
                f"{where} comes before ledger {anchor.sequence} of the index yet closed after it ({_time(latest)} vs "
                f"{_time(anchor)}): the network was reset, or this is another network on the same passphrase. {FIX}")
        gap = self.ledger - latest.sequence
        if gap > self.max_lag_ledgers:
            raise OtherChain(
                f"{where} is {gap} ledgers behind the index (ledger {self.ledger}), more than a lagging node "
                f"({self.max_lag_ledgers}): the network was reset, or this is another network on the same "
                f"passphrase. {FIX}")
        if now - self._behind_since > self.max_lag_seconds:
            raise OtherChain(
                f"{where} has stayed behind the index (ledger {self.ledger}) for {now - self._behind_since:.0f} s: "
                f"the network was reset, this is another network on the same passphrase, or the node no longer "
                f"follows the network (then point FLOWFI_RPC_URL at one that does). {FIX}")

    async def _check_hash(self, anchor: LedgerInfo, latest: LedgerInfo,
                          fetch_ledger: Callable[[int], Awaitable[LedgerInfo]]) -> None:
        if latest.sequence == anchor.sequence:
            found = latest
        else:
            try:
                found = await fetch_ledger(anchor.sequence)
            except NotYetAvailable:
                return  # answered by a node further behind: compared once one that has it answers
            except FatalRpcError:
                return  # older than the RPC keeps (OutOfRetention), or a server without getLedgers: nothing to compare
        if found.hash != anchor.hash:
            raise OtherChain(
                f"{self.rpc_url}'s ledger {anchor.sequence} is not the one indexed (hash {found.hash[:12]}… vs "
                f"{anchor.hash[:12]}…): the network was reset, or this is another network on the same passphrase. "
                f"{FIX}")


def _time(ledger: LedgerInfo) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ledger.close_time))
