"""The application as served (api.app with its Server): what every response carries, the live page's
own headers, the methods the stream endpoint takes, and whose address a request comes from."""

from __future__ import annotations

import asyncio

from tests.live import live_pipeline, subscription
from tests.serving import http_client


async def test_responses_carry_security_headers_and_no_server_banner(database_url: str) -> None:
    with live_pipeline(database_url) as (_devnet, base_url):
        async with http_client(base_url=base_url) as client:
            responses = [await client.get(path) for path in ("/health", "/nowhere", "/streams?limit=0", "/")]
        async with subscription(base_url, "all=true") as (stream, _):
            responses.append(stream)
    for response in responses:
        assert response.headers["x-content-type-options"] == "nosniff", response.url
        assert response.headers["x-frame-options"] == "DENY"
        assert "server" not in response.headers, response.url
    page = responses[3]
    assert page.headers["content-type"].startswith("text/html")
    policy = dict(part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";"))
    assert policy["frame-ancestors"] == "'none'"
    assert policy["default-src"] == "'none'" and policy["connect-src"] == "'self'"


async def test_head_on_the_stream_endpoint_is_refused_and_admits_no_subscriber(database_url: str) -> None:
    with live_pipeline(database_url) as (_devnet, base_url):
        async with http_client(base_url=base_url, timeout=5) as client:
            head = await client.head("/events/subscribe?all=true")
            await asyncio.sleep(0.2)
            stats = (await client.get("/events/stats")).json()
    assert head.status_code == 405 and head.headers["allow"] == "GET"
    assert stats["activeConnections"] == 0
