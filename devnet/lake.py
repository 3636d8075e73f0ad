"""The local network's ledgers as Stellar's data lake holds them (SEP-54, as Galexie writes it), so that
the indexer's lake reader, `flowfi backfill` and the worker's gap fill run against it as against mainnet's.

Each ledger becomes a LedgerCloseMeta v2 whose transactions carry the ledger's events as TransactionMeta
v4 operation events (the FlowFi contract's and its tokens' transfer events, in their places, so ids have
the chain's gaps), built with stellar-sdk's XDR classes: zstd LedgerCloseMetaBatch objects in partition
folders beside a `.config.json`. Every transaction index up to a ledger's last event is a transaction, in
apply order, so that the lake gives each event the id the local network gave it; an index without
events (a call the contract refused) is a failed transaction with no events.

`LakeWriter` writes each ledger as it closes (`flowfi devnet --lake DIR`); `write_lake` writes recorded
ledgers at once.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard
from stellar_sdk import StrKey, xdr

from devnet.chain import Ledger

MAX_UINT32 = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class LakeLedger:
    """A closed ledger and its events, each as getEvents returns it (JSON, base64 XDR)."""

    ledger: Ledger
    events: tuple[dict[str, Any], ...] = field(default=())


class LakeWriter:
    """Writes each closed ledger of a chain into a lake at `root`, one ledger an object (as the public
    lakes hold them)."""

    def __init__(self, root: Path, passphrase: str, *, batches_per_partition: int = 64_000) -> None:
        self.root = root
        self.batches_per_partition = batches_per_partition
        self._compressor = zstandard.ZstdCompressor(write_checksum=True)  # as Galexie writes them
        root.mkdir(parents=True, exist_ok=True)
        _write_config(root, passphrase, 1, batches_per_partition)

    def write(self, ledger: Ledger, events: tuple[dict[str, Any], ...]) -> None:
        """Write a closed ledger with its events (as getEvents returns them)."""
        sequence = ledger.sequence
        batch = xdr.LedgerCloseMetaBatch(start_sequence=xdr.Uint32(sequence), end_sequence=xdr.Uint32(sequence),
                                         ledger_close_metas=[ledger_close_meta(LakeLedger(ledger, events))])
        path = self.root / object_key(sequence, 1, self.batches_per_partition)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(self._compressor.compress(batch.to_xdr_bytes()))
        partial.replace(path)  # readers never see half an object


def _write_config(root: Path, passphrase: str, ledgers_per_batch: int, batches_per_partition: int) -> None:
    (root / ".config.json").write_text(json.dumps({
        "networkPassphrase": passphrase, "version": "1.0", "compression": "zstd",
        "ledgersPerBatch": ledgers_per_batch, "batchesPerPartition": batches_per_partition,
    }))


def write_lake(root: Path, passphrase: str, ledgers: Sequence[LakeLedger], *, ledgers_per_batch: int = 4,
               batches_per_partition: int = 8) -> int:
    """Write `ledgers` (consecutive) as a data lake at `root`, in whole batches only, as Galexie writes a
    batch once its last ledger has closed; the newest ledger written."""
    last = ledgers[-1].ledger.sequence
    if (last + 1) % ledgers_per_batch:
        ledgers = [r for r in ledgers if r.ledger.sequence <= last - (last + 1) % ledgers_per_batch]
    root.mkdir(parents=True, exist_ok=True)
    _write_config(root, passphrase, ledgers_per_batch, batches_per_partition)
    compressor = zstandard.ZstdCompressor(write_checksum=True)  # as Galexie writes them
    by_batch: dict[int, list[LakeLedger]] = {}
    for recorded in ledgers:
        sequence = recorded.ledger.sequence
        by_batch.setdefault(sequence - sequence % ledgers_per_batch, []).append(recorded)
    for batch_start, members in by_batch.items():
        batch = xdr.LedgerCloseMetaBatch(
            start_sequence=xdr.Uint32(members[0].ledger.sequence),
            end_sequence=xdr.Uint32(members[-1].ledger.sequence),
            ledger_close_metas=[ledger_close_meta(m) for m in members],
        )
        path = root / object_key(batch_start, ledgers_per_batch, batches_per_partition)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(compressor.compress(batch.to_xdr_bytes()))
    return ledgers[-1].ledger.sequence


def object_key(batch_start: int, ledgers_per_batch: int, batches_per_partition: int) -> str:
    """SEP-54's name of the object whose first ledger is `batch_start`."""
    size = ledgers_per_batch * batches_per_partition
    partition = batch_start - batch_start % size
    span = f"{batch_start}" if ledgers_per_batch == 1 else f"{batch_start}-{batch_start + ledgers_per_batch - 1}"
    name = f"{MAX_UINT32 - batch_start:08X}--{span}.xdr.zst"
    return f"{MAX_UINT32 - partition:08X}--{partition}-{partition + size - 1}/{name}"


