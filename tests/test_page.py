"""The live page in headless Chromium, against the real API fed by the local network and the worker:
events appear, balances load, and after the API server is stopped, replaced for a while by a 503
(the EventSource gives up) and restarted on the same port, the page resumes by itself and shows every
event exactly once (compared with the events table).

Needs a Chromium binary (Debian: `apt-get install chromium`) and the `playwright` Python package; it
never downloads a browser. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from playwright.async_api import Page, Response, async_playwright

from api.app import Server, create_app
from api.tail import format_amount
from devnet import running_devnet
from indexer.accrual import Terms, claimable
from indexer.database import asyncpg_dsn
from indexer.worker import Worker
from tests.indexing import worker_settings
from tests.live import add_traffic, index_now
from tests.serving import running_app

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None,
                       reason="no Chromium binary (install Debian's `chromium` package or set CHROMIUM_PATH)"),
]
SENDER = "GBDK4KAKYLSGPQSZB65NBASVBK7D6X7C6XCNA3EANO3KT7ZBDLGTP72S"
RECIPIENT = "GDPMDGEVMG3NDHKMATXNBCVOOLZQEIIM2J6FSWTUXLGXWFNU5UWZDWK6"
TOKEN = "CC5VQ6PDN44JTGIJ7XZAN2WPQHHCRQLOKWI2RRAXXRS3WR2HI25AHEX2"


def api_server(
    app: Any, port: int = 0, lifespan: Literal["on", "off"] = "on"
) -> contextlib.AbstractContextManager[str]:
    """Serve `app` with the API's own server class (stopping it closes every SSE stream, as in
    production) on 127.0.0.1:`port`."""
    return running_app(app, lifespan=lifespan, server_class=Server, port=port)


async def unavailable(scope: Any, receive: Any, send: Any) -> None:
    """What a load balancer answers while the API is being redeployed: 503 to everything."""
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1")]})
    await send({"type": "http.response.body", "body": b'{"error": "deploying"}'})


async def page_ids(page: Page) -> list[str]:
    """The ids the page lists, oldest first."""
    ids: list[str] = await page.eval_on_selector_all("#events li", "items => items.map(i => i.dataset.id)")
    return ids[::-1]


async def wait_for(condition: Any, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def status(page: Page) -> tuple[str, str]:
    state = await page.get_attribute("#status", "data-state") or ""
    return state, await page.inner_text("#status")


async def test_page_shows_live_events_and_resumes_once_each_after_a_server_restart(database_url: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    db = await asyncpg.connect(asyncpg_dsn(database_url))
    with running_devnet(ledger_interval=0.2, traffic_per_ledger=3, seed=1) as devnet:
        settings = worker_settings(devnet, database_url, retry_ms=300, heartbeat_interval=1.0)
        worker = Worker(settings, database_url)
        indexing = asyncio.create_task(worker.run())
        try:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    page = await browser.new_page(viewport={"width": 1280, "height": 900})
                    console_errors: list[str] = []
                    page.on("pageerror", lambda exc: console_errors.append(str(exc)))
                    requests: list[tuple[str | None, str | None, int]] = []  # Last-Event-ID, lastEventId=, status

                    async def record(response: Response) -> None:
                        if "/events/subscribe" in response.url:
                            headers = await response.request.all_headers()
                            query = parse_qs(urlsplit(response.url).query).get("lastEventId", [None])[0]
                            requests.append((headers.get("last-event-id"), query, response.status))

                    page.on("response", record)
                    with api_server(create_app(settings, database_url)) as base_url:
                        port = int(base_url.rsplit(":", 1)[1])
                        await page.goto(f"{base_url}/?all=true")
                        await wait_for(lambda: _state_is(page, "live"), "the page to be live")
                        await wait_for(lambda: _has_events(page, 20), "20 events on the page")
                        await _check_balances(page)
                        before = await page_ids(page)
                    # The server is down: the page says so and the worker keeps indexing meanwhile.
                    await wait_for(lambda: _state_is(page, "reconnecting"), "the page to notice the drop")
                    state, text = await status(page)
                    assert before[-1] in text or "Reconnecting" in text
                    await page.screenshot(path=str(ARTIFACTS / "live-page-reconnecting.png"), full_page=False)
                    down_from = await db.fetchval("SELECT max(id) FROM events")
                    # Then a load balancer answers 503 for a while: the EventSource gives up (CLOSED)
                    # and the page must reconnect by itself, with lastEventId.
                    with api_server(unavailable, port, lifespan="off"):
                        await wait_for(lambda: _got_503(requests), "the page to meet the 503")
                        await asyncio.sleep(1.0)
                    missed = await db.fetchval("SELECT count(*) FROM events WHERE id > $1", down_from)
                    assert missed > 0, "events happened while the API was down"
                    with api_server(create_app(settings, database_url), port) as base_url_again:
                        assert base_url_again == base_url
                        await wait_for(lambda: _state_is(page, "live"), "the page to be live again")
                        worker.stop()
                        await asyncio.wait_for(indexing, 15)
                        last = await db.fetchval("SELECT max(id) FROM events")
                        await wait_for(lambda: _shows(page, last), "the page to show the last indexed event")
                        shown = await page_ids(page)
                        assert len(shown) == len(set(shown)), "an event is listed twice"
                        expected = [r["id"] for r in await db.fetch(
                            "SELECT id FROM events WHERE id >= $1 ORDER BY id", shown[0])]
                        assert shown == expected, "the page lost or reordered events across the restart"
                        assert set(before) <= set(shown) or len(shown) == 500
                        assert any(down_from < i for i in shown)
                        assert requests[0] == (None, None, 200), "the first connect is live only"
                        after_503 = requests[[status for _, _, status in requests].index(503) + 1:]
                        assert any(q and status == 200 for _, q, status in after_503), \
                            "after the 503 the page reconnected by itself with lastEventId"
                        await page.screenshot(path=str(ARTIFACTS / "live-page.png"), full_page=False)
                        await page.locator("#events li").nth(30).scroll_into_view_if_needed()
                        await page.screenshot(path=str(ARTIFACTS / "live-page-events.png"), full_page=False)
                        await page.set_viewport_size({"width": 390, "height": 844})
                        await page.click("#filter-panel > summary")  # folded, as it starts on a phone
                        await page.screenshot(path=str(ARTIFACTS / "live-page-phone.png"), full_page=False)
                        width = await page.evaluate("document.documentElement.scrollWidth")
                        assert width <= 400, f"the page scrolls sideways on a phone ({width}px wide)"
                    assert console_errors == []
                finally:
                    await browser.close()
        finally:
            worker.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(indexing, 15)
            await db.close()


async def test_page_explains_a_rejected_filter_instead_of_retrying(database_url: str) -> None:
    with running_devnet() as devnet:
        settings = worker_settings(devnet, database_url)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page()
                with api_server(create_app(settings, database_url)) as base_url:
                    await page.goto(f"{base_url}/?users=GNOTANADDRESS")
                    await wait_for(lambda: _state_is(page, "error"), "the page to show the refusal")
                    state, text = await status(page)
                    assert "not a valid Stellar address" in text
                    # the filters are in the URL and the form
                    assert await page.input_value("#users") == "GNOTANADDRESS"
            finally:
                await browser.close()


async def test_the_pages_balance_formula_is_the_indexers(database_url: str) -> None:
    """The page's BigInt port of `claimable` gives the Python numbers, and amounts format exactly."""
    with running_devnet() as devnet:
        settings = worker_settings(devnet, database_url)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page()
                with api_server(create_app(settings, database_url)) as base_url:
                    await page.goto(f"{base_url}/?all=true")
                    locked = 2**64 - 1
                    cases = [  # terms of every schedule, and the ledger time to ask at
                        (Terms(rate=7, deposited=1000, withdrawn=0, last_update_time=100), 150),
                        (Terms(rate=7, deposited=1000, withdrawn=0, last_update_time=100), 10_000),
                        (Terms(rate=7, deposited=1000, withdrawn=300, last_update_time=100, paused_at=120), 10_000),
                        (Terms(rate=10**18, deposited=2**127 - 1, withdrawn=5, last_update_time=1_700_000_000),
                         1_800_000_000),
                        (Terms(rate=3, deposited=90, withdrawn=0, last_update_time=200), 150),
                        (Terms(rate=7, deposited=1000, withdrawn=0, last_update_time=100, cliff_time=160), 150),
                        (Terms(rate=7, deposited=1000, withdrawn=0, last_update_time=100, cliff_time=160), 161),
                        (Terms(rate=0, deposited=600, withdrawn=100, last_update_time=100, schedule="steps",
                               steps=((200, 100), (300, 200), (400, 300))), 350),
                        (Terms(rate=0, deposited=600, withdrawn=0, last_update_time=100, schedule="steps",
                               steps=((locked, 100), (250, 500))), 10_000),
                        (Terms(rate=5, deposited=1000, withdrawn=0, last_update_time=100, schedule="hybrid",
                               cliff_time=200, cliff_amount=400), 199),
                        (Terms(rate=5, deposited=1000, withdrawn=50, last_update_time=100, schedule="hybrid",
                               cliff_time=200, cliff_amount=400), 230),
                        (Terms(rate=5, deposited=1000, withdrawn=0, last_update_time=100, schedule="hybrid",
                               cliff_time=200, cliff_amount=400, paused_at=210), 10_000),
                    ]
                    streams = [
                        {"status": "active" if t.paused_at is None else "paused", "ratePerSecond": str(t.rate),
                         "deposited": str(t.deposited), "withdrawn": str(t.withdrawn),
                         "lastUpdateTime": str(t.last_update_time),
                         "pausedAt": None if t.paused_at is None else str(t.paused_at), "schedule": t.schedule,
                         "cliffTime": None if t.cliff_time is None else str(t.cliff_time),
                         "cliffAmount": str(t.cliff_amount), "stepTimes": [str(time) for time, _ in t.steps],
                         "stepAmounts": [str(amount) for _, amount in t.steps]}
                        for t, _ in cases
                    ]
                    got = await page.evaluate(
                        """async ([streams, nows]) => {
                            const f = await import("./format.js");
                            return streams.map((s, i) => {
                                const b = f.balances(s, BigInt(nows[i]));
                                return [b.claimable.toString(), b.remaining.toString()];
                            });
                        }""",
                        [streams, [str(now) for _, now in cases]],
                    )
                    for (terms, now), (claim, remaining) in zip(cases, got, strict=True):
                        expected = claimable(terms, now)
                        left = terms.deposited - terms.withdrawn - expected
                        assert (int(claim), int(remaining)) == (expected, left), (terms, now)
                    formatted = await page.evaluate(
                        """async () => {
                            const f = await import("./format.js");
                            return [f.formatAmount("125000000", 7), f.formatAmount("1", 7),
                                    f.formatAmount((2n ** 127n - 1n).toString(), 7), f.formatAmount("0", 7)];
                        }"""
                    )
                    assert formatted == ["12.5", "0.0000001", "17,014,118,346,046,923,173,168,730,371,588.4105727",
                                         "0"]
                    lines = await page.evaluate(
                        """async () => {
                            const f = await import("./format.js");
                            return [f.amountText("ratePerSecond", "0", 2), f.amountText("oldRatePerSecond", "150", 2),
                                    f.amountText("depositedAmount", "500", 2),
                                    f.endDate((2n ** 64n - 1n).toString()), f.endDate("1700000000").getTime()];
                        }"""
                    )
                    # as `flowfi tail` writes them: every rate per second, none for a stream in steps; an end
                    # time of u64::MAX (past JavaScript's dates) is no date
                    assert lines == [None, "old rate per second 1.5/s", "deposited amount 5", None, 1_700_000_000_000]
            finally:
                await browser.close()


