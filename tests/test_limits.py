from __future__ import annotations

import asyncio
import contextlib
import time

from tests.live import Received, add_traffic, index_now, live_pipeline, read_sse, subscription
from tests.serving import http_client


async def test_connections_past_the_limits_are_refused_with_retry_after(database_url: str) -> None:
    # a closed stream is noticed at its next write: heartbeats make that quick
    with live_pipeline(database_url, max_connections_per_ip=2, max_connections=3,
                       heartbeat_interval=0.1) as (_devnet, base_url):
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(2):
                response, _got = await stack.enter_async_context(subscription(base_url, "all=true"))
                assert response.status_code == 200
            async with http_client() as client:
                refused = await client.get(f"{base_url}/events/subscribe?all=true")
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) > 0
            assert "too many open connections" in refused.json()["error"]
        await asyncio.sleep(0.5)  # the slots are given back when the streams close
        async with subscription(base_url, "all=true") as (response, _got):
            assert response.status_code == 200


async def test_the_process_limit_is_a_503(database_url: str) -> None:
    with live_pipeline(database_url, max_connections=1) as (_devnet, base_url):
        async with subscription(base_url, "all=true") as (response, _got), http_client() as client:
            assert response.status_code == 200
            refused = await client.get(f"{base_url}/events/subscribe?all=true")
        assert refused.status_code == 503
        assert "retry-after" in refused.headers


async def test_a_connection_ends_after_its_lifetime_with_a_retry_hint(database_url: str) -> None:
    # the lifetime is checked whenever the stream wakes: heartbeats make that often
    with live_pipeline(database_url, max_connection_lifetime=1.0, retry_ms=1234,
                       heartbeat_interval=0.2) as (devnet, base_url):
        add_traffic(devnet, 20)
        await index_now(devnet, database_url)
        started = time.monotonic()
        async with subscription(base_url, "all=true") as (response, _got):
            body = (await response.aread()).decode()
        lasted = time.monotonic() - started
        assert 0.85 < lasted < 5
        assert body.startswith("retry: 1234\n\n")
        assert body.endswith("retry: 1234\n\n")


async def test_shutdown_closes_open_streams_with_a_retry_hint_at_once(database_url: str) -> None:
    got = Received()
    with contextlib.ExitStack() as pipeline:
        _devnet, base_url = pipeline.enter_context(live_pipeline(database_url, retry_ms=777))
        async with subscription(base_url, "all=true") as (response, _):
            reading = asyncio.create_task(read_sse(response, got))
            await asyncio.sleep(0.2)
            stopping = time.monotonic()
            await asyncio.to_thread(pipeline.close)  # stops the server while this stream is open
            stopped = time.monotonic() - stopping
            await asyncio.wait_for(reading, 5)
    assert stopped < 1.5, "the server waited on an open stream"
    assert got.retry == 777
    assert got.comments == 0


async def test_cors_allows_only_the_configured_origins(database_url: str) -> None:
    with live_pipeline(database_url, cors_origins="https://app.example") as (_devnet, base_url):
        async with http_client() as client:
            allowed = await client.get(f"{base_url}/health", headers={"Origin": "https://app.example"})
            other = await client.get(f"{base_url}/health", headers={"Origin": "https://evil.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        assert "access-control-allow-origin" not in other.headers


async def test_behind_a_trusted_proxy_the_per_ip_cap_counts_the_forwarded_clients(database_url: str) -> None:
    def forwarded(chain: str) -> dict[str, str]:
        return {"X-Forwarded-For": chain}

    with live_pipeline(database_url, max_connections_per_ip=1, trusted_proxies="127.0.0.1",
                       heartbeat_interval=0.1) as (_devnet, base_url):
        async with subscription(base_url, "all=true", forwarded("203.0.113.1")) as (first, _), \
                subscription(base_url, "all=true", forwarded("198.51.100.7, 203.0.113.2")) as (second, _), \
                http_client() as client:
            assert (first.status_code, second.status_code) == (200, 200)
            again = await client.get(f"{base_url}/events/subscribe?all=true",
                                     headers=forwarded("192.0.2.9, 203.0.113.1"))  # the proxy saw 203.0.113.1
            assert again.status_code == 429 and "203.0.113.1" in again.json()["error"]


async def test_forwarded_addresses_from_anyone_else_are_ignored(database_url: str) -> None:
    with live_pipeline(database_url, max_connections_per_ip=1, heartbeat_interval=0.1) as (_devnet, base_url):
        async with subscription(base_url, "all=true", {"X-Forwarded-For": "203.0.113.1"}) as (first, _), \
                http_client() as client:
            assert first.status_code == 200
            second = await client.get(f"{base_url}/events/subscribe?all=true",
                                      headers={"X-Forwarded-For": "203.0.113.2"})
        assert second.status_code == 429 and "127.0.0.1" in second.json()["error"]
