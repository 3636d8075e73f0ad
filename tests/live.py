"""Helpers for the live-path tests: a local network feeding a worker feeding an API server, and an
SSE reader that records what it receives."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from api.app import Server, create_app
from devnet import Devnet, Traffic, running_devnet
from indexer.worker import Worker
from tests.indexing import worker_settings
from tests.serving import http_client, running_app


@dataclass
class Received:
    ids: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    data: list[dict[str, Any]] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)  # time.monotonic() of each event's arrival
    retry: int | None = None
    comments: int = 0
    positions: list[str] = field(default_factory=list)  # ids sent without data


async def read_sse(response: httpx.Response, into: Received, stop_after: int | None = None) -> None:
    """Parse an SSE body into `into` until it ends (or `stop_after` events)."""
    event: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in event and event.get("event") != "error":
                into.ids.append(event.get("id", ""))
                into.types.append(event.get("event", "message"))
                into.data.append(json.loads(event["data"]))
                into.received_at.append(time.monotonic())
                if stop_after is not None and len(into.ids) >= stop_after:
                    return
            elif "id" in event and "data" not in event:
                into.positions.append(event["id"])
            event = {}
        elif line.startswith(":"):
            into.comments += 1
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "retry":
                into.retry = int(value)
            else:
                event[name] = value


@contextlib.contextmanager
def live_pipeline(database_url: str, **api_options: Any) -> Iterator[tuple[Devnet, str]]:
    """A manual local network and an API server on `database_url`; index with `index_now`."""
    with running_devnet() as devnet:
        settings = worker_settings(devnet, database_url, **api_options)
        with running_app(create_app(settings, database_url), server_class=Server) as base_url:
            yield devnet, base_url


async def index_now(devnet: Devnet, database_url: str, page_size: int = 100) -> None:
    """Index everything the local network has, in pages, then return."""
    from tests.indexing import index_until_caught_up

    worker = Worker(worker_settings(devnet, database_url, page_size=page_size), database_url)
    await index_until_caught_up(worker, devnet)


def add_traffic(devnet: Devnet, events: int, seed: int = 1) -> None:
    devnet.chain.generate_history(events, traffic=Traffic(seed=seed), tx_per_ledger=10)


@contextlib.asynccontextmanager
async def subscription(base_url: str, query: str, headers: dict[str, str] | None = None
                       ) -> AsyncIterator[tuple[httpx.Response, Received]]:
    async with http_client(timeout=httpx.Timeout(30.0, read=60.0)) as client, client.stream(
        "GET", f"{base_url}/events/subscribe?{query}", headers=headers or {}
    ) as response:
        yield response, Received()


async def all_event_ids(conn: Any) -> list[str]:
    return [r["id"] for r in await conn.fetch("SELECT id FROM events ORDER BY id")]


async def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)
