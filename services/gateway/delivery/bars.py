"""Closed bars from the monitor (``bars_channel``) to this replica's clients as ``new_bar``.

A bar has a symbol but no strategy or side, so a strategy or side filter must not hide the
market: a bar reaches every client whose filter includes its symbol. Those are room ``all``
and every filter room ``f:<symbol>:...`` or ``f:*:...`` (gateway/delivery/filters.py),
whatever their strategy and side coordinates. Rooms ``f::...`` (``NO_SYMBOL``, held by
clients with a symbol filter) are not targets: such a client is also in the rooms of its
symbols. A token's symbols claim is part of the filter, so it limits bars too.

Which of those rooms exist is only known at emit time (strategies are any strings), so the
targets are read from this replica's rooms on each bar: a few rooms per distinct filter,
a few bars per second. Like signals, each replica emits with ``ignore_queue=True`` to its
own clients only. Bars have no history or resume: a client that reconnects reloads GET
/api/bars.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
import socketio

from common.constants import ALL_SIGNALS_ROOM, BAR_EVENT, FILTER_WILDCARD, filter_room
from common.logging import get_logger
from gateway.metrics import GatewayMetrics

log = get_logger(__name__)

NAMESPACE: Final = "/"
#: The strategy and side coordinates at the end of filter_room(symbol, None, None).
_ANY_TAIL: Final = len(f"{FILTER_WILDCARD}:{FILTER_WILDCARD}")


def _symbol_prefix(symbol: str | None) -> str:
    """``f:<symbol>:`` (escaped as filter_room escapes it) or ``f:*:`` for None."""
    return filter_room(symbol, None, None)[:-_ANY_TAIL]


def bar_rooms(rooms: object, symbol: str) -> list[str]:
    """The rooms of clients whose filter includes ``symbol``, from a replica's room names."""
    prefixes = (_symbol_prefix(symbol), _symbol_prefix(None))
    names = rooms if isinstance(rooms, dict) else {}
    return [ALL_SIGNALS_ROOM, *(r for r in names if isinstance(r, str) and r.startswith(prefixes))]


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
        # Read synchronously, before the first await: the room table is not copied.
        rooms = bar_rooms(self._sio.manager.rooms.get(NAMESPACE), bar["symbol"])
        await self._sio.emit(BAR_EVENT, bar, to=rooms, ignore_queue=True)
        self._metrics.bars_emitted.inc()
