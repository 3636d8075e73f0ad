"""The event id: the one ordering key of every table, page cursor and SSE id.

Stellar RPC names each contract event "%019d-%010d" % (TOID, event index), where the TOID (the
"total order id" of an operation) is ledger << 32 | transaction index << 12 | operation index. Both
parts are zero-padded decimals, so ids sort as text in chain order. Transaction indexes start at 1;
the transaction-level events of protocol 23 use transaction index 0 (before every transaction) and
the largest one (after every transaction).
"""

from __future__ import annotations

import re

TX_MASK = (1 << 20) - 1
OP_MASK = (1 << 12) - 1
EVENT_INDEX_MAX = (1 << 32) - 1
TOID_LIMIT = 1 << 63  # a TOID is a non-negative int64
LEDGER_LIMIT = TOID_LIMIT >> 32  # the first ledger no id can name
PATTERN = re.compile(r"[0-9]{19}-[0-9]{10}")


def toid(ledger: int, tx_index: int, op_index: int) -> int:
    return ledger << 32 | tx_index << 12 | op_index


def event_id(ledger: int, tx_index: int, op_index: int, event_index: int) -> str:
    return f"{toid(ledger, tx_index, op_index):019d}-{event_index:010d}"


def event_ids(ledger: int, tx_index: int, op_index: int, count: int) -> list[str]:
    """The ids of the first `count` events of one operation: `event_id` for each index, made in bulk
    (the data-lake reader makes tens of thousands a second)."""
    head = f"{toid(ledger, tx_index, op_index):019d}-"
    return [f"{head}{event_index:010d}" for event_index in range(count)]


def parse(value: str) -> tuple[int, int, int, int]:
    """(ledger, transaction index, operation index, event index) of an id or getEvents cursor;
    ValueError (in stellar-rpc's words) when it is not one."""
    head, sep, tail = value.partition("-")
    try:
        if not sep:
            raise ValueError
        number, event_index = int(head), int(tail)
        if not (0 <= number < TOID_LIMIT and 0 <= event_index <= EVENT_INDEX_MAX):
            raise ValueError
    except ValueError:
        raise ValueError(f"invalid event id {value}") from None
    return number >> 32, (number >> 12) & TX_MASK, number & OP_MASK, event_index


def ledger_of(value: str) -> int:
    """The ledger an id or cursor lies in."""
    return int(value.partition("-")[0]) >> 32


def before_ledger(ledger: int) -> str:
    """A key that sorts after every id of earlier ledgers and before every id of `ledger`."""
    return f"{min(ledger, LEDGER_LIMIT) << 32:019d}"


def last_complete_ledger(cursor: str) -> int:
    """The last ledger whose events all lie at or before a getEvents cursor: the cursor's own ledger when
    it is that ledger's end (where a page that is not full leaves its reader), else the one before."""
    ledger = ledger_of(cursor)
    return ledger if cursor == end_of_ledger(ledger) else ledger - 1


def end_of_ledger(ledger: int) -> str:
    """The largest cursor within `ledger`: where a getEvents page that is not full leaves its reader."""
    return event_id(ledger, TX_MASK, OP_MASK, EVENT_INDEX_MAX)
