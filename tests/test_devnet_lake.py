"""The local network writes its ledgers as Stellar's data lake: real LedgerCloseMeta XDR that stellar-sdk
decodes and that the lake reader turns into exactly the events its RPC serves, ids and gaps included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zstandard
from stellar_sdk import xdr

from devnet import running_devnet
from indexer import ids
from indexer.lake import LakeDataError, read_ledgers


def test_the_lake_holds_every_ledger_with_the_events_rpc_serves(tmp_path: Path) -> None:
    with running_devnet(seed=31, traffic_per_ledger=6, lake=tmp_path) as devnet:
        chain = devnet.chain
        for _ in range(40):
            chain.close_ledger()
        served = [json.loads(e.json) for e in chain.scan(after="", end_ledger=chain.latest.sequence + 1, limit=10**6)]
        config = json.loads((tmp_path / ".config.json").read_text())
        assert (config["networkPassphrase"], config["ledgersPerBatch"]) == (chain.passphrase, 1)
        objects = sorted(tmp_path.rglob("*.xdr.zst"))
        assert len(objects) == chain.latest.sequence  # the genesis ledger and every closed one

        # stellar-sdk reads every object as a LedgerCloseMetaBatch of v2 metas with v4 transaction metas
        newest = xdr.LedgerCloseMetaBatch.from_xdr_bytes(
            zstandard.ZstdDecompressor().stream_reader(objects[0].read_bytes()).read())
        meta = newest.ledger_close_metas[0]
        assert meta.v == 2 and meta.v2 is not None
        assert newest.end_sequence.uint32 == chain.latest.sequence  # the newest ledger sorts first
        assert all(tx.tx_apply_processing.v == 4 for tx in meta.v2.tx_processing)

        read = [e.rpc_json() for ledger in read_ledgers(str(tmp_path)) for e in ledger.events]
        assert read == served
    flowfi = [e for e in served if e["contractId"] == chain.contract_id]
    tokens = [e for e in served if e["contractId"] != chain.contract_id]
    assert flowfi and tokens, "the lake holds the contract's events and its tokens' transfers"
    # within an operation the contract's own events are numbered among the tokens' transfers: a creation
    # is the deposit's transfer (0), the fee's transfer (1), fee_collected (2), stream_created (3)
    first_index: dict[str, int] = {}
    for event in flowfi:
        toid = event["id"].partition("-")[0]
        first_index.setdefault(toid, ids.parse(event["id"])[3])
    assert any(index > 0 for index in first_index.values())


def test_a_lake_object_damaged_in_its_middle_stops_the_read(tmp_path: Path) -> None:
    """The objects carry zstd's checksum, as Galexie's do: a flipped byte is an error naming the object,
    not ledgers read differently."""
    with running_devnet(seed=32, traffic_per_ledger=6, lake=tmp_path) as devnet:
        for _ in range(5):
            devnet.chain.close_ledger()
    damaged = sorted(tmp_path.rglob("*.xdr.zst"))[0]
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0x01
    damaged.write_bytes(bytes(data))
    with pytest.raises(LakeDataError, match=damaged.name):
        list(read_ledgers(str(tmp_path)))
