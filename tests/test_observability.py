from __future__ import annotations

import json
import logging
import os
import re
import sys

import asyncpg
import prometheus_client
import pytest

from devnet import running_devnet
from flowfi.logs import JsonFormatter, OneLineFromLibraries, QuietProbes, RedactSecrets
from indexer import metrics
from indexer.worker import PREFETCH_PAGES, Worker
from tests.indexing import index_until_caught_up, worker_settings
from tests.live import add_traffic, index_now, live_pipeline, read_sse, subscription
from tests.serving import http_client


def sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} in the metrics")


def stage_pages(text: str) -> dict[str, float]:
    return {stage: sample(text, f'flowfi_stage_seconds_count{{stage="{stage}"}}') for stage in metrics.STAGES}


async def test_the_worker_counts_what_it_indexes(database_url: str, db: asyncpg.Connection) -> None:
    before_text = prometheus_client.generate_latest().decode()
    before = sample(before_text, "flowfi_events_indexed_total")
    stages_before = stage_pages(before_text)
    with running_devnet(seed=11) as devnet:
        add_traffic(devnet, 200, seed=11)
        await index_until_caught_up(Worker(worker_settings(devnet, database_url), database_url), devnet)
    text = prometheus_client.generate_latest().decode()
    assert sample(text, "flowfi_events_indexed_total") - before == devnet.chain.event_count
    assert sample(text, "flowfi_last_indexed_ledger") == devnet.chain.latest.sequence
    assert sample(text, "flowfi_ledger_lag") == 0
    assert sample(text, "flowfi_page_write_seconds_count") > 0
    assert sample(text, "flowfi_worker_is_writer") == 1
    # every page goes through the stages in order: fetched, decoded, its storage read, prepared, committed;
    # when the worker stops, the pages it had begun ahead of the commit (at most the queue and one in hand)
    # are dropped at whatever stage they had reached
    pages = {stage: count - stages_before[stage] for stage, count in stage_pages(text).items()}
    assert pages["commit"] > 0
    assert pages["fetch"] >= pages["decode"] >= pages["storage"] >= pages["prepare"] >= pages["commit"], pages
    assert pages["decode"] <= pages["commit"] + PREFETCH_PAGES + 1, pages


async def test_the_api_exposes_connections_deliveries_and_the_listener(database_url: str) -> None:
    with live_pipeline(database_url) as (devnet, base_url):
        add_traffic(devnet, 50)
        async with subscription(base_url, "all=true&cursor=now") as (response, live), http_client() as client:
            assert response.status_code == 200
            await index_now(devnet, database_url)
            await read_sse(response, live, stop_after=devnet.chain.event_count)
            text = (await client.get(f"{base_url}/metrics")).text
            # a client resuming from its first event is sent the rest from the table: replayed, not delivered
            async with subscription(base_url, f"all=true&lastEventId={live.ids[0]}") as (replaying, replayed):
                await read_sse(replaying, replayed, stop_after=len(live.ids) - 1)
            after = (await client.get(f"{base_url}/metrics")).text
            stats = (await client.get(f"{base_url}/events/stats")).json()
        assert sample(text, 'flowfi_sse_connections{filter="all"}') == 1
        assert sample(text, "flowfi_sse_events_delivered_total") == len(live.ids) == devnet.chain.event_count
        assert sample(text, "flowfi_sse_events_replayed_total") == 0
        assert sample(after, "flowfi_sse_events_replayed_total") == len(replayed.ids) == len(live.ids) - 1
        assert sample(after, "flowfi_sse_events_delivered_total") == len(live.ids)
        assert (stats["eventsDelivered"], stats["eventsReplayed"]) == (len(live.ids), len(replayed.ids))
        assert sample(text, "flowfi_sse_clients_dropped_total") == 0
        assert sample(text, "flowfi_listener_connected") == 1


def test_json_logs_are_one_object_per_line_and_tokens_never_appear() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", "/events/subscribe?all=true&token=eyJhbGciOi.secret.sig",
                                "1.1", 200), None)
    assert RedactSecrets().filter(record)
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["level"] == "info" and entry["logger"] == "uvicorn.access"
    assert "token=***" in entry["message"]
    assert "secret" not in line and "eyJ" not in line


def test_credentials_are_redacted_by_their_decoded_names() -> None:
    """The server decodes parameter names (`%74oken` is `token`); so does the redaction."""
    secret = "eyJhbGciOiJIUzI1NiJ9.eyJhZG1pbiI6dHJ1ZX0.c2lnbmF0dXJl"
    paths = [
        f"/streams?%74oken={secret}",
        f"/streams?limit=5&tok%65n={secret}&status=active",
        f"/events/subscribe?all=true&access%5Ftoken={secret}",
        f"/events/subscribe?ACCESS_TOKEN={secret}",
        f"/x%3Fy?token={secret}",  # a "?" in the path, decoded, before the real query
        f"/streams?a=1?access_token={secret}",
    ]
    for path in paths:
        record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                                   ("127.0.0.1:5", "GET", path, "1.1", 200), None)
        assert RedactSecrets().filter(record)
        message = record.getMessage()
        assert "eyJ" not in message and "c2lnbmF0dXJl" not in message, message
        assert "=***" in message
    kept = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, "%s", ("/streams?status=active&limit=5",),
                             None)
    RedactSecrets().filter(kept)
    assert kept.getMessage() == "/streams?status=active&limit=5"


def test_json_logs_say_the_millisecond_and_the_process() -> None:
    record = logging.LogRecord("indexer.worker", logging.INFO, __file__, 1, "caught up", None, None)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["pid"] == os.getpid()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["time"]), entry["time"]


def test_a_library_s_reconnection_traceback_is_one_line() -> None:
    try:
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
    except ConnectionRefusedError:
        record = logging.LogRecord("asyncpg.pool", logging.WARNING, __file__, 1,
                                   "Failed to restore the pool connection floor; %s", ("retrying",), sys.exc_info())
    assert OneLineFromLibraries().filter(record)
    line = logging.Formatter("%(name)s: %(message)s").format(record)
    assert line == ("asyncpg.pool: Failed to restore the pool connection floor; retrying (ConnectionRefusedError: "
                    "[Errno 111] Connect call failed ('127.0.0.1', 5432))")


@pytest.mark.parametrize(("path", "status", "logged"), [
    ("/health", 200, False), ("/ready", 200, False), ("/ready", 503, True), ("/streams", 200, True),
    ("/health?x=1", 200, True)])
def test_only_failing_probes_reach_the_access_log(path: str, status: int, logged: bool) -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", path, "1.1", status), None)
    assert QuietProbes().filter(record) is logged
