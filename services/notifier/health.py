"""One ``qs_redis_connected{loop="delivery"}`` for all destination workers: connected while
none of them is cut off from Redis; a reconnect counted when the first one loses it."""

from __future__ import annotations

from common.logging import get_logger
from common.metrics import RedisLoopMetrics

log = get_logger(__name__)


class LoopHealth:
    def __init__(self, metrics: RedisLoopMetrics, loop: str) -> None:
        self.metrics = metrics
        self.loop = loop
        self._down: set[str] = set()
        self._up = False

    def up(self, worker: str) -> None:
        """Called after every successful read: cheap unless something changes."""
        if worker in self._down:
            self._down.discard(worker)
            log.info("redis_reconnected", loop=self.loop, worker=worker)
        if not self._down and not self._up:
            self._up = True
            self.metrics.up(self.loop)

    def down(self, worker: str, error: BaseException) -> None:
        if worker not in self._down:
            log.warning("redis_unreachable", loop=self.loop, worker=worker, error=repr(error))
            if not self._down:
                self._up = False
                self.metrics.down(self.loop)
            self._down.add(worker)

    def forget(self, worker: str) -> None:
        """A worker that stopped no longer counts."""
        self._down.discard(worker)
        if not self._down and not self._up:
            self._up = True
            self.metrics.up(self.loop)
