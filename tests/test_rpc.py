from __future__ import annotations

import pytest

from devnet import running_devnet
from indexer.rpc import (
    FatalRpcError,
    OutOfRetention,
    RetryableRpcError,
    RpcClient,
    _translate_error,
)


def test_json_rpc_errors_become_retryable_or_fatal() -> None:
    retention = _translate_error("getEvents", {"code": -32600,
                                               "message": "startLedger must be within the ledger range: 120 - 4000"})
    assert isinstance(retention, OutOfRetention)
    assert (retention.oldest_ledger, retention.latest_ledger) == (120, 4000)
    assert isinstance(_translate_error("getEvents", {"code": -32001, "message": "request timed out"}),
                      RetryableRpcError)
    assert isinstance(_translate_error("getEvents", {"code": -32603, "message": "internal error"}), RetryableRpcError)
    invalid = _translate_error("getEvents", {"code": -32602, "message": "cursor and startLedger both set"})
    assert isinstance(invalid, FatalRpcError) and not isinstance(invalid, OutOfRetention)
    assert "cursor and startLedger both set" in str(invalid)


async def test_the_client_reads_the_local_network_as_it_reads_stellar_rpc() -> None:
    with running_devnet() as devnet:
        devnet.chain.execute("initialize", {"admin": "GBDK4KAKYLSGPQSZB65NBASVBK7D6X7C6XCNA3EANO3KT7ZBDLGTP72S",
                                            "treasury": "GBDK4KAKYLSGPQSZB65NBASVBK7D6X7C6XCNA3EANO3KT7ZBDLGTP72S",
                                            "fee_rate_bps": 10})
        async with RpcClient(devnet.url) as client:
            network = await client.get_network()
            assert network.passphrase == devnet.chain.passphrase
            health = await client.get_health()
            assert health.latest_ledger == devnet.chain.latest.sequence
            page = await client.get_events((devnet.chain.contract_id,), start_ledger=1, limit=10)
            assert [e.topic for e in page.events] and page.events[0].ledger_closed_at.tzinfo is not None
            # a short page's cursor moves past the scanned window: the next page is empty, not a repeat
            assert (await client.get_events((devnet.chain.contract_id,), cursor=page.cursor)).events == ()
            with pytest.raises(ValueError):
                await client.get_events((devnet.chain.contract_id,))
            devnet.faults.inject("http500")
            with pytest.raises(RetryableRpcError, match="HTTP 500"):
                await client.get_health()
