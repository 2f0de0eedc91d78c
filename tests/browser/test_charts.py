"""Issue 16's page in real headless Chromium: charts with the signals on them, readable
signals, filters in the URL, phone width. Real gateway processes (and a real monitor in the
last test); bars are written to Redis in the monitor's own format, so counts are exact."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
import pytest
import redis.asyncio as aioredis

from common.constants import DEFAULT_CHANNEL, bars_channel, bars_key, monitor_info_key
from common.schema import make_signal
from tests.browser.conftest import PageWatch
from tests.browser.test_page import publish_with_history, wait_ready
from tests.conftest import ServiceFactory
from tests.support.services import ServiceProcess

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, Route

expect = pytest.importorskip("playwright.async_api", reason="playwright not installed").expect

pytestmark = pytest.mark.e2e

TF = 2  # seconds per bar
T0 = 1_780_000_000.0  # first bar's open time


@pytest.fixture
async def market(
    shared_gateway: tuple[str, ServiceProcess],
) -> AsyncIterator[tuple[ServiceProcess, aioredis.Redis]]:
    """60 BTC-USD and 30 DOGE-USD bars, the monitor's info hash, and six signals."""
    url, gateway = shared_gateway
    client = aioredis.Redis.from_url(url)
    await client.flushall()
    await client.hset(
        monitor_info_key(DEFAULT_CHANNEL),
        mapping={
            "source": "sim",
            "simulated": "1",
            "timeframe": f"{TF}s",
            "symbols": "BTC-USD,DOGE-USD",
            "strategies": "sma_cross,bollinger",
        },
    )
    for symbol, count, price in (("BTC-USD", 60, 60000.0), ("DOGE-USD", 30, 0.1234)):
        # The monitor's list: [close time, o, h, l, c, v], oldest first.
        rows = [bar_row(i, price * (1 + 0.001 * ((i * 7) % 5 - 2))) for i in range(count)]
        await client.rpush(bars_key(DEFAULT_CHANNEL, symbol), *rows)
    await publish_with_history(client, *SIGNALS)
    try:
        yield gateway, client
    finally:
        await client.aclose()


def bar_row(i: int, close: float) -> bytes:
    return orjson.dumps([T0 + (i + 1) * TF, close, close * 1.001, close * 0.999, close, 1.0])


def sig(n: int, symbol: str, side: str, bar: int, *, strategy: str, price: float) -> dict[str, Any]:
    params = {"fast": 5, "slow": 20} if strategy == "sma_cross" else {"period": 20, "width": 2}
    return make_signal(
        signal_id=f"{symbol}:{strategy}:{n}",
        signal_type=side,  # type: ignore[arg-type]
        price=price,
        symbol=symbol,
        strategy=strategy,
        ts=T0 + (bar + 1) * TF,  # the close of bar `bar`
        timeframe=f"{TF}s",
        params=params,
        indicators={"x": 1.0},
        reason=f"{strategy} reason {n}",
    )


SIGNALS = [
    sig(1, "BTC-USD", "BUY", 25, strategy="sma_cross", price=60012.345),
    sig(2, "BTC-USD", "SELL", 35, strategy="bollinger", price=60100.0),
    sig(3, "BTC-USD", "SELL", 45, strategy="sma_cross", price=59950.5),
    sig(4, "BTC-USD", "BUY", 55, strategy="sma_cross", price=60020.0),
    sig(5, "DOGE-USD", "BUY", 10, strategy="bollinger", price=0.12345678),
    sig(6, "DOGE-USD", "SELL", 20, strategy="sma_cross", price=0.1229),
]


