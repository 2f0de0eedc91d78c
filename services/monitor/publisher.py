"""Publishes signals in order, holding them in a bounded buffer while Redis is away."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from common.logging import get_logger
from common.offsets import parse_position
from common.publish import SignalPublisher
from common.redis import REDIS_ERRORS, Backoff
from monitor.metrics import PUBLISH_LOOP, MonitorMetrics

log = get_logger(__name__)


class BufferedPublisher:
    def __init__(
        self, publisher: SignalPublisher, metrics: MonitorMetrics, backoff: Backoff, max_len: int
    ) -> None:
        self._publisher = publisher
        self._metrics = metrics
        self._backoff = backoff
        self._max_len = max_len
        self._queue: deque[tuple[dict[str, Any], float]] = deque()
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self.connected = False
        #: Epoch of the last position published; a different one means Redis lost history.
        self._epoch: str | None = None

    def submit(self, signal: dict[str, Any], received_at: float | None = None) -> None:
        """Queue ``signal``; ``received_at`` (monotonic) is when its bar arrived."""
        if len(self._queue) >= self._max_len:
            # Dropping the oldest keeps the freshest signals, which matter most to traders.
            dropped, _ = self._queue.popleft()
            self._metrics.buffer_dropped.inc()
            log.error("signal_dropped_buffer_full", id=dropped.get("id"), max=self._max_len)
        self._queue.append((signal, time.monotonic() if received_at is None else received_at))
        self._metrics.buffer_depth.set(len(self._queue))
        self._idle.clear()  # invariant: idle is set only while the queue is empty
        self._ready.set()

    async def drained(self, timeout_s: float) -> bool:
        """Wait until every queued signal is published, at most ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                while self._queue:
                    await self._idle.wait()
        except TimeoutError:
            return False
        return True

    @property
    def depth(self) -> int:
        return len(self._queue)

    async def run(self) -> None:
        while True:
            await self._ready.wait()
            while self._queue:
                await self._publish_head()
            self._ready.clear()
            self._idle.set()

    async def _publish_head(self) -> None:
        signal, queued_at = self._queue[0]
        try:
            fresh = await self._publisher.publish(signal)
        except REDIS_ERRORS as exc:
            self._mark_down(exc)
            await asyncio.sleep(self._backoff.next_delay())
            return
        self._mark_up()
        self._queue.popleft()
        self._metrics.buffer_depth.set(len(self._queue))
        if fresh:
            self._note_epoch(fresh)
            self._metrics.signals.labels(signal["strategy"], signal["type"]).inc()
            self._metrics.tick_to_publish.observe(time.monotonic() - queued_at)
            log.info(
                "signal_published",
                id=signal["id"],
                type=signal["type"],
                symbol=signal["symbol"],
                price=signal["price"],
            )
        else:
            self._metrics.duplicates.inc()

    def _note_epoch(self, position: str) -> None:
        parsed = parse_position(position)
        epoch = parsed.epoch if parsed is not None else None
        if epoch is not None and self._epoch is not None and epoch != self._epoch:
            self._metrics.history_epoch_changes.inc()
            log.warning("history_epoch_changed", previous=self._epoch, epoch=epoch)
        self._epoch = epoch or self._epoch

    def _mark_down(self, exc: BaseException) -> None:
        self._metrics.publish_errors.inc()
        if self.connected:
            self._metrics.redis.down(PUBLISH_LOOP)
            log.warning("publisher_disconnected", error=str(exc), buffered=len(self._queue))
        self.connected = False

    def _mark_up(self) -> None:
        if not self.connected:
            self._metrics.redis.up(PUBLISH_LOOP)
            self._backoff.reset()
        self.connected = True
