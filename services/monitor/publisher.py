"""Publishes signals in order, holding them in a bounded buffer while Redis is away.

Everything a bar close produces goes to Redis in one round trip: the signals of all symbols
in one call of the publish script (common.publish, dedupe and atomicity per signal), with
the bars and the changed scores ahead of them (the ``companions``, monitor.bars and
monitor.scoring). The loop sends whatever has queued since its last round trip, so under
load the batches grow instead of the queue.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter

from common.logging import get_logger
from common.offsets import parse_position
from common.publish import Companion, Published, SignalPublisher
from common.redis import REDIS_ERRORS, Backoff, raise_if_cancelling
from monitor.metrics import PUBLISH_LOOP, MonitorMetrics

log = get_logger(__name__)

#: Signals per script call: bounds how long one call holds Redis (about 10 us a signal).
BATCH_MAX = 500


class BufferedPublisher:
    def __init__(
        self,
        publisher: SignalPublisher,
        metrics: MonitorMetrics,
        backoff: Backoff,
        max_len: int,
        *,
        companions: Sequence[Companion] = (),
        batch_max: int = BATCH_MAX,
    ) -> None:
        self._publisher = publisher
        self._metrics = metrics
        self._backoff = backoff
        self._max_len = max_len
        self._companions = companions
        self._batch_max = batch_max
        self._queue: deque[tuple[dict[str, Any], float]] = deque()
        self._dropped = 0  # ever dropped from the head: a batch in flight may lose its first
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self.connected = False
        #: Epoch of the last position published; a different one means Redis lost history.
        self._epoch: str | None = None
        self._counters: dict[tuple[str, str], Counter] = {}

    def submit(self, signal: dict[str, Any], received_at: float | None = None) -> None:
        """Queue ``signal``; ``received_at`` (monotonic) is when its bar arrived."""
        if len(self._queue) >= self._max_len:
            # Dropping the oldest keeps the freshest signals, which matter most to traders.
            dropped, _ = self._queue.popleft()
            self._dropped += 1
            self._metrics.buffer_dropped.inc()
            log.error("signal_dropped_buffer_full", id=dropped.get("id"), max=self._max_len)
        self._queue.append((signal, time.monotonic() if received_at is None else received_at))
        self._metrics.buffer_depth.set(len(self._queue))
        self._idle.clear()  # invariant: idle is set only while the queue is empty
        self._ready.set()

    def wake(self) -> None:
        """A companion has something to write: send it with the next round trip."""
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
            self._ready.clear()
            # One more turn of the event loop, so the other symbols closing the same bar
            # queue their signals too: they all go in this round trip.
            await asyncio.sleep(0)
            await self._publish_head()
            while self._queue:
                await self._publish_head()
            self._idle.set()

    async def _publish_head(self) -> None:
        """One round trip: the head of the queue (up to ``batch_max``) and the companions."""
        batch = list(itertools.islice(self._queue, self._batch_max))
        dropped = self._dropped
        try:
            results = await self._publisher.publish_batch(
                [signal for signal, _ in batch], self._companions
            )
        except REDIS_ERRORS as exc:
            raise_if_cancelling()
            if batch:  # bars and scores alone are a cache: they do not make us unready
                self._mark_down(exc)
            await asyncio.sleep(self._backoff.next_delay())
            return
        if batch:
            self._mark_up()
        # A full buffer may have dropped the oldest while the batch was in flight: those
        # left the queue already, whatever became of them.
        for _ in range(max(0, len(batch) - (self._dropped - dropped))):
            self._queue.popleft()
        self._metrics.buffer_depth.set(len(self._queue))
        self._count(batch, results)

    def _count(self, batch: list[tuple[dict[str, Any], float]], results: list[Published]) -> None:
        now = time.monotonic()
        fresh = []
        for (signal, queued_at), result in zip(batch, results, strict=True):
            if result.duplicate:
                self._metrics.duplicates.inc()
                continue
            if result.position is not None:
                self._note_epoch(result.position)
            self._published(signal["strategy"], signal["type"]).inc()
            self._metrics.tick_to_publish.observe(now - queued_at)
            fresh.append(signal["id"])
        if fresh:
            # One line per round trip, not per signal: at thousands a second, a line each
            # was a visible share of the CPU. The history stream is the record of each.
            log.info("signals_published", count=len(fresh), ids=fresh)

    def _published(self, strategy: str, side: str) -> Counter:
        """The labelled counter, looked up once per label pair rather than per signal."""
        counter = self._counters.get((strategy, side))
        if counter is None:
            counter = self._metrics.signals.labels(strategy, side)
            self._counters[(strategy, side)] = counter
        return counter

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
