"""Prometheus helpers shared by both services.

Each service owns one metrics class built on a ``CollectorRegistry`` it is given, so a
test can use a fresh registry. Label sets are created up front so dashboards see zeros.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from common.cli import package_version

PREFIX = "qs"
UNKNOWN = "unknown"


def add_service_collectors(registry: CollectorRegistry, service: str) -> None:
    """What every service registry carries besides its own metrics: process_* (CPU, memory,
    file descriptors), python_info, and qs_build_info{service, version, commit}.

    Also turns off the `_created` series: one extra series per counter and histogram child
    that no dashboard or alert reads. A process-wide switch, read at collection time.
    """
    disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus_client
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    Gauge(
        f"{PREFIX}_build_info",
        "Always 1; the labels name the running build (commit from GIT_COMMIT).",
        ["service", "version", "commit"],
        registry=registry,
    ).labels(service, package_version(), os.environ.get("GIT_COMMIT") or UNKNOWN).set(1)


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
