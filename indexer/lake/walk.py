"""A LedgerCloseMeta's contract events, read straight from its XDR bytes, ids and all as Stellar RPC gives them.

The walk goes through the ledger once: the header (sequence, close time), the transaction set (stepped
over), then each transaction's result and meta in apply order, and the ledger's tail (upgrades, consensus
messages, evicted keys), which must end exactly where the record ends. Only the events are read; every
other part is stepped over by `skip` and `skip_tx`. Topics and values are base64 of the XDR bytes as they lie in the
ledger, which is what RPC sends (it re-encodes what it decoded, and the ledger's XDR is canonical).

Which events, and their ids (RPC's `InsertEvents`): transaction `tx` is its position in the ledger's
`txProcessing` plus one, whatever its result (failed transactions still pay fees).

    event                                         id = (ledger, tx, op, index)
    TransactionMetaV4.events, BEFORE_ALL_TXS      (L, 0, 0, n)        n counted over the ledger
    operations[op].events (v4), sorobanMeta.events (v3, op 0)
                                                  (L, tx, op, n)      n counted over the operation
    TransactionMetaV4.events, AFTER_TX            (L, tx, 4095, n)    n counted over the transaction
    TransactionMetaV4.events, AFTER_ALL_TXS       (L, 1048575, 0, n)  n counted over the ledger

Every event counts towards n, including diagnostic ones (which are never given out) and, when the reader
asks for some contracts only, those of other contracts. With such a filter, a ledger whose bytes do not
hold any of the contract ids is not walked at all, and a transaction whose meta does not hold them gives
no events (its meta is stepped over like the rest): both searches cost a fraction of the walk, and most
ledgers hold no event of a given contract.

`walk_ledger` raises `skip.Unsupported` for XDR it does not know and `struct.error` when the bytes end too
soon; `reference.py` reads the same with stellar-sdk, and the tests prove both agree on every test file.
"""

from __future__ import annotations

import binascii
import struct

from indexer import ids
from indexer.lake import skip, skip_tx
from indexer.lake.event import EVENT_TYPES, LakeEvent, LedgerEvents, close_time_text, contract_strkey, contract_text

U32 = skip.U32
U32_PAIR = skip.U32_PAIR
U32_TRIPLE = skip.U32_TRIPLE
_b64 = binascii.b2a_base64
_new_event = LakeEvent._make

_BEFORE_ALL, _AFTER_TX, _AFTER_ALL = 0, 1, 2  # TransactionEventStage
_SUCCESS_CODES = (0, 1)  # txSUCCESS, txFEE_BUMP_INNER_SUCCESS


class Ledger:
    """The walk of one ledger: what its events share, and the events found so far by kind."""

    __slots__ = ("buf", "sequence", "closed_at", "want", "before_all", "events", "after_all", "tx", "tx_hash",
                 "tx_hash_hex", "success", "before_all_count", "after_all_count")

    def __init__(self, buf: bytes, sequence: int, closed_at: str, want: frozenset[bytes] | None) -> None:
        self.buf = buf
        self.sequence = sequence
        self.closed_at = closed_at
        self.want = want
        self.before_all: list[LakeEvent] = []
        self.events: list[LakeEvent] = []  # operation and after-transaction events, in id order
        self.after_all: list[LakeEvent] = []
        self.tx = 0
        self.tx_hash = b""
        self.tx_hash_hex = ""  # made from tx_hash when the transaction has an event to give out
        self.success = False
        self.before_all_count = 0  # transaction-level events, by stage, counted over the ledger
        self.after_all_count = 0


_TOPIC_CACHE_MAX = 65_536
_topics: dict[bytes, str] = {}


def _topic_text(raw: bytes) -> str:
    """base64 of a topic's XDR; cached, since topics recur (event names, the parties of a stream)."""
    if len(_topics) >= _TOPIC_CACHE_MAX:
        _topics.clear()
    text = _topics[raw] = _b64(raw, newline=False).decode()
    return text


