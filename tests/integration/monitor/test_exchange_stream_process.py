"""``python -m monitor`` with EXCHANGE_STREAM=true: the worker wiring, end to end, in a real
process against the local Binance stream and REST fakes (the in-process cases are in
test_exchange_stream.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import redis.asyncio as aioredis

from common.constants import DEFAULT_CHANNEL
from tests.conftest import ServiceFactory
from tests.integration.monitor.fake_binance_ws import FakeBinanceStream
from tests.integration.monitor.fake_exchange import FIRST_VISIBLE
from tests.integration.monitor.test_exchange_stream import MARKET, ShownBinance
from tests.support.services import ServiceProcess

SYMBOL = "BTC/USDT"


async def until(predicate: Callable[[], bool], monitor: ServiceProcess, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, monitor.logs()
        await asyncio.sleep(0.05)


async def test_the_monitor_process_streams_falls_back_and_stores_every_bar_once(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    rest = ShownBinance()
    with rest:
        async with FakeBinanceStream() as ws:
            # Blocking start (it polls /readyz): in a thread, so this loop keeps serving ws.
            monitor = await asyncio.to_thread(
                service_factory,
                "monitor",
                source="exchange",
                exchange_stream="true",
                exchange_url=rest.url,
                exchange_stream_url=ws.url,
                exchange_options='{"fetchMarkets": {"types": ["spot"]}}',
                symbols=SYMBOL,
                strategy_params='{"sma_cross": {"fast": 2, "slow": 5}}',
                lease_ttl_s=1,
            )

            def ticks() -> float:
                return monitor.metric("qs_monitor_ticks_total", {"symbol": SYMBOL})

            def active() -> float:
                return monitor.metric("qs_monitor_exchange_stream_active", {"symbol": SYMBOL})

            await ws.wait_subscribes(1, timeout_s=30)
            for i in range(FIRST_VISIBLE, FIRST_VISIBLE + 5):
                await ws.kline(MARKET, "1m", rest.klines[MARKET][i])
            await until(lambda: ticks() == 5 and active() == 1, monitor, 10)

            def polls() -> int:
                return sum(1 for _, path in rest.requests if path == "/api/v3/klines")

            before = polls()
            await ws.drop_connections()
            # Polling takes over with one request at once; its answer (nothing new) comes first.
            await until(lambda: active() == 0 and polls() > before, monitor, 10)
            await asyncio.sleep(0.3)
            rest.show(FIRST_VISIBLE + 8)  # three bars closed while the stream was away
            await ws.wait_subscribes(2, timeout_s=10)
            await ws.kline(MARKET, "1m", rest.klines[MARKET][FIRST_VISIBLE + 8])
            await until(lambda: ticks() == 9 and active() == 1, monitor, 10)
            assert monitor.metric("qs_monitor_exchange_stream_fallbacks_total") == 1
            assert monitor.metric("qs_monitor_exchange_stream_handbacks_total") == 1
            await asyncio.sleep(0.5)  # the bar store flushes every 0.2 s

    stored = await redis_client.lrange(f"{DEFAULT_CHANNEL}:bars:{SYMBOL}", 0, -1)
    closes = [json.loads(b)[0] for b in stored]  # monitor.bars.encode: [ts (close), o, h, ...]
    rows = rest.klines[MARKET][FIRST_VISIBLE : FIRST_VISIBLE + 9]
    assert closes[-9:] == [(row[0] + 60_000) / 1000 for row in rows], closes
    assert closes == sorted(set(closes))
