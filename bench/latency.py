"""Live latency: from a page's commit to its receipt by every connected client, p50 and p99.

N clients (1,000, then 10,000) hold SSE connections to the API server (its own process); pages of a
few events are committed one at a time, the worker's way (one transaction, one NOTIFY), and each
client notes when it has received the page. Latency = receipt - commit, over every client and page.
"""

from __future__ import annotations

from typing import Any

from bench import Postgres
from bench.fanout import latency_summary, run_session
from bench.feed import Feed

TARGET_P99_MS = 100.0


async def measure(postgres: Postgres, sizes: tuple[int, ...] = (1_000, 10_000), pages: int = 10,
                  page: int = 5) -> dict[str, Any]:
    feed = Feed(pages * page, seed=13)
    result: dict[str, Any] = {"page_events": page, "pages": pages}
    for clients in sizes:
        gap = max(0.3, clients * page / 50_000)  # let one page drain before the next
        session = await run_session(postgres, feed, "flowfi", clients, page=page, pages=pages, page_gap=gap)
        result[str(clients)] = {"clients": clients, **latency_summary(session),
                                "expected_receipts": clients * pages}
    first = result[str(sizes[0])]
    result["met"] = first["receipts"] == first["expected_receipts"] and first["p99_ms"] < TARGET_P99_MS
    return result