async def _got_503(requests: list[tuple[str | None, str | None, int]]) -> bool:
    return any(status == 503 for _, _, status in requests)


async def _state_is(page: Page, state: str) -> bool:
    return (await page.get_attribute("#status", "data-state")) == state


async def _has_events(page: Page, count: int) -> bool:
    return await page.locator("#events li").count() >= count


async def _shows(page: Page, event_id: str) -> bool:
    return await page.locator(f'#events li[data-id="{event_id}"]').count() == 1


async def _check_balances(page: Page) -> None:
    """Stream cards appear with exact decimal balances from GET /streams/{id}."""
    await wait_for(
        lambda: _card_loaded(page), "a stream card with its balance loaded", seconds=15
    )
    values = await page.eval_on_selector_all(
        ".card .claimable", "nodes => nodes.map(n => n.textContent)"
    )
    assert any(v and v != "—" for v in values)
    for value in values:
        if value != "—":
            assert value.replace(",", "").replace(".", "", 1).isdigit(), value


async def _card_loaded(page: Page) -> bool:
    texts = await page.eval_on_selector_all(".card .claimable", "nodes => nodes.map(n => n.textContent)")
    return any(text != "—" for text in texts)


def call(devnet: Any, function: str, **args: Any) -> Any:
    """Invoke the local network's contract in a ledger of its own; the call's result."""
    receipt = devnet.chain.execute(function, args)
    assert receipt.error is None, receipt.error
    return receipt.result


