"""Live events in the terminal, one line each: what `flowfi tail` prints.

    2025-03-01 12:00:05  stream.withdrawn      #17    GBXQ…7KDA → GC3F…Q2LM  amount 12.5 USDC
    2025-03-01 12:00:05  stream.completed      #17    GBXQ…7KDA → GC3F…Q2LM  total withdrawn 100
    2025-03-01 12:00:10  protocol.fee_config…  -      admin GAAA…WHF2  new fee 30 bps

Times are the ledger's close time (UTC). Amounts are converted from the token's smallest unit with its
decimals as the event gives them (tokenDecimals, from the index's tokens), else `decimals` digits (7
for Stellar assets), by integer arithmetic, never through a float, and followed by its symbol where known.
Resuming after a dropped connection is `api.client.subscribe`'s job; `tail` shows each drop as a dim line.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.text import Text

from api.client import Event, subscribe
from indexer.events import BY_SSE_NAME, ScType, field_types, payload_key

TYPE_STYLES = {
    "stream.created": "green",
    "stream.topped_up": "cyan",
    "stream.withdrawn": "bright_blue",
    "stream.completed": "bold green",
    "stream.cancelled": "red",
    "stream.paused": "yellow",
    "stream.resumed": "yellow",
    "stream.fee_collected": "magenta",
    "stream.closed": "dim",
    "stream.recipient_transferred": "cyan",
    "stream.milestone_unlocked": "bright_blue",
}

# Every payload key that holds an amount (an i128 field), and its label: "newDepositedAmount" ->
# "new deposited amount"; a rate ("ratePerSecond", "newRatePerSecond") gets "/s".
_AMOUNT_KEYS: dict[str, str] = {}
_ADDRESS_KEYS: set[str] = set()
_SHOWN_AS_IS: set[str] = set()  # u32 numbers, flags and hashes
for _kind in BY_SSE_NAME.values():
    for _name, _sc_type in field_types(_kind).items():
        if _sc_type is ScType.I128:
            _AMOUNT_KEYS[payload_key(_name)] = _name.replace("_", " ")
        elif _sc_type in (ScType.ADDRESS, ScType.OPTION_ADDRESS):
            _ADDRESS_KEYS.add(payload_key(_name))
        elif _sc_type in (ScType.U32, ScType.BOOL, ScType.BYTES):
            _SHOWN_AS_IS.add(payload_key(_name))
# Addresses a stream line already shows (as "sender → recipient") or that are not a party.
_STREAM_SHOWN = {"sender", "recipient", "tokenAddress", "token"}


def shorten(address: str, keep: int = 4) -> str:
    """G... and C... addresses as their first and last `keep` characters: GBXQ…7KDA."""
    if len(address) <= 2 * keep + 1:
        return address
    return f"{address[:keep]}…{address[-keep:]}"


def format_amount(smallest_units: str | int, decimals: int = 7) -> str:
    """An integer amount in the token's smallest unit as a decimal string: ("125000000", 7) -> "12.5".
    Exact for any size (i128), no float involved."""
    value = int(smallest_units)
    sign = "-" if value < 0 else ""
    whole, fraction = divmod(abs(value), 10**decimals) if decimals > 0 else (abs(value), 0)
    if decimals <= 0 or fraction == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{str(fraction).rjust(decimals, '0').rstrip('0')}"


def _ledger_time(data: dict[str, Any]) -> str:
    closed = str(data.get("ledgerClosedAt") or "")
    return closed.replace("T", " ").removesuffix("Z")[:19] or "-" * 19


def format_event(event: Event, decimals: int = 7) -> Text:
    """One line for one event: time, type, stream, parties, amounts (in the event's token's decimals,
    else `decimals`)."""
    data = event.data
    line = Text()
    line.append(_ledger_time(data), style="dim")
    line.append("  ")
    kind = event.type if len(event.type) <= 21 else event.type[:20] + "…"
    line.append(f"{kind:<21}", style=TYPE_STYLES.get(event.type, "bold"))
    line.append("  ")
    stream = data.get("streamId")
    line.append(f"{'#' + str(stream) if stream is not None else '-':<6}", style="bold")
    details: list[str] = []
    if stream is not None:
        sender, recipient = data.get("sender"), data.get("recipient")
        if sender or recipient:
            details.append(f"{shorten(sender or '?')} → {shorten(recipient or '?')}")
    for key, value in data.items():
        if value is None:
            continue
        if key in _ADDRESS_KEYS and not (stream is not None and key in _STREAM_SHOWN):
            label = "".join(" " + c.lower() if c.isupper() else c for c in key)
            details.append(f"{label} {shorten(str(value))}")
    known = data.get("tokenDecimals")
    places = known if isinstance(known, int) and not isinstance(known, bool) else decimals
    unit = f" {data['tokenSymbol']}" if data.get("tokenSymbol") else ""
    for key, label in _AMOUNT_KEYS.items():
        value = data.get(key)
        is_rate = key.endswith(("ratePerSecond", "RatePerSecond"))
        if value is None or (is_rate and int(value) == 0):  # a stream that unlocks in steps has no rate
            continue
        details.append(f"{label} {format_amount(value, places)}{unit}{'/s' if is_rate else ''}")
    for key in sorted(_SHOWN_AS_IS):
        value = data.get(key)
        if value is None:
            continue
        label = "".join(" " + c.lower() if c.isupper() else c for c in key)
        if key.endswith("Bps"):
            details.append(f"{label.removesuffix(' bps')} {value} bps")
        elif isinstance(value, bool):
            details.append(f"{label} {'yes' if value else 'no'}")
        else:
            details.append(f"{label} {shorten(str(value), 6) if isinstance(value, str) else value}")
    line.append("  " + "  ".join(details))
    return line


async def tail(
    base_url: str,
    *,
    streams: Iterable[int | str] = (),
    users: Iterable[str] = (),
    types: Iterable[str] = (),
    all: bool = False,
    last_event_id: str | None = None,
    decimals: int = 7,
    out: Console | None = None,
    limit: int | None = None,
    token: str | None = None,
    url_flag: str = "base_url",
) -> None:
    """Print the selected events as they happen, one line each, until cancelled (Ctrl-C).

    base_url       the API's root, e.g. "http://localhost:8080".
    streams        only these stream ids; users: only events concerning these G.../C... addresses;
    types          only these SSE event names (e.g. "stream.created"); all: every event. Streams and
                   users add up (either matches); types narrows. Give at least one of the four.
    last_event_id  first print the history after this event id, then go live (None: live only).
    decimals       the decimal places of amounts whose token's decimals the index does not know (Stellar
                   assets use 7).
    out            where to print (a rich Console); default: standard output.
    limit          stop after this many events (None: never).
    token          an access token, for servers that require one (sent as a Bearer header).
    url_flag       how the caller names `base_url` in hints (`flowfi tail` says --url).

    Says at once that it is connected and waiting. Reconnects by itself after any drop without
    skipping or repeating an event (see api.client.subscribe). Raises api.client.SubscriptionRejected
    on a bad filter and api.client.ResumeRejected when the server does not know `last_event_id`.
    """
    console = out or Console(highlight=False)
    connected = False

    def on_connect() -> None:
        nonlocal connected
        if not connected:
            console.print(Text(f"connected to {base_url}, waiting for matching events", style="dim"))
        else:
            console.print(Text("reconnected, resuming where it left off", style="dim"))
        connected = True

    def on_drop(reason: str, delay: float) -> None:
        where = "" if connected else f"; is the API running at {base_url}? (choose another with {url_flag})"
        console.print(Text(f"connection lost ({reason}){where}; reconnecting in {delay:.1f}s", style="dim yellow"))

    printed = 0
    events = subscribe(base_url, streams=streams, users=users, types=types, all=all,
                       last_event_id=last_event_id, on_drop=on_drop, on_connect=on_connect, token=token)
    try:
        async for event in events:
            console.print(format_event(event, decimals), soft_wrap=True)
            printed += 1
            if limit is not None and printed >= limit:
                break
    finally:
        await events.aclose()
