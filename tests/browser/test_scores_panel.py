"""The strategy panel shows each strategy's scores with their sample size, and the numbers
on the page are GET /api/scores' own (real gateway, real Chromium; the score hashes are
written in the monitor's format, monitor/scoring.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from common.constants import DEFAULT_CHANNEL, scores_index_key, scores_key
from tests.browser.test_charts import assert_clean, open_guarded
from tests.browser.test_page import publish_with_history, signal, wait_ready
from tests.support.services import ServiceProcess

if TYPE_CHECKING:
    from playwright.async_api import Browser

expect = pytest.importorskip("playwright.async_api", reason="playwright not installed").expect

pytestmark = pytest.mark.e2e

# (strategy, symbol): signals, hit rates after 1/5/20 bars, mean move after 5 (None: unscored).
SCORES: dict[
    tuple[str, str], tuple[int, float | None, float | None, float | None, float | None]
] = {
    ("sma_cross", "BTC-USD"): (37, 0.54, 0.4375, 0.6666666666666666, 0.00123),
    ("sma_cross", "ETH-USD"): (12, 1.0, 0.0, None, -0.0004),
    ("rsi", "BTC-USD"): (3, None, None, None, None),
}


@pytest.fixture
async def scored(shared_gateway: tuple[str, ServiceProcess]) -> AsyncIterator[ServiceProcess]:
    url, gateway = shared_gateway
    client = aioredis.Redis.from_url(url)
    await client.flushall()
    for (strategy, symbol), (n, h1, h5, h20, move) in SCORES.items():
        values = {"hit_rate_1": h1, "hit_rate_5": h5, "hit_rate_20": h20, "avg_move_5": move}
        fields: dict[Any, str] = {k: "" if v is None else repr(v) for k, v in values.items()}
        fields |= {"signals": str(n), "window_signals": "100", "window": "[]"}
        await client.hset(scores_key(DEFAULT_CHANNEL, strategy, symbol), mapping=fields)
        await client.sadd(scores_index_key(DEFAULT_CHANNEL), orjson.dumps([strategy, symbol]))
    # Signals of sma_cross only: rsi is in the panel through its scores alone.
    await publish_with_history(client, signal(1, "BTC-USD", "BUY", 100.0))
    try:
        yield gateway
    finally:
        await client.aclose()


def rate(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def move(value: float | None) -> str:
    return "—" if value is None else f"{'+' if value > 0 else ''}{value * 100:.2f}%"


async def test_scores_next_to_each_strategy_equal_the_api(
    browser: Browser, scored: ServiceProcess
) -> None:
    async with httpx.AsyncClient(base_url=scored.base_url) as http:
        api: dict[str, Any] = (await http.get("/api/scores")).json()
    assert len(api["scores"]) == len(SCORES)
    page, watch, guard = await open_guarded(browser, f"{scored.base_url}/", scored.base_url)
    await wait_ready(page)
    await expect(page.locator("body")).to_have_attribute("data-scores", "loaded")
    for row in api["scores"]:
        strategy = page.locator(f'#strategy-list .strategy[data-strategy="{row["strategy"]}"]')
        tr = strategy.locator(f'table.scores tr[data-symbol="{row["symbol"]}"]')
        cells = await tr.locator("td").all_inner_texts()
        assert cells == [
            row["symbol"],
            str(row["signals"]),
            rate(row["hit_rate_1"]),
            rate(row["hit_rate_5"]),
            rate(row["hit_rate_20"]),
            move(row["avg_move_5"]),
        ], row
    # The sample size in words too: all signals of the strategy, and the window.
    sma = page.locator('#strategy-list .strategy[data-strategy="sma_cross"] caption')
    await expect(sma).to_contain_text("from 49 signals (the last 100 per symbol)")
    await expect(page.locator('#strategy-list .strategy[data-strategy="rsi"]')).to_contain_text(
        "RSI reversal"
    )
    assert_clean(watch, guard)
