"""The monitor worker: bars in, strategies run, new signals out."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from common.http import ManagedServer, probe_router
from common.logging import get_logger
from common.publish import SignalPublisher
from common.redis import Backoff, create_redis, wait_for_redis
from common.schema import make_signal, signal_id
from monitor.metrics import MonitorMetrics
from monitor.publisher import BufferedPublisher
from monitor.settings import MonitorSettings
from monitor.sources import Bar, MarketSource, create_source
from monitor.strategies import Strategy, create_strategies

log = get_logger(__name__)

FLUSH_TIMEOUT_FRACTION = 0.5


class Worker:
    def __init__(
        self,
        settings: MonitorSettings,
        registry: CollectorRegistry | None = None,
        source: MarketSource | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = MonitorMetrics(registry or CollectorRegistry())
        self.redis = create_redis(str(settings.redis_url))
        self.source = source or create_source(settings)
        self.strategies: list[Strategy] = create_strategies(
            settings.strategies, settings.sma_fast, settings.sma_slow
        )
        self.window_len = max(s.warmup_bars for s in self.strategies)
        self.windows: dict[str, deque[float]] = {}
        self.publisher = BufferedPublisher(
            SignalPublisher(self.redis, settings.signal_channel,
                            dedupe_ttl_ms=settings.dedupe_ttl_s * 1000,
                            history_maxlen=settings.history_maxlen),
            self.metrics, Backoff(max_s=settings.redis_backoff_max_s),
            settings.publish_buffer_max,
        )
        self.streaming = False
        self.http = ManagedServer(uvicorn.Config(
            self._build_api(), host=settings.host, port=settings.port, log_config=None,
            access_log=False, lifespan="off",
        ))

    def _build_api(self) -> FastAPI:
        api = FastAPI(title="Quantum Signals monitor")
        api.include_router(probe_router(self.readiness, self.metrics.registry))
        return api

    def readiness(self) -> dict[str, bool]:
        return {"redis_connected": self.publisher.connected, "market_data": self.streaming}

    async def run(self, stop: asyncio.Event) -> None:
        await wait_for_redis(self.redis, self.settings.redis_startup_attempts,
                             Backoff(max_s=self.settings.redis_backoff_max_s))
        self.publisher.connected = True
        self.metrics.redis.up("publisher")
        tasks = [
            asyncio.create_task(self.http.serve(), name="http"),
            asyncio.create_task(self.publisher.run(), name="publisher"),
            asyncio.create_task(self._consume(), name="consume"),
        ]
        log.info("monitor_started", source=self.source.name, symbols=self.settings.symbols,
                 strategies=[s.name for s in self.strategies])
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        try:
            for task in done - {stopper}:
                task.result()  # a loop that ended on its own is a bug: surface it
        finally:
            await self._shutdown(tasks, stopper)

    async def _shutdown(self, tasks: list[asyncio.Task[None]], stopper: asyncio.Task[bool]) -> None:
        self.streaming = False
        tasks[2].cancel()
        stopper.cancel()
        deadline = time.monotonic() + self.settings.shutdown_grace_s * FLUSH_TIMEOUT_FRACTION
        while self.publisher.depth and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.http.should_exit = True
        for task in tasks[:2]:
            if task is not tasks[0]:
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.redis.aclose()
        log.info("monitor_stopped", unpublished=self.publisher.depth,
                 **{k: v for k, v in self.summary().items()})

    def summary(self) -> dict[str, float]:
        return {
            "ticks": _total(self.metrics.registry, "qs_monitor_ticks_total"),
            "signals": _total(self.metrics.registry, "qs_monitor_signals_published_total"),
            "duplicates": _total(self.metrics.registry, "qs_monitor_duplicates_suppressed_total"),
            "publish_errors": _total(self.metrics.registry, "qs_monitor_publish_errors_total"),
        }

    async def _consume(self) -> None:
        for symbol in self.settings.symbols:
            await self._warm_up(symbol)
        self.streaming = True
        async for bar in self.source.stream(self.settings.symbols):
            self.on_bar(bar)

    async def _warm_up(self, symbol: str) -> None:
        # Filling the windows without evaluating means a (re)start never fires on old bars.
        window = self.windows.setdefault(symbol, deque(maxlen=self.window_len))
        for bar in await self.source.history(symbol, self.window_len):
            window.append(bar.close)

    def on_bar(self, bar: Bar) -> None:
        window = self.windows.setdefault(bar.symbol, deque(maxlen=self.window_len))
        window.append(bar.close)
        self.metrics.ticks.labels(self.source.name, bar.symbol).inc()
        self.metrics.last_tick.labels(bar.symbol).set(bar.ts)
        closes = list(window)
        for strategy in self.strategies:
            try:
                signal_type = strategy.evaluate(closes)
            except Exception:
                # A strategy bug on odd data must not stop the other symbols and strategies.
                self.metrics.strategy_errors.labels(strategy.name).inc()
                log.exception("strategy_failed", strategy=strategy.name, symbol=bar.symbol)
                continue
            if signal_type is not None:
                self.publisher.submit(make_signal(
                    signal_id=signal_id(bar.symbol, strategy.name, bar.ts),
                    signal_type=signal_type, price=bar.close, symbol=bar.symbol,
                    strategy=strategy.name, bar_ts=bar.ts,
                ))


def _total(registry: CollectorRegistry, name: str) -> float:
    return sum(
        sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name == name
    )
