"""Closed bars from the monitor (``bars_channel``) to this replica's clients as ``new_bar``.

A bar reaches the rooms a signal of its symbol would reach, treated as a symbol-only item
(``all`` and ``f:<symbol>:*:*``): a client filtering by symbol gets its symbols' bars, one
that also filters by strategy or side gets none (bars have neither). Like signals, each
replica emits with ``ignore_queue=True`` to its own clients only. Bars have no history or
resume: a client that reconnects reloads GET /api/bars.
"""

from __future__ import annotations

from typing import Any

import orjson
import socketio

from common.constants import BAR_EVENT
from common.logging import get_logger
from gateway.delivery.filters import target_rooms
from gateway.metrics import GatewayMetrics

log = get_logger(__name__)


class BarEmitter:
    def __init__(
        self, sio: socketio.AsyncServer, metrics: GatewayMetrics, max_message_bytes: int
    ) -> None:
        self._sio = sio
        self._metrics = metrics
        self._max_bytes = max_message_bytes

    def _parse(self, raw: bytes) -> dict[str, Any] | None:
        if len(raw) > self._max_bytes:
            return None
        try:
            bar = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        symbol = bar.get("symbol") if isinstance(bar, dict) else None
        return bar if isinstance(symbol, str) and symbol else None

    async def handle(self, raw: bytes) -> None:
        bar = self._parse(raw)
        if bar is None:
            self._metrics.bars_rejected.inc()
            log.warning("bar_rejected", size=len(raw))
            return
        rooms = target_rooms({"symbol": bar["symbol"]})
        await self._sio.emit(BAR_EVENT, bar, to=rooms, ignore_queue=True)
        self._metrics.bars_emitted.inc()
