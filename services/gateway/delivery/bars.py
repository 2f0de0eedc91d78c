"""Closed bars from the monitor (``bars_channel``) to this replica's clients as ``new_bar``.

A bar has a symbol but no strategy or side, so a strategy or side filter must not hide the
market: a bar reaches every client whose filter includes its symbol. Those are room ``all``
and every filter room ``f:<symbol>:...`` or ``f:*:...`` (gateway/delivery/filters.py),
whatever their strategy and side coordinates. Rooms ``f::...`` (``NO_SYMBOL``, held by
clients with a symbol filter) are not targets: such a client is also in the rooms of its
symbols. A token's symbols claim is part of the filter, so it limits bars too.

Which of those rooms exist is only known at emit time (strategies are any strings), so the
targets are read from this replica's rooms (gateway/wire/rooms.py). That table also holds
one room per client, so the filter rooms are listed at most every ``ROOMS_REFRESH_S`` (the
bars of one bar close, one per symbol, share one scan: about 1 ms with 10,000 clients); a
client that subscribed in that moment gets the next bar. Like signals, each replica emits
with ``ignore_queue=True`` to its own clients only. Bars have no history or resume: a
client that reconnects reloads GET /api/bars.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Final

import orjson
import socketio

from common.constants import ALL_SIGNALS_ROOM, BAR_EVENT, FILTER_WILDCARD, filter_room
from common.logging import get_logger
from gateway.metrics import GatewayMetrics
from gateway.wire.rooms import room_names

log = get_logger(__name__)

NAMESPACE: Final = "/"
#: How long one listing of this replica's filter rooms serves, seconds.
ROOMS_REFRESH_S: Final = 0.1
#: The strategy and side coordinates at the end of filter_room(symbol, None, None).
_ANY_TAIL: Final = len(f"{FILTER_WILDCARD}:{FILTER_WILDCARD}")


def _symbol_prefix(symbol: str | None) -> str:
    """``f:<symbol>:`` (escaped as filter_room escapes it) or ``f:*:`` for None."""
    return filter_room(symbol, None, None)[:-_ANY_TAIL]


def filter_rooms(names: Iterable[object]) -> list[str]:
    """The filter rooms (``f:...``) among a replica's room names."""
    prefix = _symbol_prefix(None)[:2]  # "f:"
    return [r for r in names if isinstance(r, str) and r.startswith(prefix)]


def bar_rooms(filters: list[str], symbol: str) -> list[str]:
    """Room ``all`` and the filter rooms of clients whose filter includes ``symbol``."""
    prefixes = (_symbol_prefix(symbol), _symbol_prefix(None))
    return [ALL_SIGNALS_ROOM, *(r for r in filters if r.startswith(prefixes))]


class BarEmitter:
    def __init__(
        self, sio: socketio.AsyncServer, metrics: GatewayMetrics, max_message_bytes: int
    ) -> None:
        self._sio = sio
        self._metrics = metrics
        self._max_bytes = max_message_bytes
        self._filters: list[str] = []
        self._listed_at = -ROOMS_REFRESH_S

    def _filter_rooms(self) -> list[str]:
        now = time.monotonic()
        if now - self._listed_at >= ROOMS_REFRESH_S:
            # Synchronous, before any await: room_names is a view, not a copy.
            self._filters = filter_rooms(room_names(self._sio, NAMESPACE))
            self._listed_at = now
        return self._filters

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
        rooms = bar_rooms(self._filter_rooms(), bar["symbol"])
        await self._sio.emit(BAR_EVENT, bar, to=rooms, ignore_queue=True)
        self._metrics.bars_emitted.inc()
