"""The monitor's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from common.metrics import PREFIX, RedisLoopMetrics

PUBLISH_LOOP = "publisher"
P = f"{PREFIX}_monitor"


class MonitorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.redis = RedisLoopMetrics(registry, (PUBLISH_LOOP,))
        self.ticks = Counter(
            f"{P}_ticks", "Market-data bars processed.", ["source", "symbol"], registry=registry
        )
        self.signals = Counter(
            f"{P}_signals_published", "Signals published.", ["strategy", "type"],
            registry=registry,
        )
        self.duplicates = Counter(
            f"{P}_duplicates_suppressed", "Signals not published because their id was seen.",
            registry=registry,
        )
        self.publish_errors = Counter(
            f"{P}_publish_errors", "Failed publish attempts (retried).", registry=registry
        )
        self.buffer_depth = Gauge(
            f"{P}_buffer_depth", "Signals waiting to be published.", registry=registry
        )
        self.buffer_dropped = Counter(
            f"{P}_buffer_dropped", "Signals dropped because the buffer was full.",
            registry=registry,
        )
        self.strategy_errors = Counter(
            f"{P}_strategy_errors", "Strategy evaluations that raised.", ["strategy"],
            registry=registry,
        )
        self.tick_to_publish = Histogram(
            f"{P}_tick_to_publish_seconds", "Bar processed to signal published.",
            registry=registry,
        )
        self.last_tick = Gauge(
            f"{P}_last_tick_timestamp_seconds", "Unix time of the last bar, per symbol.",
            ["symbol"], registry=registry,
        )