async def card_texts(page: Page) -> dict[str, dict[str, str]]:
    """Each stream card's figures, by stream id."""
    cards: list[dict[str, str]] = await page.eval_on_selector_all(".card", """cards => cards.map(c => ({
        stream: c.dataset.stream, state: c.querySelector('.state').textContent,
        claimable: c.querySelector('.claimable').textContent, ends: c.querySelector('.ends').textContent,
        parties: c.querySelector('.parties').textContent}))""")
    return {card["stream"]: card for card in cards}


async def test_page_opened_on_streams_shows_their_state_first_then_every_later_event_once(
    database_url: str, db: asyncpg.Connection
) -> None:
    with running_devnet(seed=7) as devnet:
        add_traffic(devnet, 300, seed=7)
        chosen = [str(call(devnet, "create_stream", sender=SENDER, recipient=RECIPIENT, token_address=TOKEN,
                                amount=10**12 + n, duration=3600 * (n + 1))) for n in range(4)]
        other = chosen.pop()  # events of a stream not on the page
        call(devnet, "pause_stream", sender=SENDER, stream_id=int(chosen[1]))
        await index_now(devnet, database_url)
        rows = await db.fetch("SELECT stream_id, status FROM streams WHERE stream_id = ANY($1::numeric[])", chosen)
        settings = worker_settings(devnet, database_url)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page()
                subscribed: list[str | None] = []
                page.on("request", lambda request: subscribed.append(
                    parse_qs(urlsplit(request.url).query).get("lastEventId", [None])[0])
                    if "/events/subscribe" in request.url else None)
                with api_server(create_app(settings, database_url)) as base_url:
                    loaded_at = await db.fetchval("SELECT max(id) FROM contract_events")
                    await page.goto(f"{base_url}/?streams={','.join(chosen)}")
                    await wait_for(lambda: _state_is(page, "live"), "the page to be live")
                    # Before any new event: every chosen stream's card, from REST.
                    cards = await card_texts(page)
                    assert set(cards) == set(chosen)
                    for row in rows:
                        card = cards[str(row["stream_id"])]
                        assert card["state"] == row["status"] and card["claimable"] != "—"
                        assert " · token " in card["parties"]
                    assert await page.locator("#events li").count() == 0
                    assert subscribed[0] == loaded_at, "live from the id the state was loaded at"
                    # Then new events of those streams arrive, among others, each once, with nothing missed.
                    for n, stream in enumerate([chosen[0], chosen[2], chosen[0]]):
                        call(devnet, "top_up_stream", sender=SENDER, stream_id=int(other), amount=1000 + n)
                        call(devnet, "top_up_stream", sender=SENDER, stream_id=int(stream), amount=1000 + n)
                        if n == 1:
                            await index_now(devnet, database_url)
                    call(devnet, "resume_stream", sender=SENDER, stream_id=int(chosen[1]))
                    await index_now(devnet, database_url)
                    expected = [r["id"] for r in await db.fetch(
                        "SELECT id FROM events WHERE id > $1 AND stream_id = ANY($2::numeric[]) ORDER BY id",
                        loaded_at, chosen)]
                    assert len(expected) >= 4, "three top-ups and a resume"
                    await wait_for(lambda: _shows(page, expected[-1]), "the last event of the chosen streams")
                    assert await page_ids(page) == expected
                    # Opened on an address: that address's streams, running ones first, at once.
                    by_user = await browser.new_page()
                    await by_user.goto(f"{base_url}/?users={SENDER}")
                    await wait_for(lambda: _state_is(by_user, "live"), "the page on an address to be live")
                    cards = await card_texts(by_user)
                    assert set(cards) == {*chosen, other}
                    assert all(card["claimable"] != "—" for card in cards.values())
            finally:
                await browser.close()


