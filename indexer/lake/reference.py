"""The same events as `walk`, read through stellar-sdk's generic XDR classes.

It decodes the whole LedgerCloseMeta (every transaction, result, change and message becomes a Python
object), then applies Stellar RPC's rules to it in the plainest way. It is the reference the tests hold
the fast walk to, and the reader's fallback for a ledger holding XDR the walk does not know. It is 30 to
60 times slower (`python -m bench lake`).
"""

from __future__ import annotations

from typing import Any

import xdrlib3
from stellar_sdk import xdr

from indexer import ids
from indexer.lake.event import EVENT_TYPES, LakeEvent, LedgerEvents, close_time_text, contract_strkey

_SUCCESS_CODES = frozenset({xdr.TransactionResultCode.txSUCCESS, xdr.TransactionResultCode.txFEE_BUMP_INNER_SUCCESS})


def decode_ledger(buf: bytes, pos: int, end: int | None = None) -> tuple[xdr.LedgerCloseMeta, int]:
    """The LedgerCloseMeta at buf[pos:] and where it ends, which must be `end` when that is given;
    ValueError when the bytes are not one."""
    unpacker = xdrlib3.Unpacker(buf)
    unpacker.set_position(pos)
    try:
        lcm = xdr.LedgerCloseMeta.unpack(unpacker)
    except (EOFError, xdrlib3.Error) as exc:  # xdrlib3's ways of saying the bytes end too soon
        raise ValueError(f"truncated ({exc or 'the bytes end too soon'})") from exc
    stop = unpacker.get_position()
    if end is not None and stop != end:
        raise ValueError(f"it ends {end - stop} bytes before its record's end")
    return lcm, stop


def ledger_events(lcm: xdr.LedgerCloseMeta, want: frozenset[bytes] | None = None) -> LedgerEvents:
    """The ledger's events, as `walk.walk_ledger` gives them."""
    body: Any = {0: lcm.v0, 1: lcm.v1, 2: lcm.v2}[lcm.v]
    header = body.ledger_header.header
    sequence = header.ledger_seq.uint32
    closed_at = close_time_text(header.scp_value.close_time.time_point.uint64)
    before_all: list[LakeEvent] = []
    middle: list[LakeEvent] = []
    after_all: list[LakeEvent] = []
    counts = {"before": 0, "after": 0}

    def add(out: list[LakeEvent], event: xdr.ContractEvent, tx: int, op: int, index: int,
            tx_hash: bytes, success: bool) -> None:
        cid = None if event.contract_id is None else event.contract_id.contract_id.hash
        if want is not None and cid not in want or event.type == xdr.ContractEventType.DIAGNOSTIC:
            return
        v0 = event.body.v0
        if v0 is None:
            raise ValueError(f"ContractEvent body version {event.body.v}")
        out.append(LakeEvent(
            EVENT_TYPES[event.type.value], sequence, closed_at, "" if cid is None else contract_strkey(cid),
            ids.event_id(sequence, tx, op, index), op, tx, tx_hash.hex(), success,
            tuple(topic.to_xdr() for topic in v0.topics), v0.data.to_xdr(),
        ))

    for tx, processing in enumerate(body.tx_processing, start=1):
        pair = processing.result
        tx_hash = pair.transaction_hash.hash
        success = pair.result.result.code in _SUCCESS_CODES
        meta = processing.tx_apply_processing
        if meta.v == 3:
            soroban = meta.v3.soroban_meta
            for index, event in enumerate(soroban.events if soroban is not None else ()):
                add(middle, event, tx, 0, index, tx_hash, success)
        elif meta.v == 4:
            for op, operation in enumerate(meta.v4.operations):
                for index, event in enumerate(operation.events):
                    add(middle, event, tx, op, index, tx_hash, success)
            after_tx = 0
            for tx_event in meta.v4.events:
                stage = tx_event.stage
                if stage == xdr.TransactionEventStage.TRANSACTION_EVENT_STAGE_BEFORE_ALL_TXS:
                    add(before_all, tx_event.event, 0, 0, counts["before"], tx_hash, success)
                    counts["before"] += 1
                elif stage == xdr.TransactionEventStage.TRANSACTION_EVENT_STAGE_AFTER_TX:
                    add(middle, tx_event.event, tx, ids.OP_MASK, after_tx, tx_hash, success)
                    after_tx += 1
                else:
                    add(after_all, tx_event.event, ids.TX_MASK, 0, counts["after"], tx_hash, success)
                    counts["after"] += 1
    return LedgerEvents(sequence, (*before_all, *middle, *after_all))
