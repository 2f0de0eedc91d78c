"""The exchange source: the real ccxt client against recorded Binance responses on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from common.publish import SignalPublisher
from common.redis import Backoff
from monitor.bars import RecentBars
from monitor.metrics import MonitorMetrics
from monitor.publisher import BufferedPublisher
from monitor.runner import RunnerDeps, SymbolRunner
from monitor.sources.exchange import ExchangeSource
from monitor.strategies import create_strategy
from tests.integration.monitor.fake_exchange import FIRST_VISIBLE, FakeBinance

SPOT_ONLY = {"fetchMarkets": {"types": ["spot"]}}
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")


def source(url: str, poll_s: float = 0.01) -> ExchangeSource:
    return ExchangeSource(
        exchange_id="binance",
        timeframe="1m",
        poll_interval_s=poll_s,
        timeout_s=5,
        url=url,
        options=SPOT_ONLY,
    )


async def test_history_and_stream_yield_closed_bars_in_order_and_honour_the_rate_limit() -> None:
    with FakeBinance() as fake:
        exchange = source(fake.url)
        try:
            history = await exchange.history("BTC/USDT", 20)
            assert len(history) == 20
            # Bars carry their close time: open time of the recorded candle + one minute.
            assert history[-1].ts == (fake.klines["BTCUSDT"][FIRST_VISIBLE - 1][0] + 60_000) / 1000
            assert history[-1].close == float(fake.klines["BTCUSDT"][FIRST_VISIBLE - 1][4])
            new = []
            async for bar in exchange.stream("BTC/USDT", history[-1]):
                new.append(bar)
                if len(new) == 15:
                    break
            assert [b.ts for b in new] == [history[-1].ts + 60 * (i + 1) for i in range(15)]
        finally:
            await exchange.aclose()
    klines = [t for t, path in fake.requests if path == "/api/v3/klines"]
    rate_limit_s = exchange._client.rateLimit / 1000
    # The poll interval asks for 100 requests/s; ccxt's limiter must hold them near
    # 1/rateLimit. Its leaky bucket lets a request through once its token count is back to
    # zero, so single gaps vary: judge the mean.
    mean_gap = (klines[-1] - klines[0]) / (len(klines) - 1)
    assert mean_gap >= rate_limit_s * 0.6, (mean_gap, rate_limit_s)


async def test_unknown_exchange_is_refused() -> None:
    with pytest.raises(ValueError, match="no exchange"):
        ExchangeSource(exchange_id="nope", timeframe="1m", poll_interval_s=1, timeout_s=1)


async def test_a_failing_symbol_backs_off_and_counts_while_the_others_flow(
    redis_client: aioredis.Redis,
) -> None:
    # In-process runners (not a subprocess): importing ccxt costs ~10 s per interpreter.
    registry = CollectorRegistry()
    metrics = MonitorMetrics(registry, "exchange", strategies=("sma_cross",))
    strategy = create_strategy("sma_cross", {"fast": 2, "slow": 5})
    with FakeBinance(failing={"SOLUSDT"}) as fake:
        exchange = source(fake.url, poll_s=0.05)
        publisher = BufferedPublisher(
            SignalPublisher(redis_client, "qs-exchange-test"), metrics, Backoff(), 100
        )
        bars = RecentBars(redis_client, "qs-exchange-test", {s: 6 for s in SYMBOLS}, 60)
        deps = RunnerDeps(exchange, publisher, bars, metrics, backoff_max_s=0.5)
        tasks = [asyncio.create_task(SymbolRunner(s, [strategy], deps).run()) for s in SYMBOLS]
        tasks.append(asyncio.create_task(publisher.run()))
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                ticks = {
                    s: registry.get_sample_value(
                        "qs_monitor_ticks_total", {"source": "exchange", "symbol": s}
                    )
                    or 0
                    for s in SYMBOLS
                }
                errors = metrics.total("qs_monitor_source_errors_total")
                if min(ticks["BTC/USDT"], ticks["ETH/USDT"]) >= 20 and errors >= 3:
                    break
                await asyncio.sleep(0.1)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await exchange.aclose()
    assert min(ticks["BTC/USDT"], ticks["ETH/USDT"]) >= 20, ticks
    assert ticks["SOL/USDT"] == 0
    assert errors >= 3
    assert (
        registry.get_sample_value(
            "qs_monitor_source_errors_total",
            {"source": "exchange", "symbol": "SOL/USDT", "reason": "OperationFailed"},
        )
        == errors
    )
    assert metrics.total("qs_monitor_signals_published_total") > 0
    # Backing off (0.5 s cap): far fewer SOL requests than the 20/s its poll interval allows.
    sol = [p for _, p in fake.requests if p == "/api/v3/klines"]
    assert len(sol) < 200