class Guard:
    """Routes every request: records it, and refuses any not to the gateway's origin."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.urls: list[str] = []

    async def __call__(self, route: Route) -> None:
        url = route.request.url
        self.urls.append(url)
        if origin_of(url) != self.origin:
            await route.abort()
        else:
            await route.continue_()


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def open_guarded(
    browser: Browser, url: str, origin: str, **context: Any
) -> tuple[Page, PageWatch, Guard]:
    ctx = await browser.new_context(**context)
    guard = Guard(origin)
    await ctx.route("**/*", guard)
    page = await ctx.new_page()
    watch = PageWatch(origin)
    page.on("console", watch.on_console)
    page.on("pageerror", watch.on_page_error)
    page.on("websocket", watch.on_websocket)
    await page.goto(url)
    return page, watch, guard


async def chart(page: Page, symbol: str) -> dict[str, Any]:
    info: dict[str, Any] = await page.evaluate(
        "s => window.__qs.charts[s] ? window.__qs.charts[s].inspect() : null", symbol
    )
    return info


async def wait_chart(page: Page, symbol: str, candles: int, markers: int) -> None:
    await page.wait_for_function(
        "([s, c, m]) => { const x = window.__qs?.charts?.[s]?.inspect();"
        " return x && x.candles === c && x.markers === m; }",
        arg=[symbol, candles, markers],
        timeout=5000,
    )


def assert_clean(watch: PageWatch, guard: Guard) -> None:
    assert watch.errors == []
    assert guard.urls and {origin_of(u) for u in guard.urls} == {guard.origin}, guard.urls
    assert watch.foreign_requests == []  # the WebSockets, which routing does not see


async def test_charts_markers_readable_signals_and_live_bars(browser: Browser, market: Any) -> None:
    gateway, redis_client = market
    page, watch, guard = await open_guarded(browser, f"{gateway.base_url}/", gateway.base_url)
    await wait_ready(page)
    await wait_chart(page, "BTC-USD", 60, 4)
    await wait_chart(page, "DOGE-USD", 30, 2)
    # The newest BTC signal with params is sma_cross: its two averages are drawn.
    assert (await chart(page, "BTC-USD"))["lines"] == ["fast", "slow"]
    assert (await chart(page, "DOGE-USD"))["lines"] == ["fast", "slow"]
    await expect(page.locator(".legend").first).to_contain_text("SMA 5")

    notice = page.locator("#market-notice")
    await expect(notice).to_be_visible()
    await expect(notice).to_contain_text("Simulated market data (2s bars)")
    # One precision per symbol: 2 digits for BTC, 5 for DOGE, whatever the signal sent.
    doge = page.locator('#signal-rows tr[data-id="DOGE-USD:bollinger:5"]')
    await expect(doge.locator("td.num")).to_have_text("0.12346")
    await expect(doge.locator("td.col-why")).to_have_text("bollinger reason 5 2s bars")
    btc = page.locator('#signal-rows tr[data-id="BTC-USD:sma_cross:1"]')
    await expect(btc.locator("td.num")).to_have_text("60,012.35")
    # No pid in the header text; it is in the tooltip.
    await expect(page.locator("header")).not_to_contain_text("pid")
    assert f"process {gateway.proc.pid}" in (
        await page.locator("#replica").get_attribute("title") or ""
    )
    panel = page.locator('#strategy-list .strategy[data-strategy="sma_cross"]')
    await expect(panel).to_contain_text("SMA crossover")
    await expect(panel).to_contain_text("Parameters: fast 5 · slow 20")
    await expect(
        page.locator('#strategy-list .strategy[data-strategy="bollinger"]')
    ).to_contain_text("period 20 · width 2")

    # Times carry a date and a zone; the UTC switch rewrites them and goes in the URL.
    await page.get_by_label("Times in UTC").check()
    await expect(btc.locator("time")).to_contain_text("2026")
    await expect(btc.locator("time")).to_contain_text("UTC")
    assert "tz=utc" in page.url

    # A closed bar arrives live (new_bar), then a signal on it (new_signal).
    live_bar = {
        "symbol": "BTC-USD",
        "t": T0 + 60 * TF,
        "o": 1.0,
        "h": 60100.0,
        "l": 59900.0,
        "c": 60050.0,
        "v": 1.0,
        "timeframe": f"{TF}s",
    }
    await redis_client.publish(bars_channel(DEFAULT_CHANNEL), orjson.dumps(live_bar))
    await wait_chart(page, "BTC-USD", 61, 4)
    # The view follows the market: the newest bar (index 60) is at the right edge.
    visible = await page.evaluate(
        "() => window.__qs.charts['BTC-USD'].chart.timeScale().getVisibleLogicalRange()"
    )
    assert round(visible["to"]) == 60, visible
    await publish_with_history(
        redis_client, sig(7, "BTC-USD", "SELL", 60, strategy="bollinger", price=60050.0)
    )
    await wait_chart(page, "BTC-USD", 61, 5)
    assert (await chart(page, "BTC-USD"))["lines"] == ["upper", "mid", "lower"]
    await page.wait_for_timeout(200)
    assert_clean(watch, guard)


async def test_filters_live_in_the_url_and_restore_a_view(browser: Browser, market: Any) -> None:
    gateway, _ = market
    page, watch, guard = await open_guarded(browser, f"{gateway.base_url}/", gateway.base_url)
    await wait_ready(page)
    await wait_chart(page, "BTC-USD", 60, 4)
    await page.get_by_label("Strategy").select_option("sma_cross")
    await page.get_by_label("Side").select_option("BUY")
    await page.get_by_role("checkbox", name="BTC-USD").check()
    await expect(page.locator("body")).to_have_attribute("data-subscribed", "BTC-USD")
    await wait_chart(page, "BTC-USD", 60, 2)  # BUY sma_cross only: signals 1 and 4
    await expect(page.locator('#cards li[data-symbol="DOGE-USD"]')).to_be_hidden()
    shown = page.locator("#signal-rows tr:visible")
    await expect(shown).to_have_count(2)
    url = page.url
    assert "symbols=BTC-USD" in url and "strategy=sma_cross" in url and "side=BUY" in url

    # The same URL in a fresh browser context shows the same view.
    again, watch2, guard2 = await open_guarded(browser, url, gateway.base_url)
    await wait_ready(again, subscribed="BTC-USD")
    await wait_chart(again, "BTC-USD", 60, 2)
    await expect(again.get_by_label("Strategy")).to_have_value("sma_cross")
    await expect(again.get_by_label("Side")).to_have_value("BUY")
    await expect(again.get_by_role("checkbox", name="BTC-USD")).to_be_checked()
    await expect(again.locator("#signal-rows tr:visible")).to_have_count(2)
    await expect(again.locator('#cards li[data-symbol="DOGE-USD"]')).to_be_hidden()
    # The card follows the filters too: its newest SELL sma_cross signal is number 3.
    await again.get_by_label("Side").select_option("SELL")
    card = again.locator('#cards li[data-symbol="BTC-USD"]')
    await expect(card.locator(".side")).to_have_text("▼ SELL")
    await expect(card.locator(".card-price")).to_have_text("59,950.50")
    assert_clean(watch, guard)
    assert_clean(watch2, guard2)


async def test_phone_width(browser: Browser, market: Any) -> None:
    gateway, _ = market
    page, watch, guard = await open_guarded(
        browser, f"{gateway.base_url}/", gateway.base_url, viewport={"width": 390, "height": 844}
    )
    await wait_ready(page)
    await wait_chart(page, "BTC-USD", 60, 4)
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"page is {overflow}px wider than the phone"
    box = await page.locator('#cards li[data-symbol="BTC-USD"] .chart').bounding_box()
    assert box is not None and box["width"] > 300 and box["x"] + box["width"] <= 390
    await expect(page.locator("#market-notice")).to_be_visible()
    assert_clean(watch, guard)


async def test_with_a_real_monitor(
    browser: Browser, service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    service_factory(
        "monitor",
        symbols="BTC-USD,ETH-USD",
        tick_interval_s=0.2,
        strategies="sma_cross",
        strategy_params='{"sma_cross": {"fast": 2, "slow": 4}}',
    )
    page, watch, guard = await open_guarded(browser, f"{gateway.base_url}/", gateway.base_url)
    await wait_ready(page)
    await expect(page.locator("#market-notice")).to_contain_text("Simulated market data")
    started = time.monotonic()
    # Live bars and signals from the monitor end up on the chart.
    await page.wait_for_function(
        "() => ['BTC-USD', 'ETH-USD'].every(s => { const c = window.__qs.charts[s]?.inspect();"
        " return c && c.candles >= 10 && c.markers >= 1; })",
        timeout=20000,
    )
    print(f"charts with >= 10 candles and a marker after {time.monotonic() - started:.1f} s")
    await expect(
        page.locator('#strategy-list .strategy[data-strategy="sma_cross"]')
    ).to_contain_text("fast 2 · slow 4")
    assert_clean(watch, guard)