async def test_an_active_stream_that_has_fully_accrued_says_so(database_url: str, db: asyncpg.Connection) -> None:
    with running_devnet() as devnet:
        start = devnet.chain.latest.close_time + 1
        devnet.chain.execute("create_stream", {"sender": SENDER, "recipient": RECIPIENT, "token_address": TOKEN,
                                               "amount": 125_000_000, "duration": 10}, close_time=start)
        devnet.chain.close_ledger(start + 600)  # ten minutes later: all of it has accrued
        await index_now(devnet, database_url)
        row = await db.fetchrow("SELECT stream_id, status, end_time, deposited FROM streams")
        assert row["status"] == "active" and row["end_time"] <= start + 600
        settings = worker_settings(devnet, database_url)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page()
                with api_server(create_app(settings, database_url)) as base_url:
                    await page.goto(f"{base_url}/?streams={row['stream_id']}")
                    await wait_for(lambda: _state_is(page, "live"), "the page to be live")
                    card = (await card_texts(page))[str(row["stream_id"])]
                    left = format_amount(row["deposited"], 7)
                    assert card["ends"] == f"Fully streamed, {left} left to withdraw"
                    assert "Runs dry" not in card["ends"]
                    assert card["claimable"] == left
                    ARTIFACTS.mkdir(exist_ok=True)
                    await page.screenshot(path=str(ARTIFACTS / "live-page-fully-streamed.png"))
            finally:
                await browser.close()
