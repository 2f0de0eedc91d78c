"""What a replica does when its fan-out cannot keep up (docs/delivery.md, "Overload").

Each live signal's age when its fan-out starts is now minus the time in its history offset
(``<ms>-<seq>``: Redis's clock when the signal was stored, so a producer's own ``ts`` does
not count). Older than ``OVERLOAD_AGE_MS`` and the replica is in overload: the relay then
reads every signal already waiting in Redis (up to ``OVERLOAD_BATCH_MAX``) and fans them
out as one batch, each client's frames in one write. Every client still gets every signal,
exactly once and in order; clients that asked for ``latest_only`` at connect get only the
newest signal of each symbol and strategy of a batch. It leaves overload once a signal
arrives younger than half the bound with nothing else waiting.

A client that stops reading altogether is still disconnected by ``CLIENT_QUEUE_MAX``; and
if the whole replica falls far enough behind, Redis ends its subscription (the pub/sub
client output buffer limit), the relay reconnects and backfills from the history stream.
"""

from __future__ import annotations

from typing import Any, Final

from common.logging import get_logger
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings

log = get_logger(__name__)

#: The room of clients that opted in to dropping older signals in overload. Not a filter
#: room (those start with ``f:``), so bars and signals never target it.
LATEST_ONLY_ROOM: Final = "latest_only"
#: The Socket.IO auth (or query) option a client sets to opt in.
LATEST_ONLY_OPTION: Final = "latest_only"
_TRUE_WORDS: Final = frozenset({"1", "true", "yes", "on"})


def wants_latest_only(auth: Any, query: str = "") -> bool:
    """True when the connect ``auth`` has ``latest_only: true``, or the handshake's query
    string has ``latest_only=1`` (or true/yes/on)."""
    if isinstance(auth, dict) and auth.get(LATEST_ONLY_OPTION) is True:
        return True
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == LATEST_ONLY_OPTION and value.lower() in _TRUE_WORDS:
            return True
    return False


def offset_age_s(offset: tuple[int, int] | None, now_s: float) -> float | None:
    """Seconds since the offset's time (None without an offset); never below zero, as the
    Redis server's clock may run a little ahead of this host's."""
    if offset is None or offset[0] <= 0:
        return None
    return max(0.0, now_s - offset[0] / 1000)


class OverloadState:
    """Overload on or off, from the ages of the signals reaching the fan-out."""

    def __init__(self, age_bound_s: float, batch_max: int, metrics: GatewayMetrics) -> None:
        self._bound = age_bound_s
        self._batch_max = batch_max
        self._metrics = metrics
        self.active = False

    @classmethod
    def from_settings(
        cls, settings: GatewaySettings | None, metrics: GatewayMetrics
    ) -> OverloadState:
        """From ``settings``, or from the settings' defaults when None."""
        settings = settings or GatewaySettings.model_construct()
        return cls(settings.overload_age_ms / 1000, settings.overload_batch_max, metrics)

    def batch_max(self) -> int:
        """How many signals the relay may read at once: 1 unless in overload."""
        return self._batch_max if self.active else 1

    def observe(self, age_s: float | None, waiting: bool) -> None:
        """The age of the oldest signal of a fan-out at its start, and whether the batch
        was cut short by ``batch_max`` (more may be waiting)."""
        if age_s is None:
            return
        if not self.active and age_s > self._bound:
            self.active = True
            self._metrics.overloaded.set(1)
            self._metrics.overload_episodes.inc()
            log.warning("overload_entered", age_ms=round(age_s * 1000), bound_ms=self._bound * 1e3)
        elif self.active and not waiting and age_s < self._bound / 2:
            self.active = False
            self._metrics.overloaded.set(0)
            log.info("overload_left", age_ms=round(age_s * 1000))