def walk_ledger(
    buf: bytes, pos: int, end: int | None, want: frozenset[bytes] | None = None,
) -> tuple[LedgerEvents, int]:
    """The events of the LedgerCloseMeta at buf[pos:], and where it ends. `end`: where its record ends,
    when known (None: the ledger is one of several laid end to end). `want`: the 32-byte ids of the
    contracts whose events to give out (None: every contract)."""
    v = U32(buf, pos)[0]
    if v > 2:
        raise skip.Unsupported(f"LedgerCloseMeta version {v}")
    pos += 4
    if v > 0:  # LedgerCloseMetaExt: v1 carries the Soroban write fee
        ext = U32(buf, pos)[0]
        if ext == 1:
            pos += 16
        elif ext == 0:
            pos += 4
        else:
            raise skip.Unsupported(f"LedgerCloseMeta extension {ext}")
    pos, sequence, close_time = skip_tx.header_entry(buf, pos)
    ledger = Ledger(buf, sequence, close_time_text(close_time), want)
    if want is not None and end is not None and not any(buf.find(cid, pos, end) >= 0 for cid in want):
        return LedgerEvents(sequence, ()), end
    pos = skip_tx.envelopes(buf, pos + 32) if v == 0 else skip_tx.generalized_tx_set(buf, pos)
    count = U32(buf, pos)[0]
    pos += 4
    for tx in range(1, count + 1):
        if v == 2:  # TransactionResultMetaV1 starts with an extension point
            if U32(buf, pos)[0] != 0:
                raise skip.Unsupported("TransactionResultMetaV1 extension")
            pos += 4
        ledger.tx = tx
        ledger.tx_hash = buf[pos:pos + 32]
        ledger.tx_hash_hex = ""
        pos, code = skip_tx.tx_result(buf, pos + 32)
        ledger.success = code in _SUCCESS_CODES
        pos = _meta(ledger, skip.changes(buf, pos))  # fee processing, then the meta
        if v == 2:
            pos = skip.changes(buf, pos)  # post-apply fee processing
    pos = skip_tx.scp_history(buf, skip_tx.upgrades(buf, pos))
    if v > 0:  # live Soroban state size, evicted keys (v1: and the unused evicted entries)
        pos = skip.ledger_keys(buf, pos + 8)
        if v == 1:
            pos = skip.ledger_entries(buf, pos)
    if end is not None and pos != end:
        raise struct.error(f"the LedgerCloseMeta of ledger {sequence} ends {end - pos} bytes from its record's end")
    return LedgerEvents(sequence, (*ledger.before_all, *ledger.events, *ledger.after_all)), pos


def _meta(ledger: Ledger, pos: int) -> int:
    """TransactionMeta: steps over everything but the events, which go to `ledger`."""
    buf = ledger.buf
    v = U32(buf, pos)[0]
    pos += 4
    if v == 4:
        return _meta_v4(ledger, pos)
    if v == 3:
        return _meta_v3(ledger, pos)
    if v == 2:  # changes before, operations, changes after; no events
        return skip.changes(buf, _operations_v0(buf, skip.changes(buf, pos)))
    if v == 1:  # changes, operations
        return _operations_v0(buf, skip.changes(buf, pos))
    if v == 0:  # operations
        return _operations_v0(buf, pos)
    raise skip.Unsupported(f"TransactionMeta version {v}")


def _meta_v3(ledger: Ledger, pos: int) -> int:
    """TransactionMetaV3: extension, changes before, operations, changes after, Soroban meta (extension,
    events, return value, diagnostic events). Its events are those of operation 0."""
    buf = ledger.buf
    pos = skip.changes(buf, _operations_v0(buf, skip.changes(buf, skip.ext_v0(buf, pos))))
    if not skip.optional(buf, pos):
        return pos + 4
    pos = _op_events(ledger, _soroban_meta_ext(buf, pos + 4), 0)
    return _diagnostic_events(buf, skip.scval(buf, pos))


def _soroban_meta_ext(buf: bytes, pos: int) -> int:
    """SorobanTransactionMetaExt: v1 holds three fees."""
    v = U32(buf, pos)[0]
    if v == 1:
        return skip.ext_v0(buf, pos + 4) + 24
    if v == 0:
        return pos + 4
    raise skip.Unsupported("SorobanTransactionMeta extension")


def _meta_v4(ledger: Ledger, pos: int) -> int:
    """TransactionMetaV4: extension, changes before, operations (changes and events), changes after,
    Soroban meta, transaction-level events, diagnostic events."""
    buf = ledger.buf
    pos = skip.changes(buf, skip.ext_v0(buf, pos))
    if ledger.want is not None:
        start, counts = pos, (ledger.before_all_count, ledger.after_all_count)
        pos = _meta_v4_after_changes(ledger, pos, collect=False)
        if not any(buf.find(cid, start, pos) >= 0 for cid in ledger.want):
            return pos
        pos, (ledger.before_all_count, ledger.after_all_count) = start, counts
    return _meta_v4_after_changes(ledger, pos, collect=True)


