"""The monitor worker: holds symbol leases and runs one ``SymbolRunner`` per leased symbol."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket

import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from common.http import ManagedServer, probe_router
from common.lease_keeper import LeaseKeeper
from common.lifecycle import serve_until_stopped, unless_stopped
from common.logging import get_logger
from common.publish import SignalPublisher
from common.redis import (
    REDIS_ERRORS,
    Backoff,
    redis_client,
    wait_for_redis,
)
from monitor.bars import RecentBars
from monitor.info import market_info, write_info
from monitor.leases import LeaseChanges, LeaseManager
from monitor.metrics import LEASE_LOOP, PUBLISH_LOOP, MonitorMetrics
from monitor.publisher import BufferedPublisher
from monitor.runner import RunnerDeps, SymbolRunner
from monitor.scoring import ScoreTracker
from monitor.settings import MonitorSettings
from monitor.sources import MarketSource, create_source
from monitor.strategies import build_strategy_book

log = get_logger(__name__)

FLUSH_TIMEOUT_FRACTION = 0.5
REDIS_STEP_TIMEOUT_S = 2.0


def default_replica_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    def __init__(
        self,
        settings: MonitorSettings,
        registry: CollectorRegistry | None = None,
        source: MarketSource | None = None,
    ) -> None:
        self.settings = settings
        self.book = build_strategy_book(
            settings.symbols, settings.strategies, settings.strategy_params, settings.symbol_params
        )
        self.metrics = MonitorMetrics(
            registry or CollectorRegistry(),
            settings.source,
            tuple(settings.symbols),
            tuple(settings.strategies),
        )
        self.redis = redis_client(settings)
        self.source = source or create_source(settings, self._source_error, self.metrics)
        keep = {
            s: max(settings.bars_keep, *(x.warmup_bars for x in self.book[s]))
            for s in settings.symbols
        }
        self.bars = RecentBars(
            self.redis,
            settings.signal_channel,
            keep,
            settings.bars_ttl_s,
            self.source.timeframe_s,
        )
        self.scores = ScoreTracker(self.redis, settings.signal_channel, settings.score_window)
        # Bars and scores travel in the signals' round trip: one per bar close.
        self.publisher = BufferedPublisher(
            SignalPublisher.configured(self.redis, settings.signal_channel, settings),
            self.metrics,
            Backoff(max_s=settings.redis_backoff_max_s),
            settings.publish_buffer_max,
            companions=(self.bars, self.scores),
        )
        self.bars.wake = self.publisher.wake
        self.info = market_info(settings, self.source)
        self.leases = LeaseManager(
            self.redis,
            settings.signal_channel,
            settings.symbols,
            settings.replica_id or default_replica_id(),
            settings.lease_ttl_s,
        )
        self.deps = RunnerDeps(
            self.source, self.publisher, self.bars, self.metrics, settings.source_backoff_max_s
        )
        self.deps.scores = self.scores
        self.runners: dict[str, asyncio.Task[None]] = {}
        self.lease_keeper = LeaseKeeper(
            self.leases,
            self.metrics.redis,
            loop=LEASE_LOOP,
            noun="symbols",
            ttl_s=settings.lease_ttl_s,
            renew_s=settings.lease_renew_s,
            backoff_max_s=settings.redis_backoff_max_s,
            on_changes=self._on_lease_cycle,
            on_expired=self._leases_expired,
        )
        self.http = ManagedServer(
            uvicorn.Config(
                self._build_api(),
                host=settings.host,
                # The monitor serves only the probes and /metrics: METRICS_PORT moves them all.
                port=settings.metrics_port or settings.port,
                log_config=None,
                access_log=False,
                lifespan="off",
                # A scraper holding a keep-alive connection must not hold up the exit.
                timeout_graceful_shutdown=max(1, int(settings.shutdown_grace_s / 4)),
            )
        )

    def _source_error(self, symbol: str, reason: str) -> None:
        self.metrics.source_errors.labels(self.source_name, symbol, reason).inc()

    @property
    def source_name(self) -> str:
        return self.settings.source

    def _build_api(self) -> FastAPI:
        api = FastAPI(title="Quantum Signals monitor")
        api.include_router(probe_router(self.readiness, self.metrics.registry))
        return api

    def readiness(self) -> dict[str, bool]:
        # Holding no lease is fine (others may work every symbol): what matters is that the
        # lease loop talks to Redis, so this replica works its share or stands by for one.
        current = self.lease_keeper.current()
        return {"redis_connected": self.publisher.connected, "leases_current": current}

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop``; a stop while Redis is still awaited raises StartupCancelled."""
        await unless_stopped(
            wait_for_redis(
                self.redis,
                self.settings.redis_startup_attempts,
                Backoff(max_s=self.settings.redis_backoff_max_s),
            ),
            stop,
        )
        self.publisher.connected = True
        self.metrics.redis.up(PUBLISH_LOOP)
        tasks = [
            asyncio.create_task(self.http.serve(), name="http"),
            asyncio.create_task(self.publisher.run(), name="publisher"),
            asyncio.create_task(self.lease_keeper.run(), name="leases"),
        ]
        log.info(
            "monitor_started",
            source=self.source.name,
            symbols=self.settings.symbols,
            strategies=self.settings.strategies,
            replica=self.leases.replica_id,
            lease_ttl_s=self.settings.lease_ttl_s,
        )
        await serve_until_stopped(tasks, stop, self._shutdown)

    async def _on_lease_cycle(self, changes: LeaseChanges) -> None:
        await self._refresh_info()
        await self._apply(changes)

    async def _refresh_info(self) -> None:
        # Best effort: the lease loop notices a Redis outage on its own next cycle.
        with contextlib.suppress(*REDIS_ERRORS):
            await asyncio.wait_for(
                write_info(
                    self.redis, self.settings.signal_channel, self.info, self.settings.lease_ttl_s
                ),
                REDIS_STEP_TIMEOUT_S,
            )

    def _leases_expired(self, lost: set[str]) -> None:
        # Another replica may own these symbols now.
        for symbol in lost:
            self._stop_runner_nowait(symbol)
        self.metrics.leases_held.set(0)

    async def _apply(self, changes: LeaseChanges) -> None:
        for change, symbols in (("lost", changes.lost), ("released", changes.released)):
            for symbol in symbols:
                await self._stop_runner(symbol)
                self.metrics.lease_changes.labels(change).inc()
        for symbol in changes.acquired:
            self.metrics.lease_changes.labels("acquired").inc()
            self.metrics.watch_staleness(symbol)
            runner = SymbolRunner(symbol, self.book[symbol], self.deps)
            self.runners[symbol] = asyncio.create_task(runner.run(), name=f"symbol:{symbol}")
        if changes.acquired or changes.lost or changes.released:
            log.info(
                "leases_changed",
                acquired=sorted(changes.acquired),
                lost=sorted(changes.lost),
                released=sorted(changes.released),
                held=len(self.leases.owned),
                replicas=self.leases.replicas,
            )
        self.metrics.leases_held.set(len(self.leases.owned))

    def _stop_runner_nowait(self, symbol: str) -> asyncio.Task[None] | None:
        self.metrics.unwatch_staleness(symbol)
        self.scores.forget(symbol)
        task = self.runners.pop(symbol, None)
        if task is not None:
            task.cancel()
        return task

    async def _stop_runner(self, symbol: str) -> None:
        task = self._stop_runner_nowait(symbol)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    async def _shutdown(self, tasks: list[asyncio.Task[None]]) -> None:
        _, publisher, lease_loop = tasks
        lease_loop.cancel()
        # Before the runners stop: stopping one forgets its symbol's scores.
        with contextlib.suppress(*REDIS_ERRORS):
            await asyncio.wait_for(self.scores.flush(), REDIS_STEP_TIMEOUT_S)
        for symbol in list(self.runners):
            await self._stop_runner(symbol)
        await self._release_leases()
        with contextlib.suppress(*REDIS_ERRORS):
            await asyncio.wait_for(self.bars.flush(), REDIS_STEP_TIMEOUT_S)
        await self.publisher.drained(self.settings.shutdown_grace_s * FLUSH_TIMEOUT_FRACTION)
        self.http.should_exit = True
        publisher.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.source.aclose()
        await self.redis.aclose()
        log.info("monitor_stopped", unpublished=self.publisher.depth, **self.summary())

    async def _release_leases(self) -> None:
        # Released at once, so the other replicas take these symbols on their next renewal.
        released = sorted(self.leases.owned)
        try:
            await asyncio.wait_for(self.leases.release(), REDIS_STEP_TIMEOUT_S)
        except REDIS_ERRORS as exc:
            log.warning("lease_release_failed", error=repr(exc))
        else:
            log.info("leases_released", symbols=released)
        self.metrics.leases_held.set(len(self.leases.owned))

    def summary(self) -> dict[str, float]:
        m = self.metrics
        return {
            "ticks": m.total("qs_monitor_ticks_total"),
            "signals": m.total("qs_monitor_signals_published_total"),
            "duplicates": m.total("qs_monitor_duplicates_suppressed_total"),
            "publish_errors": m.total("qs_monitor_publish_errors_total"),
            "source_errors": m.total("qs_monitor_source_errors_total"),
            "strategy_errors": m.total("qs_monitor_strategy_errors_total"),
            "buffer_dropped": m.total("qs_monitor_buffer_dropped_total"),
            "lease_changes": m.total("qs_monitor_lease_changes_total"),
        }
