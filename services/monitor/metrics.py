"""The monitor's Prometheus metrics (one class, built on a registry the caller owns)."""

from __future__ import annotations

import contextlib
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from common.metrics import PREFIX, RedisLoopMetrics, add_service_collectors

PUBLISH_LOOP = "publisher"
LEASE_LOOP = "leases"
P = f"{PREFIX}_monitor"
SIGNAL_TYPES = ("BUY", "SELL")
# Publishing is one Redis round trip: the interesting range is sub-millisecond to seconds.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
)


class MonitorMetrics:
    def __init__(
        self,
        registry: CollectorRegistry,
        source: str = "sim",
        symbols: tuple[str, ...] = (),
        strategies: tuple[str, ...] = (),
    ) -> None:
        self.registry = registry
        add_service_collectors(registry, "monitor")
        self.redis = RedisLoopMetrics(registry, (PUBLISH_LOOP, LEASE_LOOP))
        self._declare_market_data_and_leases(registry)
        self._declare_publishing(registry)
        self._declare_exchange_stream(registry)
        self._received: dict[str, float] = {}
        self._last_tick_of: dict[str, Gauge] = {}
        # Label sets created up front, so dashboards show zeros rather than gaps.
        for symbol in symbols:
            self.ticks.labels(source, symbol)
        for strategy in strategies:
            self.strategy_errors.labels(strategy)
            for signal_type in SIGNAL_TYPES:
                self.signals.labels(strategy, signal_type)
        for change in ("acquired", "released", "lost"):
            self.lease_changes.labels(change)

    def _declare_market_data_and_leases(self, registry: CollectorRegistry) -> None:
        self.ticks = Counter(
            f"{P}_ticks", "Market-data bars processed.", ["source", "symbol"], registry=registry
        )
        self.source_errors = Counter(
            f"{P}_source_errors",
            "Market-data errors (failed requests, bad rows), by reason.",
            ["source", "symbol", "reason"],
            registry=registry,
        )
        self.strategy_errors = Counter(
            f"{P}_strategy_errors",
            "Strategy evaluations that raised.",
            ["strategy"],
            registry=registry,
        )
        self.last_tick = Gauge(
            f"{P}_last_tick_timestamp_seconds",
            "Close time of the last bar, per symbol.",
            ["symbol"],
            registry=registry,
        )
        self.staleness = Gauge(
            f"{P}_market_data_staleness_seconds",
            "Seconds since the last bar arrived, per symbol this replica works.",
            ["symbol"],
            registry=registry,
        )
        self.leases_held = Gauge(
            f"{P}_leases_held", "Symbol leases this replica holds.", registry=registry
        )
        self.lease_changes = Counter(
            f"{P}_lease_changes",
            "Symbol leases acquired, released or lost.",
            ["change"],
            registry=registry,
        )

    def _declare_publishing(self, registry: CollectorRegistry) -> None:
        self.signals = Counter(
            f"{P}_signals_published",
            "Signals published.",
            ["strategy", "type"],
            registry=registry,
        )
        self.duplicates = Counter(
            f"{P}_duplicates_suppressed",
            "Signals not published because their id was seen.",
            registry=registry,
        )
        self.publish_errors = Counter(
            f"{P}_publish_errors", "Failed publish attempts (retried).", registry=registry
        )
        self.buffer_depth = Gauge(
            f"{P}_buffer_depth", "Signals waiting to be published.", registry=registry
        )
        self.buffer_dropped = Counter(
            f"{P}_buffer_dropped",
            "Signals dropped because the buffer was full.",
            registry=registry,
        )
        self.history_epoch_changes = Counter(
            f"{P}_history_epoch_changes",
            "History epoch changes seen when publishing: Redis lost the history "
            "(docs/delivery.md).",
            registry=registry,
        )
        self.tick_to_publish = Histogram(
            f"{P}_tick_to_publish_seconds",
            "Bar received to its signal published.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def _declare_exchange_stream(self, registry: CollectorRegistry) -> None:
        # EXCHANGE_STREAM=true (sources/exchange_stream.py); label sets appear per symbol worked.
        self.stream_active = Gauge(
            f"{P}_exchange_stream_active",
            "1 while the WebSocket stream feeds the symbol, 0 while REST polling does.",
            ["symbol"],
            registry=registry,
        )
        self.stream_fallbacks = Counter(
            f"{P}_exchange_stream_fallbacks",
            "REST polling took over from the stream, by reason (stale, error).",
            ["symbol", "reason"],
            registry=registry,
        )
        self.stream_handbacks = Counter(
            f"{P}_exchange_stream_handbacks",
            "The stream took over again from REST polling.",
            ["symbol"],
            registry=registry,
        )
        self.stream_reconnects = Counter(
            f"{P}_exchange_stream_reconnects",
            "Stream subscriptions that failed and were dialled again.",
            ["symbol"],
            registry=registry,
        )
        self.stream_dropped = Counter(
            f"{P}_exchange_stream_dropped",
            "Closed-kline messages dropped: duplicate or out_of_order.",
            ["symbol", "reason"],
            registry=registry,
        )
        self.stream_malformed = Counter(
            f"{P}_exchange_stream_malformed",
            "Stream messages dropped as malformed, by reason.",
            ["reason"],
            registry=registry,
        )
        self.stream_gap_bars = Counter(
            f"{P}_exchange_stream_gap_bars",
            "Bars fetched from REST to fill a gap in the stream (after a reconnect, a hand-back).",
            ["symbol"],
            registry=registry,
        )

    def tick_received(self, symbol: str, bar_ts: float) -> None:
        # The labelled child looked up once per symbol: labels() costs 2-3 % of a tick.
        gauge = self._last_tick_of.get(symbol)
        if gauge is None:
            gauge = self._last_tick_of[symbol] = self.last_tick.labels(symbol)
        gauge.set(bar_ts)
        self._received[symbol] = time.monotonic()

    def watch_staleness(self, symbol: str) -> None:
        """Start exporting staleness for a symbol this replica now works."""
        self._received.setdefault(symbol, time.monotonic())
        self.staleness.labels(symbol).set_function(
            lambda: time.monotonic() - self._received.get(symbol, time.monotonic())
        )

    def unwatch_staleness(self, symbol: str) -> None:
        # Another replica works it now: a growing number here would be a false alarm.
        self._received.pop(symbol, None)
        with contextlib.suppress(KeyError):
            self.staleness.remove(symbol)

    def total(self, name: str) -> float:
        return sum(
            sample.value
            for metric in self.registry.collect()
            for sample in metric.samples
            if sample.name == name
        )
