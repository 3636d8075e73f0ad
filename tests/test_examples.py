"""examples/eventsource/index.html in headless Chromium, served from another origin against the real
API: it lists live events, and when the server answers 400 to its resume id (here: the API comes back
on another database, which never had that event) it says why, stops retrying, and starts again from
now when asked."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright
from starlette.staticfiles import StaticFiles

from api.app import Server, create_app
from devnet import running_devnet
from tests.conftest import _admin, with_database
from tests.indexing import worker_settings
from tests.live import add_traffic, index_now
from tests.serving import http_client, running_app
from tests.test_page import CHROMIUM, CHROMIUM_ARGS, wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None,
                       reason="no Chromium binary (install Debian's `chromium` package or set CHROMIUM_PATH)"),
]
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "eventsource" / "index.html"


def example_page(folder: Path, api_url: str) -> Path:
    """The example with `API` and `FILTER` edited, as its README says to."""
    html = EXAMPLE.read_text()
    for old, new in (('const API = "http://localhost:8080";', f'const API = "{api_url}";'),
                     ('new URLSearchParams({ streams: "1,2,3" })', 'new URLSearchParams({ all: "true" })')):
        assert old in html, f"the example no longer has {old}"
        html = html.replace(old, new)
    (folder / "index.html").write_text(html)
    return folder


async def listed(page: Page) -> int:
    return await page.locator("#events li").count()


async def status_text(page: Page) -> str:
    return await page.inner_text("#status")


async def test_eventsource_example_stops_on_a_400_says_why_and_starts_from_now(
    database_url: str, server_url: str, template_database: str, tmp_path: Path
) -> None:
    other = f"flowfi_other_{uuid.uuid4().hex[:8]}"
    await _admin(server_url, f'CREATE DATABASE "{other}" TEMPLATE "{template_database}"')
    other_url = with_database(server_url, other)
    try:
        with running_devnet(seed=21) as devnet, running_app(
            StaticFiles(directory=tmp_path, html=True), lifespan="off"
        ) as page_url:
            add_traffic(devnet, 50, seed=21)
            await index_now(devnet, database_url)
            settings = worker_settings(devnet, database_url, cors_origins=(page_url,), retry_ms=200)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    page = await browser.new_page()
                    requests: list[str] = []
                    page.on("request", lambda r: requests.append(r.url) if "/events/subscribe" in r.url else None)
                    with running_app(create_app(settings, database_url), server_class=Server) as api_url:
                        port = int(api_url.rsplit(":", 1)[1])
                        example_page(tmp_path, api_url)
                        await page.goto(f"{page_url}/index.html")
                        await wait_for(lambda: _text_is(page, "live"), "the example to be live")
                        add_traffic(devnet, 30, seed=22)
                        await index_now(devnet, database_url)
                        await wait_for(lambda: _has(page, 1), "events listed")
                    # The API returns on a database that never had the last event listed: 400.
                    with running_app(create_app(settings, other_url), server_class=Server, port=port):
                        await wait_for(lambda: _text_starts(page, "stopped: unknown event id"), "the refusal")
                        asked = len(requests)
                        await asyncio.sleep(1.5)
                        assert len(requests) == asked, "a 400 is final: no more attempts"
                        assert await page.locator("#status button").inner_text() == "start from now"
                        before = await listed(page)
                        await page.click("#status button")
                        await wait_for(lambda: _text_is(page, "live"), "live again, from now")
                        assert "lastEventId" not in requests[-1]
                        await index_now(devnet, other_url)
                        await wait_for(lambda: _has(page, before + 1), "new events listed")
                finally:
                    await browser.close()
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{other}" WITH (FORCE)')


async def _text_is(page: Page, text: str) -> bool:
    return await status_text(page) == text


async def _text_starts(page: Page, text: str) -> bool:
    return (await status_text(page)).startswith(text)


async def _has(page: Page, count: int) -> bool:
    return await listed(page) >= count


async def test_eventsource_example_served_from_an_origin_the_api_refuses_says_so(
    database_url: str, tmp_path: Path
) -> None:
    """EventSource and fetch fail alike on a CORS refusal, which a page cannot tell from a server that is
    down: the status names both, and the setting to check."""
    with running_devnet(seed=23) as devnet, running_app(
        StaticFiles(directory=tmp_path, html=True), lifespan="off"
    ) as page_url:
        settings = worker_settings(devnet, database_url, cors_origins=("http://elsewhere.example",))
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page()
                with running_app(create_app(settings, database_url), server_class=Server) as api_url:
                    example_page(tmp_path, api_url)
                    await page.goto(f"{page_url}/index.html")
                    await wait_for(lambda: _text_starts(page, "reconnecting in"), "a failed first attempt")
                    async with http_client() as client:  # the API is up: the refusal is the origin's
                        assert (await client.get(f"{api_url}/health")).status_code == 200
                    assert (await status_text(page)).endswith(
                        f"(the API is unreachable, or does not let this page's origin, {page_url}, in: see its "
                        "FLOWFI_CORS_ORIGINS)")
            finally:
                await browser.close()
