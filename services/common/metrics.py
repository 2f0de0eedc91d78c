"""Prometheus helpers shared by both services.

Each service owns one metrics class built on a ``CollectorRegistry`` it is given, so a
test can use a fresh registry. Label sets are created up front so dashboards see zeros.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

PREFIX = "qs"


class RedisLoopMetrics:
    """Connection health of every long-running loop that talks to Redis."""

    def __init__(self, registry: CollectorRegistry, loops: tuple[str, ...]) -> None:
        self.connected = Gauge(
            f"{PREFIX}_redis_connected",
            "1 while the loop holds a working Redis connection.",
            ["loop"],
            registry=registry,
        )
        self.reconnects = Counter(
            f"{PREFIX}_redis_reconnects",
            "Times the loop lost Redis and started reconnecting.",
            ["loop"],
            registry=registry,
        )
        for loop in loops:
            self.connected.labels(loop).set(0)
            self.reconnects.labels(loop)

    def up(self, loop: str) -> None:
        self.connected.labels(loop).set(1)

    def down(self, loop: str) -> None:
        self.connected.labels(loop).set(0)
        self.reconnects.labels(loop).inc()