def ledger_close_meta(recorded: LakeLedger) -> xdr.LedgerCloseMeta:
    ledger = recorded.ledger
    by_tx: dict[int, list[dict[str, Any]]] = {}
    for event in recorded.events:
        assert event["operationIndex"] == 0, "the local network's transactions have one operation"
        by_tx.setdefault(event["transactionIndex"], []).append(event)
    transactions = [_transaction(ledger, index, by_tx.get(index, [])) for index in range(1, max(by_tx, default=0) + 1)]
    return xdr.LedgerCloseMeta(2, v2=xdr.LedgerCloseMetaV2(
        ext=xdr.LedgerCloseMetaExt(0),
        ledger_header=ledger.history_entry(),
        tx_set=xdr.GeneralizedTransactionSet(1, v1_tx_set=xdr.TransactionSetV1(
            previous_ledger_hash=xdr.Hash(bytes.fromhex(ledger.previous_hash)), phases=[],
        )),
        tx_processing=transactions,
        upgrades_processing=[],
        scp_info=[],
        total_byte_size_of_live_soroban_state=xdr.Uint64(0),
        evicted_keys=[],
    ))


def _transaction(ledger: Ledger, index: int, events: Iterable[dict[str, Any]]) -> xdr.TransactionResultMetaV1:
    events = list(events)
    if events:
        tx_hash = bytes.fromhex(events[0]["txHash"])
        successful = all(event["inSuccessfulContractCall"] for event in events)
    else:
        tx_hash = hashlib.sha256(f"refused call {ledger.sequence}:{index}".encode()).digest()
        successful = False
    code = xdr.InvokeHostFunctionResultCode.INVOKE_HOST_FUNCTION_SUCCESS if successful \
        else xdr.InvokeHostFunctionResultCode.INVOKE_HOST_FUNCTION_TRAPPED
    operation = xdr.OperationResult(xdr.OperationResultCode.opINNER, tr=xdr.OperationResultTr(
        xdr.OperationType.INVOKE_HOST_FUNCTION, invoke_host_function_result=xdr.InvokeHostFunctionResult(
            code, success=xdr.Hash(hashlib.sha256(tx_hash).digest()) if successful else None),
    ))
    result = xdr.TransactionResult(
        fee_charged=xdr.Int64(100),
        result=xdr.TransactionResultResult(
            xdr.TransactionResultCode.txSUCCESS if successful else xdr.TransactionResultCode.txFAILED,
            results=[operation],
        ),
        ext=xdr.TransactionResultExt(0),
    )
    meta = xdr.TransactionMetaV4(
        ext=xdr.ExtensionPoint(0),
        tx_changes_before=xdr.LedgerEntryChanges([]),
        operations=[xdr.OperationMetaV2(ext=xdr.ExtensionPoint(0), changes=xdr.LedgerEntryChanges([]),
                                        events=[_contract_event(event) for event in events])],
        tx_changes_after=xdr.LedgerEntryChanges([]),
        soroban_meta=None,
        events=[],
        diagnostic_events=[],
    )
    return xdr.TransactionResultMetaV1(
        ext=xdr.ExtensionPoint(0),
        result=xdr.TransactionResultPair(transaction_hash=xdr.Hash(tx_hash), result=result),
        fee_processing=xdr.LedgerEntryChanges([]),
        tx_apply_processing=xdr.TransactionMeta(4, v4=meta),
        post_tx_apply_fee_processing=xdr.LedgerEntryChanges([]),
    )


def _contract_event(event: dict[str, Any]) -> xdr.ContractEvent:
    return xdr.ContractEvent(
        ext=xdr.ExtensionPoint(0),
        contract_id=xdr.ContractID(xdr.Hash(StrKey.decode_contract(event["contractId"]))),
        type=xdr.ContractEventType.CONTRACT,
        body=xdr.ContractEventBody(0, v0=xdr.ContractEventV0(
            topics=[xdr.SCVal.from_xdr_bytes(base64.b64decode(topic)) for topic in event.get("topic", ())],
            data=xdr.SCVal.from_xdr_bytes(base64.b64decode(event["value"])),
        )),
    )
