"""The live signals page in a real headless Chromium, against real gateway processes."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from common.constants import DEFAULT_CHANNEL
from common.publish import SignalPublisher
from common.schema import make_signal
from tests.browser.conftest import ADMIN_TOKEN, ARTIFACTS, open_page
from tests.browser.prefix_proxy import prefix_proxy
from tests.conftest import ServiceFactory
from tests.support.services import ServiceProcess

if TYPE_CHECKING:
    from playwright.async_api import Browser, Locator, Page

expect = pytest.importorskip("playwright.async_api", reason="playwright not installed").expect

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Stack:
    gateway: ServiceProcess
    redis: aioredis.Redis


@pytest.fixture
async def stack(shared_gateway: tuple[str, ServiceProcess]) -> AsyncIterator[Stack]:
    url, gateway = shared_gateway
    client = aioredis.Redis.from_url(url)
    await client.flushall()  # each test starts with no history and no dedupe keys
    try:
        yield Stack(gateway, client)
    finally:
        await client.aclose()


def signal(n: int, symbol: str, side: str, price: float, ts: float | None = None) -> dict[str, Any]:
    return make_signal(
        signal_id=f"{symbol}:test:{n}",
        signal_type=side,  # type: ignore[arg-type]
        price=price,
        symbol=symbol,
        strategy="sma_cross",
        ts=ts,
    )


async def publish(client: aioredis.Redis, *signals: dict[str, Any]) -> None:
    """Plain PUBLISH, as the design's own publisher does (no history entry)."""
    for sig in signals:
        await client.publish(DEFAULT_CHANNEL, orjson.dumps(sig))


async def publish_with_history(client: aioredis.Redis, *signals: dict[str, Any]) -> None:
    """The monitor's way: history entry and publish in one step."""
    publisher = SignalPublisher(client, DEFAULT_CHANNEL)
    for sig in signals:
        assert await publisher.publish(sig)


async def wait_ready(page: Page, subscribed: str = "") -> None:
    """Connected, history loaded, and the gateway confirmed the filter."""
    await expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    await expect(page.locator("body")).to_have_attribute("data-history", "loaded")
    await expect(page.locator("body")).to_have_attribute("data-subscribed", subscribed)


def row(page: Page, sig: dict[str, Any]) -> Locator:
    return page.locator(f'#signal-rows tr[data-id="{sig["id"]}"]')


async def row_ids(page: Page) -> list[str]:
    ids: list[str] = await page.locator("#signal-rows tr").evaluate_all(
        "rows => rows.map(r => r.dataset.id || '')"
    )
    return ids


async def test_loads_history_with_no_console_errors(browser: Browser, stack: Stack) -> None:
    gateway, redis_client = stack.gateway, stack.redis
    now = time.time()
    history = [
        signal(i, sym, "BUY" if i % 2 else "SELL", 100 + i, ts=now - 60 + i)
        for i, sym in enumerate(["BTC-USD", "ETH-USD", "SOL-USD"] * 2)
    ]
    await publish_with_history(redis_client, *history)

    page, watch = await open_page(browser, f"{gateway.base_url}/", gateway.base_url)
    await wait_ready(page)

    assert await row_ids(page) == [s["id"] for s in reversed(history)]  # newest first
    await expect(page.locator("#cards > li")).to_have_count(3)
    # The replica and pid are behind a tooltip, not in the header's text.
    pid = gateway.proc.pid  # type: ignore[union-attr]
    await expect(page.locator("#replica")).to_have_attribute(
        "title", re.compile(rf"process {pid}$")
    )
    await expect(page.locator("#signals-empty")).to_be_hidden()
    card = page.locator('#cards li[data-symbol="ETH-USD"]')
    await expect(card.locator(".card-price")).to_have_text("104.00")
    # Accessible structure: a captioned table with column headers, labelled checkboxes.
    assert await page.locator("table caption").count() == 1
    assert await page.locator('thead th[scope="col"]').count() == 6
    await expect(page.get_by_role("checkbox", name="BTC-USD")).to_be_visible()
    await page.wait_for_timeout(300)  # let late errors (e.g. a favicon 404) arrive
    assert watch.errors == []
    assert watch.foreign_requests == []


