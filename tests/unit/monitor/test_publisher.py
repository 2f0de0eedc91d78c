"""The bounded buffer that holds signals while Redis is unreachable."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from redis.exceptions import ConnectionError as RedisConnectionError

from common.publish import Published
from common.redis import Backoff
from monitor.metrics import MonitorMetrics
from monitor.publisher import BufferedPublisher


class FlakyPublisher:
    """Fails while ``down``; remembers what it published and suppresses repeats."""

    def __init__(self) -> None:
        self.down = True
        self.published: list[str] = []
        self.batches: list[int] = []

    async def publish_batch(
        self, signals: Sequence[dict[str, Any]], companions: Sequence[Any] = ()
    ) -> list[Published]:
        if self.down:
            raise RedisConnectionError("down")
        self.batches.append(len(signals))
        results = []
        for signal in signals:
            duplicate = signal["id"] in self.published
            if not duplicate:
                self.published.append(signal["id"])
            results.append(Published("e:1-0", duplicate=duplicate))
        return results


def sig(n: int) -> dict[str, Any]:
    return {"id": f"s{n}", "type": "BUY", "strategy": "sma_cross", "symbol": "A", "price": 1.0}


async def test_buffer_keeps_order_drops_oldest_when_full_and_counts_it() -> None:
    metrics = MonitorMetrics(CollectorRegistry(), strategies=("sma_cross",))
    fake = FlakyPublisher()
    buffered = BufferedPublisher(fake, metrics, Backoff(initial_s=0.01, max_s=0.02), max_len=3)  # type: ignore[arg-type]
    task = asyncio.create_task(buffered.run())
    try:
        for n in range(5):
            buffered.submit(sig(n))
        await asyncio.sleep(0.1)
        assert buffered.depth == 3
        assert metrics.total("qs_monitor_buffer_dropped_total") == 2
        assert metrics.total("qs_monitor_buffer_depth") == 3
        assert not buffered.connected
        fake.down = False  # Redis is back
        assert await buffered.drained(2.0)
        assert fake.published == ["s2", "s3", "s4"]
        buffered.submit(sig(4))
        assert await buffered.drained(2.0)
        assert metrics.total("qs_monitor_duplicates_suppressed_total") == 1
        assert metrics.total("qs_monitor_signals_published_total") == 3
        assert metrics.total("qs_monitor_publish_errors_total") >= 1
        assert buffered.connected
    finally:
        task.cancel()
