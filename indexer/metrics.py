"""The worker's Prometheus metrics, served on FLOWFI_METRICS_PORT when it is set."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Summary

EVENTS_INDEXED = Counter("flowfi_events_indexed", "Contract events stored (typed or dead-lettered)")
DEAD_LETTERS = Counter("flowfi_dead_letters", "Events that could not be decoded")
EVENTS_SKIPPED = Counter(
    "flowfi_events_skipped", "Events the RPC returned that are not the contracts' own successful events", ["reason"]
)
PAGE_SECONDS = Histogram(
    "flowfi_page_write_seconds", "Decode and write time of one getEvents page",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# Where a page's time goes, stage by stage (wall time; the stages of consecutive pages overlap):
# fetch (getEvents), decode, storage (the schedules and tokens read with getLedgerEntries), prepare (which
# events are new, the streams' state, the rows) and commit (the writing transaction).
STAGES = ("fetch", "decode", "storage", "prepare", "commit")
STAGE_SECONDS = Summary("flowfi_stage_seconds", "Time spent in each stage of indexing a page", ["stage"])
for _stage in STAGES:
    STAGE_SECONDS.labels(_stage)  # every stage's series, at zero until its first page
LAST_LEDGER = Gauge("flowfi_last_indexed_ledger", "The last ledger fully indexed")
LEDGER_LAG = Gauge("flowfi_ledger_lag", "Ledgers between the RPC's latest and the last indexed")
RPC_ERRORS = Counter("flowfi_rpc_errors", "Failed RPC calls, retried", ["method"])
DATABASE_ERRORS = Counter("flowfi_database_errors", "Lost database connections, retried")
ROLLED_BACK = Counter("flowfi_transactions_rolled_back",
                      "Transactions PostgreSQL rolled back over another session's (deadlock, serialization), retried")
IS_WRITER = Gauge("flowfi_worker_is_writer", "1 while this worker holds the writer lock, 0 on standby")
