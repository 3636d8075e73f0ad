"""Live latency: from a page's commit to its receipt by every connected client, p50 and p99.

N clients (1,000, then 10,000) hold SSE connections to the API server (its own process; then the
10,000 again to the API in two processes on one port, as `flowfi serve --processes 2` runs it), each
taking every event; pages of five events are committed every half second (10 events/s), the worker's way (one
transaction, one NOTIFY), and each client notes when it has received the page. Latency = receipt -
commit, over every client and page.
"""

from __future__ import annotations

from typing import Any

from bench import Postgres
from bench.fanout import latency_summary, run_session
from bench.feed import Feed

# p99 targets by the number of clients (the largest applies to more clients)
TARGET_P99_MS = {1_000: 50.0, 10_000: 150.0}
EVENTS_PER_SECOND = 10


def target_ms(clients: int) -> float:
    return next((ms for size, ms in sorted(TARGET_P99_MS.items()) if clients <= size), max(TARGET_P99_MS.values()))


async def measure(postgres: Postgres, sizes: tuple[int, ...] = (1_000, 10_000), processes: tuple[int, ...] = (1, 2),
                  pages: int = 10, page: int = 5) -> dict[str, Any]:
    """Every size served by one API process, then the largest by each further count of `processes`."""
    feed = Feed(pages * page, seed=13)
    result: dict[str, Any] = {"page_events": page, "pages": pages, "events_per_s": EVENTS_PER_SECOND}
    runs = [(clients, 1) for clients in sizes] + [(max(sizes), count) for count in processes if count > 1]
    summaries = []
    for clients, count in runs:
        session = await run_session(postgres, feed, "flowfi", clients, page=page, pages=pages,
                                    page_gap=page / EVENTS_PER_SECOND, processes=count)
        summary = {"clients": clients, "processes": count, **latency_summary(session),
                   "expected_receipts": clients * pages, "target_p99_ms": target_ms(clients)}
        summary["met"] = summary["receipts"] == summary["expected_receipts"] and summary["p99_ms"] < target_ms(clients)
        summaries.append(summary)
        result[str(clients) if count == 1 else f"{clients}/{count}"] = summary
    # the largest crowd needs as many processes as the first of its runs that meets the target
    result["processes_needed"] = next((s["processes"] for s in summaries if s["clients"] == max(sizes) and s["met"]),
                                      None)
    result["met"] = result["processes_needed"] is not None and all(
        s["met"] for s in summaries if s["clients"] != max(sizes))
    return result
