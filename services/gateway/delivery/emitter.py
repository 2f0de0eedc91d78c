"""From one raw channel message to one emit to this replica's clients.

Every replica subscribes to the channel and emits with ``ignore_queue=True``: each client
is connected to exactly one replica, so each client gets each signal exactly once,
whatever the replica count. (A plain ``emit`` would also publish through the Redis
manager and deliver N copies; python-socketio#460.)

Signals that carry a history ``offset`` arrive in offset order; the fan-out remembers the
highest one it emitted, which is what backfill and client recovery resume from.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import socketio

from common.constants import ALL_SIGNALS_ROOM, OFFSET_FIELD, SIGNAL_EVENT, symbol_room
from common.logging import get_logger
from common.schema import Offset, SignalRejected, format_offset, parse_offset, parse_signal
from gateway.metrics import GatewayMetrics

log = get_logger(__name__)


def target_rooms(signal: dict[str, Any]) -> list[str] | None:
    """Rooms that should see ``signal``; None means every client."""
    symbol = signal.get("symbol")
    if isinstance(symbol, str):
        return [ALL_SIGNALS_ROOM, symbol_room(symbol)]
    return None


class SignalEmitter:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        metrics: GatewayMetrics,
        max_message_bytes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sio = sio
        self._metrics = metrics
        self._max_bytes = max_message_bytes
        self._clock = clock
        #: Highest history offset emitted so far; None until the start-up tail is known.
        self.last_offset: Offset | None = None

    async def handle(self, raw: bytes) -> None:
        """A live message from the channel."""
        self._metrics.signals_received.inc()
        signal = self._parse(raw)
        if signal is not None:
            await self._deliver(signal, parse_offset(signal.get(OFFSET_FIELD)))

    async def handle_history(self, offset: Offset, raw: bytes) -> bool:
        """A message read back from the history stream; True if it was emitted."""
        signal = self.history_signal(offset, raw)
        return signal is not None and await self._deliver(signal, offset)

    def history_signal(self, offset: Offset, raw: bytes) -> dict[str, Any] | None:
        """A history entry as clients get it live: the stream keeps it without its offset."""
        signal = self._parse(raw)
        return None if signal is None else {OFFSET_FIELD: format_offset(offset), **signal}

    def _parse(self, raw: bytes) -> dict[str, Any] | None:
        try:
            return parse_signal(raw, self._max_bytes)
        except SignalRejected as exc:
            self._metrics.signals_rejected.labels(exc.reason.value).inc()
            log.warning(
                "signal_rejected", reason=exc.reason.value, detail=exc.detail[:300], size=len(raw)
            )
            return None

    async def _deliver(self, signal: dict[str, Any], offset: Offset | None) -> bool:
        if offset is not None:
            if self.last_offset is not None and offset <= self.last_offset:
                # Already emitted: seen by both a backfill and the live subscription.
                self._metrics.signals_skipped.inc()
                return False
            self.last_offset = offset
        await self._sio.emit(SIGNAL_EVENT, signal, to=target_rooms(signal), ignore_queue=True)
        self._metrics.signals_emitted.inc()
        ts = signal.get("ts")
        if isinstance(ts, int | float):
            self._metrics.relay_latency.observe(max(0.0, self._clock() - ts))
        return True