def _meta_v4_after_changes(ledger: Ledger, pos: int, collect: bool) -> int:
    """The rest of a TransactionMetaV4. With `collect`, its events go to `ledger`; else it is stepped over,
    and only its transaction-level events are counted."""
    buf = ledger.buf
    count = U32(buf, pos)[0]
    pos += 4
    for op in range(count):  # OperationMetaV2: extension, changes, events
        pos = skip.changes(buf, skip.ext_v0(buf, pos))
        pos = _op_events(ledger, pos, op) if collect else _events_skipped(buf, pos)
    pos = skip.changes(buf, pos)
    if skip.optional(buf, pos):  # SorobanTransactionMetaV2: extension, optional return value
        pos = _soroban_meta_ext(buf, pos + 4)
        pos = skip.scval(buf, pos + 4) if skip.optional(buf, pos) else pos + 4
    else:
        pos += 4
    count = U32(buf, pos)[0]
    pos += 4
    after_tx = 0
    for _ in range(count):  # TransactionEvent: stage, event
        stage = U32(buf, pos)[0]
        if stage == _BEFORE_ALL:
            out, tx, op, index = ledger.before_all, 0, 0, ledger.before_all_count
            ledger.before_all_count += 1
        elif stage == _AFTER_TX:
            out, tx, op, index = ledger.events, ledger.tx, ids.OP_MASK, after_tx
            after_tx += 1
        elif stage == _AFTER_ALL:
            out, tx, op, index = ledger.after_all, ids.TX_MASK, 0, ledger.after_all_count
            ledger.after_all_count += 1
        else:
            raise skip.Unsupported(f"transaction event stage {stage}")
        if collect:
            pos = _event(ledger, pos + 4, out, tx, op, ids.event_id(ledger.sequence, tx, op, index))
        else:
            pos = _event_skipped(buf, pos + 4)
    return _diagnostic_events(buf, pos)


def _op_events(ledger: Ledger, pos: int, op: int) -> int:
    """ContractEvent<> of one operation."""
    count = U32(ledger.buf, pos)[0]
    pos += 4
    if count:
        names = ids.event_ids(ledger.sequence, ledger.tx, op, count)
        out = ledger.events
        tx = ledger.tx
        for index in range(count):
            pos = _event(ledger, pos, out, tx, op, names[index])
    return pos


def _event(ledger: Ledger, pos: int, out: list[LakeEvent], tx: int, op: int, event_id: str) -> int:
    """ContractEvent: extension, optional contract id, type, body v0 (topics, data). Made into a
    `LakeEvent` in `out` unless it is diagnostic or of a contract not asked for."""
    buf = ledger.buf
    ext, has_id = U32_PAIR(buf, pos)
    if ext != 0:
        raise skip.Unsupported("ContractEvent extension")
    if has_id == 1:
        cid: bytes | None = buf[pos + 8:pos + 40]
        pos += 40
    elif has_id == 0:
        cid = None
        pos += 8
    else:
        raise skip.Unsupported("contract id flag")
    kind, body, count = U32_TRIPLE(buf, pos)
    if body != 0 or kind > 2:
        raise skip.Unsupported("ContractEvent body or type")
    pos += 12
    scval = skip.scval
    if kind == 2 or (ledger.want is not None and cid not in ledger.want):
        for _ in range(count + 1):  # topics, then the data
            pos = scval(buf, pos)
        return pos
    topics = []
    for _ in range(count):
        t, n = U32_PAIR(buf, pos)
        end = pos + 8 + ((n + 3) & ~3) if t == 15 else scval(buf, pos)  # most topics are Symbols
        raw = buf[pos:end]
        topics.append(_topics.get(raw) or _topic_text(raw))
        pos = end
    end = scval(buf, pos)
    if not ledger.tx_hash_hex:
        ledger.tx_hash_hex = ledger.tx_hash.hex()
    out.append(_new_event((
        EVENT_TYPES[kind], ledger.sequence, ledger.closed_at,
        "" if cid is None else contract_text.get(cid) or contract_strkey(cid),
        event_id, op, tx, ledger.tx_hash_hex, ledger.success, tuple(topics), _b64(buf[pos:end], newline=False).decode(),
    )))
    return end


def _event_skipped(buf: bytes, pos: int) -> int:
    ext, has_id = U32_PAIR(buf, pos)
    if ext != 0 or has_id > 1:
        raise skip.Unsupported("ContractEvent extension or contract id flag")
    pos += 40 if has_id else 8
    kind, body, count = U32_TRIPLE(buf, pos)
    if body != 0 or kind > 2:
        raise skip.Unsupported("ContractEvent body or type")
    pos += 12
    for _ in range(count + 1):  # topics, then the data
        pos = skip.scval(buf, pos)
    return pos


def _events_skipped(buf: bytes, pos: int) -> int:
    count = U32(buf, pos)[0]
    pos += 4
    for _ in range(count):
        pos = _event_skipped(buf, pos)
    return pos


def _diagnostic_events(buf: bytes, pos: int) -> int:
    """DiagnosticEvent<>: a flag and a contract event each."""
    count = U32(buf, pos)[0]
    pos += 4
    for _ in range(count):
        pos = _event_skipped(buf, pos + 4)
    return pos


def _operations_v0(buf: bytes, pos: int) -> int:
    """OperationMeta<> (TransactionMeta v0 to v3): the changes of each operation."""
    count = U32(buf, pos)[0]
    pos += 4
    for _ in range(count):
        pos = skip.changes(buf, pos)
    return pos