async def test_live_signals_styles_dedupe_and_system_messages(
    browser: Browser, stack: Stack
) -> None:
    gateway, redis_client = stack.gateway, stack.redis
    page, watch = await open_page(browser, gateway.base_url, gateway.base_url)
    await wait_ready(page)
    await expect(page.locator("#signals-empty")).to_have_text("No signals yet.")

    buy, sell = signal(1, "BTC-USD", "BUY", 60000.5), signal(2, "BTC-USD", "SELL", 60100)
    started = time.monotonic()
    await publish(redis_client, buy)
    await row(page, buy).wait_for(timeout=1000)  # within a second of the publish
    latency_s = time.monotonic() - started
    await publish(redis_client, sell, buy)  # buy again: same id, must not add a row
    await row(page, sell).wait_for(timeout=1000)
    await publish(redis_client, {"type": "BUY", "price": 60000})  # the minimal form
    await expect(page.locator("#signal-rows tr")).to_have_count(3)
    await page.wait_for_timeout(200)
    assert await row_ids(page) == ["", sell["id"], buy["id"]]

    buy_side = row(page, buy).locator(".side")
    sell_side = row(page, sell).locator(".side")
    # Not by colour alone: an arrow and the word, and a different colour.
    await expect(buy_side).to_have_text("▲ BUY")
    await expect(sell_side).to_have_text("▼ SELL")
    colour = "el => getComputedStyle(el).color"
    assert await buy_side.evaluate(colour) == "rgb(52, 211, 153)"
    assert await sell_side.evaluate(colour) == "rgb(251, 113, 133)"
    await expect(page.locator("#signal-rows tr").first.locator("td.sym")).to_have_text("—")
    card = page.locator('#cards li[data-symbol="BTC-USD"]')
    await expect(card.locator(".card-price")).to_have_text("60,100.00")
    await expect(card.locator(".side")).to_have_text("▼ SELL")

    async with httpx.AsyncClient() as http:
        resp = await http.post(
            f"{gateway.base_url}/api/broadcast",
            json={"message": "Maintenance at 18:00 UTC", "level": "warning"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
    assert resp.status_code == 202
    message = page.locator("#message-list li.msg-warning")
    await expect(message).to_contain_text("Warning: Maintenance at 18:00 UTC")
    assert watch.errors == []
    print(f"publish -> row visible: {latency_s * 1000:.0f} ms")


async def test_filter_uses_subscriptions_and_the_keyboard(browser: Browser, stack: Stack) -> None:
    gateway, redis_client = stack.gateway, stack.redis
    await publish_with_history(
        redis_client, signal(1, "BTC-USD", "BUY", 1), signal(2, "ETH-USD", "SELL", 2)
    )
    page, watch = await open_page(browser, gateway.base_url, gateway.base_url)
    await wait_ready(page)

    await page.get_by_role("checkbox", name="BTC-USD").focus()
    await page.keyboard.press("Space")
    await expect(page.locator("body")).to_have_attribute("data-subscribed", "BTC-USD")
    await expect(page.locator("#filter-hint")).to_contain_text("Receiving only BTC-USD")
    await expect(page.locator('#cards li[data-symbol="ETH-USD"]')).to_be_hidden()
    await expect(page.locator('#signal-rows tr[data-symbol="ETH-USD"]')).to_be_hidden()

    eth, btc = signal(3, "ETH-USD", "BUY", 3), signal(4, "BTC-USD", "SELL", 4)
    await publish(redis_client, eth, btc)
    await expect(row(page, btc)).to_be_visible(timeout=1000)
    await page.wait_for_timeout(200)
    # Filtered out by the gateway itself: the ETH signal never reached the browser.
    assert not any(eth["id"] in frame for frame in watch.frames)
    assert any(btc["id"] in frame for frame in watch.frames)
    await expect(row(page, eth)).to_have_count(0)

    await page.get_by_role("button", name="Show all symbols").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("body")).to_have_attribute("data-subscribed", "")
    eth2 = signal(5, "ETH-USD", "BUY", 5)
    await publish(redis_client, eth2)
    await expect(row(page, eth2)).to_be_visible(timeout=1000)
    await expect(page.locator('#cards li[data-symbol="ETH-USD"]')).to_be_visible()
    assert watch.errors == []


async def test_reconnects_after_gateway_restart_without_duplicates(
    browser: Browser, service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    page, watch = await open_page(browser, gateway.base_url, gateway.base_url)
    await wait_ready(page)
    first = signal(1, "BTC-USD", "BUY", 10)
    await publish_with_history(redis_client, first)
    await expect(row(page, first)).to_be_visible(timeout=1000)
    await page.get_by_role("checkbox", name="BTC-USD").check()
    await expect(page.locator("body")).to_have_attribute("data-subscribed", "BTC-USD")
    old_pid = await page.locator("#replica").get_attribute("data-pid")

    gateway.stop()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
    missed = signal(2, "BTC-USD", "SELL", 11)
    await publish_with_history(redis_client, missed)  # while no gateway is up
    restarted = ServiceProcess("gateway", gateway.env, port=gateway.port)
    try:
        restarted.start()
        # The page reconnects by itself, re-sends its filter and backfills the gap.
        await wait_ready(page, subscribed="BTC-USD")
        await expect(page.locator("#replica")).not_to_have_attribute("data-pid", old_pid or "")
        await expect(row(page, missed)).to_be_visible()
        eth, btc = signal(3, "ETH-USD", "BUY", 12), signal(4, "BTC-USD", "BUY", 13)
        await publish_with_history(redis_client, eth, btc)
        await expect(row(page, btc)).to_be_visible(timeout=1000)
        await page.wait_for_timeout(200)
    finally:
        restarted.stop()
    # History was fetched twice and `first` is in it: still one row per signal.
    assert await row_ids(page) == [btc["id"], missed["id"], first["id"]]
    assert not any(eth["id"] in frame for frame in watch.frames)
    assert watch.script_errors() == []


async def test_works_behind_an_ingress_path_prefix(browser: Browser, stack: Stack) -> None:
    gateway, redis_client = stack.gateway, stack.redis
    first = signal(1, "BTC-USD", "BUY", 10)
    await publish_with_history(redis_client, first)
    async with prefix_proxy(gateway.base_url, "/signals") as base:
        origin = base.removesuffix("/signals")
        page, watch = await open_page(browser, f"{base}/", origin)
        await wait_ready(page)
        await expect(row(page, first)).to_be_visible()
        live = signal(2, "BTC-USD", "SELL", 11)
        await publish(redis_client, live)
        await expect(row(page, live)).to_be_visible(timeout=1000)
        await expect(page.locator("#replica")).to_have_attribute("title", re.compile("process"))

        # Without the trailing slash, relative URLs would miss the prefix: the page adds it.
        # (Chromium's preload scanner may still ask for the assets at the wrong place once.)
        bare, bare_watch = await open_page(browser, base, origin)
        await expect(bare).to_have_url(f"{base}/")
        await wait_ready(bare)
        await expect(row(bare, first)).to_be_visible()
        await page.context.close()
        await bare.context.close()
    # Every request, the Socket.IO ones included, went through the prefix.
    outside = [u for u in watch.requests if not u.startswith((base, base.replace("http", "ws")))]
    assert outside == [], watch.requests
    assert any("/signals/socket.io/" in u for u in watch.requests)
    assert watch.errors == []
    assert bare_watch.script_errors() == []


async def test_screenshots_desktop_and_phone(browser: Browser, stack: Stack) -> None:
    gateway, redis_client = stack.gateway, stack.redis
    now = time.time()
    prices = {"BTC-USD": 64210.0, "ETH-USD": 3120.0, "SOL-USD": 142.5, "DOGE-USD": 0.1234}
    history = []
    for i in range(24):
        sym = list(prices)[i % 4]
        # A random-looking walk; SOL drifts down so one sparkline shows the falling colour.
        drift = -0.006 if sym == "SOL-USD" else 0.0
        prices[sym] *= 1 + (0.004 if (i * 7) % 5 > 1 else -0.005) + drift
        strategy = ["sma_cross", "rsi", "macd"][i % 3]
        sig = signal(
            i,
            sym,
            "BUY" if (i * 3) % 5 > 1 else "SELL",
            round(prices[sym], 4),
            ts=now - 240 + i * 10,
        )
        history.append({**sig, "strategy": strategy})
    await publish_with_history(redis_client, *history)
    ARTIFACTS.mkdir(exist_ok=True)

    for name, viewport in {"desktop": (1280, 900), "phone": (390, 844)}.items():
        page, watch = await open_page(
            browser,
            gateway.base_url,
            gateway.base_url,
            viewport={"width": viewport[0], "height": viewport[1]},
            reduced_motion="reduce",
        )
        await wait_ready(page)
        async with httpx.AsyncClient() as http:
            await http.post(
                f"{gateway.base_url}/api/broadcast",
                json={"message": "Simulated market: prices are not real.", "level": "info"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
        await expect(page.locator("#message-list li")).to_have_count(1)
        # Nothing wider than the screen: no sideways scrolling of the whole page.
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name}: page is {overflow}px wider than the viewport"
        path = ARTIFACTS / f"signals-page-{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000
        assert watch.errors == []
        await page.context.close()
