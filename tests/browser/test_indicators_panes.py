"""RSI and MACD panes and the cards' market sparklines, in real headless Chromium.

Bars are written to Redis in the monitor's format; the expected indicator values come from
the monitor's own formulas (monitor.strategies.indicators), computed over the same window
the monitor uses when a bar closes. Values are read through lightweight-charts' API.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
import redis.asyncio as aioredis

from common.constants import DEFAULT_CHANNEL, bars_key, monitor_info_key
from common.schema import make_signal
from monitor.strategies import create_strategy
from monitor.strategies.indicators import macd, rsi
from tests.browser.test_charts import T0, TF, assert_clean, bar_row, open_guarded, wait_chart
from tests.browser.test_page import publish_with_history, wait_ready
from tests.conftest import ServiceFactory
from tests.support.services import ServiceProcess

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

expect = pytest.importorskip("playwright.async_api", reason="playwright not installed").expect

pytestmark = pytest.mark.e2e

RSI = {"period": 14, "overbought": 70.0, "oversold": 30.0}
MACD = {"fast": 12, "slow": 26, "signal": 9}
COUNTS = {"BTC-USD": 120, "ETH-USD": 160, "SOL-USD": 80}


def closes(symbol: str) -> list[float]:
    """A wave with a trend: RSI swings through both levels; SOL falls, the others rise."""
    n, base = COUNTS[symbol], {"BTC-USD": 60000.0, "ETH-USD": 3000.0, "SOL-USD": 150.0}[symbol]
    trend = -0.0004 if symbol == "SOL-USD" else 0.0003
    return [
        base * (1 + trend * i + 0.02 * math.sin(i / 6) + 0.003 * math.sin(i * 1.7))
        for i in range(n)
    ]


def signal(symbol: str, strategy: str, params: dict[str, Any], bar: int) -> dict[str, Any]:
    return make_signal(
        signal_id=f"{symbol}:{strategy}:{bar}",
        signal_type="BUY",
        price=closes(symbol)[bar],
        symbol=symbol,
        strategy=strategy,
        ts=T0 + (bar + 1) * TF,
        timeframe=f"{TF}s",
        params=params,
        indicators={"x": 1.0},
        reason=f"{strategy} test",
    )


@pytest.fixture
async def seeded(shared_gateway: tuple[str, ServiceProcess]) -> AsyncIterator[ServiceProcess]:
    url, gateway = shared_gateway
    client = aioredis.Redis.from_url(url)
    await client.flushall()
    await client.hset(
        monitor_info_key(DEFAULT_CHANNEL),
        mapping={"source": "sim", "simulated": "1", "timeframe": f"{TF}s"},
    )
    for symbol in COUNTS:
        rows = [bar_row(i, c) for i, c in enumerate(closes(symbol))]
        await client.rpush(bars_key(DEFAULT_CHANNEL, symbol), *rows)
    await publish_with_history(
        client,
        signal("BTC-USD", "rsi", RSI, 100),
        signal("ETH-USD", "macd_cross", MACD, 150),
        signal("SOL-USD", "sma_cross", {"fast": 5, "slow": 20}, 70),
    )
    try:
        yield gateway
    finally:
        await client.aclose()


def per_bar(values: list[float], warmup: int, fn: Any) -> dict[float, float]:
    """{bar open time: fn over the warm-up window ending at that bar}: what the monitor saw."""
    return {T0 + i * TF: fn(values[i + 1 - warmup : i + 1]) for i in range(warmup - 1, len(values))}


async def series_data(page: Page, symbol: str, key: str) -> dict[float, float]:
    rows: list[list[float]] = await page.evaluate(
        "([s, k]) => window.__qs.charts[s].series(k).data().map(d => [d.time, d.value])",
        [symbol, key],
    )
    return {t: v for t, v in rows}


def assert_close(got: dict[float, float], expected: dict[float, float]) -> None:
    assert list(got) == list(expected)  # the same bars, from the monitor's warm-up on
    for t, value in expected.items():
        assert math.isclose(got[t], value, rel_tol=1e-9, abs_tol=1e-9), (t, got[t], value)


async def test_rsi_and_macd_panes_match_the_monitors_formulas(
    browser: Browser, seeded: ServiceProcess
) -> None:
    page, watch, guard = await open_guarded(browser, f"{seeded.base_url}/", seeded.base_url)
    await wait_ready(page)
    for symbol, count in COUNTS.items():
        await wait_chart(page, symbol, count, 1)
    panes = "s => window.__qs.charts[s].inspect().panes"
    assert await page.evaluate(panes, "BTC-USD") == [["candles"], ["rsi"]]
    assert await page.evaluate(panes, "ETH-USD") == [
        ["candles"],
        ["macd_histogram", "macd", "macd_signal"],
    ]
    assert await page.evaluate(panes, "SOL-USD") == [["candles", "fast", "slow"]]

    strategy = create_strategy("rsi", RSI)
    btc = closes("BTC-USD")
    expected_rsi = per_bar(btc, strategy.warmup_bars, lambda w: rsi(w, 14)[-1])
    assert_close(await series_data(page, "BTC-USD", "rsi"), expected_rsi)
    # The RSI pane has the strategy's two levels.
    levels = await page.evaluate(
        "() => window.__qs.charts['BTC-USD'].series('rsi').priceLines().map(l => l.options().price)"
    )
    assert sorted(levels) == [30.0, 70.0]

    warmup = create_strategy("macd_cross", MACD).warmup_bars
    eth = closes("ETH-USD")
    for key, pick in {
        "macd": lambda w: macd(w, 12, 26, 9)[0][-1],
        "macd_signal": lambda w: macd(w, 12, 26, 9)[1][-1],
        "macd_histogram": lambda w: macd(w, 12, 26, 9)[0][-1] - macd(w, 12, 26, 9)[1][-1],
    }.items():
        assert_close(await series_data(page, "ETH-USD", key), per_bar(eth, warmup, pick))
    await expect(page.locator('#cards li[data-symbol="ETH-USD"] .legend')).to_contain_text(
        "MACD 12/26"
    )
    await expect(page.locator('#cards li[data-symbol="BTC-USD"] .legend')).to_contain_text(
        "RSI 14 (30/70)"
    )

    # A newer sma_cross signal on BTC: the RSI pane goes, the averages come.
    client = aioredis.Redis.from_url(seeded.env["REDIS_URL"])
    try:
        newer = signal("BTC-USD", "sma_cross", {"fast": 5, "slow": 20}, 110)
        await publish_with_history(client, newer)
    finally:
        await client.aclose()
    await page.wait_for_function("() => window.__qs.charts['BTC-USD'].inspect().panes.length === 1")
    assert await page.evaluate(panes, "BTC-USD") == [["candles", "fast", "slow"]]
    assert_clean(watch, guard)


async def test_card_sparklines_show_the_market_and_its_change(
    browser: Browser, seeded: ServiceProcess
) -> None:
    page, watch, guard = await open_guarded(browser, f"{seeded.base_url}/", seeded.base_url)
    await wait_ready(page)
    colours = {"up": "rgb(52, 211, 153)", "down": "rgb(251, 113, 133)"}
    for symbol in COUNTS:
        recent = closes(symbol)[-60:]
        change = (recent[-1] - recent[0]) / recent[0]
        spark = page.locator(f'#cards li[data-symbol="{symbol}"] .spark')
        sign = "+" if change > 0 else ""
        await expect(spark.locator("figcaption")).to_have_text(
            f"last 60 bars, {sign}{change * 100:.2f}%"
        )
        stroke = await spark.locator("path").evaluate("p => getComputedStyle(p).stroke")
        assert stroke == colours["up" if change > 0 else "down"], (symbol, change, stroke)
    # SOL falls, the others rise: both colours were checked.
    assert closes("SOL-USD")[-1] < closes("SOL-USD")[-60]
    assert closes("BTC-USD")[-1] > closes("BTC-USD")[-60]
    assert_clean(watch, guard)


async def test_a_real_monitors_rsi_signals_match_the_pane(
    browser: Browser, service_factory: ServiceFactory
) -> None:
    """The value the pane shows at a signal's bar is the one the monitor put in the signal's
    `indicators`, computed over the same bars (fast RSI parameters so it fires within seconds)."""
    gateway = service_factory("gateway")
    service_factory(
        "monitor",
        symbols="BTC-USD",
        tick_interval_s=0.2,
        strategies="rsi",
        strategy_params='{"rsi": {"period": 3, "overbought": 60, "oversold": 40}}',
    )
    page, watch, guard = await open_guarded(browser, f"{gateway.base_url}/", gateway.base_url)
    await wait_ready(page)
    await page.wait_for_function(
        "() => (window.__qs.charts['BTC-USD']?.inspect().markers ?? 0) >= 3", timeout=20000
    )
    found: dict[str, Any] = await page.evaluate(
        """() => {
          const c = window.__qs.charts['BTC-USD'];
          return {
            panes: c.inspect().panes,
            rsi: c.series('rsi').data().map(d => [d.time, d.value]),
            markers: c.markers.markers().map(m => m.time),
            signals: window.__qs.state.markets.get('BTC-USD').signals
              .map(s => [s.id, s.indicators.rsi]),
          };
        }"""
    )
    assert found["panes"] == [["candles"], ["rsi"]]
    pane = dict(found["rsi"])
    # Markers and signals in the same (time) order: each signal's bar and its value.
    assert len(found["markers"]) == len(found["signals"]) >= 3
    for at, (signal_id, rsi_value) in zip(found["markers"], found["signals"], strict=True):
        assert math.isclose(pane[at], rsi_value, rel_tol=1e-9, abs_tol=1e-9), (signal_id, at)
    assert_clean(watch, guard)
