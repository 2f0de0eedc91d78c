"""From one raw channel message to one emit to this replica's clients.

Every replica subscribes to the channel and emits with ``ignore_queue=True``: each client
is connected to exactly one replica, so each client gets each signal exactly once,
whatever the replica count. (A plain ``emit`` would also publish through the Redis
manager and deliver N copies; python-socketio#460.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import socketio

from common.constants import ALL_SIGNALS_ROOM, SIGNAL_EVENT, symbol_room
from common.logging import get_logger
from common.schema import SignalRejected, parse_signal
from gateway.metrics import GatewayMetrics

log = get_logger(__name__)


def target_rooms(signal: dict[str, Any]) -> list[str] | None:
    """Rooms that should see ``signal``; None means every client."""
    symbol = signal.get("symbol")
    if isinstance(symbol, str):
        return [ALL_SIGNALS_ROOM, symbol_room(symbol)]
    return None


class SignalFanout:
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

    async def handle(self, raw: bytes) -> None:
        self._metrics.signals_received.inc()
        try:
            signal = parse_signal(raw, self._max_bytes)
        except SignalRejected as exc:
            self._metrics.signals_rejected.labels(exc.reason.value).inc()
            log.warning(
                "signal_rejected", reason=exc.reason.value, detail=exc.detail[:300], size=len(raw)
            )
            return
        await self._sio.emit(SIGNAL_EVENT, signal, to=target_rooms(signal), ignore_queue=True)
        self._metrics.signals_emitted.inc()
        ts = signal.get("ts")
        if isinstance(ts, int | float):
            self._metrics.relay_latency.observe(max(0.0, self._clock() - ts))
