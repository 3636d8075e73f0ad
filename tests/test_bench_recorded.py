"""The ingest benchmark's recorded answers are the local network's own: the same bytes for the same
request, under the id each request sends, and errors passed through as they are."""

from __future__ import annotations

from typing import Any

from bench.devnet_process import RecordedAnswers
from devnet import Devnet, Traffic
from tests.serving import http_client, running_app


async def _ask(base_url: str, request_id: Any, method: str, params: dict[str, Any]) -> Any:
    async with http_client(base_url=base_url, timeout=10) as client:
        response = await client.post("/", json={"jsonrpc": "2.0", "id": request_id, "method": method,
                                                "params": params})
        return response.status_code, response.json()


async def test_a_recorded_answer_is_the_local_networks_under_the_id_asked_with() -> None:
    devnet = Devnet(seed=3)
    devnet.chain.generate_history(300, traffic=Traffic(seed=3), tx_per_ledger=10)
    recorded = RecordedAnswers(devnet.app)
    page = {"startLedger": devnet.chain.oldest.sequence, "filters": [], "pagination": {"limit": 50}}
    with running_app(devnet.app, lifespan="off") as direct, running_app(recorded, lifespan="off") as replaying:
        for method, params in (("getEvents", page), ("getLatestLedger", {}), ("getEvents", {"startLedger": 0})):
            expected = await _ask(direct, 1, method, params)
            assert "error" in expected[1] if params == {"startLedger": 0} else expected[1]["result"]
            first, again = await _ask(replaying, 7, method, params), await _ask(replaying, "x", method, params)
            assert first == (expected[0], {**expected[1], "id": 7})
            assert again == (expected[0], {**expected[1], "id": "x"})
    assert len(recorded.results) == 2  # the error (startLedger 0) is passed on, not kept
