"""Recent closed bars per symbol, kept in Redis for warm-ups and charts, and published live.

Bars are written in batches by one flush loop (a pipeline every ``flush_interval_s``), so a
tick costs no Redis round trip: the same pipeline appends each bar to its list and PUBLISHes
the live ones on ``bars_channel`` (the gateway relays them as ``new_bar``). The store is a
cache: while Redis is away, writes and publishes are dropped and a later warm-up falls back
to the source's own history (a chart reloads GET /api/bars after a reconnect).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import redis.asyncio as aioredis

from common.constants import bars_channel, bars_key
from common.logging import get_logger
from common.redis import REDIS_ERRORS
from monitor.sources.base import Bar, format_timeframe

log = get_logger(__name__)

FLUSH_INTERVAL_S = 0.2


def encode(bar: Bar) -> bytes:
    return orjson.dumps([bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume])


def decode(symbol: str, raw: bytes | str) -> Bar:
    ts, o, h, low, c, v = orjson.loads(raw)
    return Bar(symbol, ts, o, h, low, c, v)


def bar_message(bar: Bar, timeframe_s: float | None) -> dict[str, Any]:
    """The published form of a bar; ``t`` is its open time (``ts`` is when it closed)."""
    opened = bar.ts - timeframe_s if timeframe_s else bar.ts
    return {
        "symbol": bar.symbol,
        "t": opened,
        "o": bar.open,
        "h": bar.high,
        "l": bar.low,
        "c": bar.close,
        "v": bar.volume,
        "timeframe": format_timeframe(timeframe_s),
    }


class RecentBars:
    def __init__(
        self,
        client: aioredis.Redis,
        channel: str,
        keep: dict[str, int],
        ttl_s: int,
        timeframe_s: Callable[[str], float | None] = lambda _symbol: None,
    ) -> None:
        self._client = client
        self._channel = channel
        self._keep = keep
        self._ttl_s = ttl_s
        self._timeframe_s = timeframe_s
        self._pending: dict[str, list[bytes]] = {}
        self._live: list[bytes] = []

    def record(self, bar: Bar, *, live: bool = True) -> None:
        """Queue ``bar`` for the list; a live one (not a warm-up seed) is also published."""
        self._pending.setdefault(bar.symbol, []).append(encode(bar))
        if live:
            self._live.append(orjson.dumps(bar_message(bar, self._timeframe_s(bar.symbol))))

    async def load(self, symbol: str, count: int) -> list[Bar]:
        """The newest ``count`` stored bars of ``symbol``, oldest first."""
        raw = await self._client.lrange(bars_key(self._channel, symbol), -count, -1)
        return [decode(symbol, item) for item in raw]

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        live, self._live = self._live, []
        if not pending:
            return
        pipe = self._client.pipeline(transaction=False)
        for symbol, items in pending.items():
            key = bars_key(self._channel, symbol)
            pipe.rpush(key, *items)
            pipe.ltrim(key, -self._keep[symbol], -1)
            pipe.expire(key, self._ttl_s)
        # After the RPUSH in the same round trip: whoever hears a bar finds it in the list.
        channel = bars_channel(self._channel)
        for message in live:
            pipe.publish(channel, message)
        await pipe.execute()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            try:
                await self.flush()
            except REDIS_ERRORS as exc:
                log.debug("bars_flush_failed", error=str(exc))
