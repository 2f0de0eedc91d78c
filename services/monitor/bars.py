"""Recent closed bars per symbol, kept in Redis so whoever works a symbol next warms up on them.

Bars are written in batches by one flush loop (a pipeline every ``flush_interval_s``), so a
tick costs no Redis round trip. The store is a cache: while Redis is away, writes are dropped
and a later warm-up falls back to the source's own history.
"""

from __future__ import annotations

import asyncio

import orjson
import redis.asyncio as aioredis

from common.constants import bars_key
from common.logging import get_logger
from common.redis import REDIS_ERRORS
from monitor.sources.base import Bar

log = get_logger(__name__)

FLUSH_INTERVAL_S = 0.2


def encode(bar: Bar) -> bytes:
    return orjson.dumps([bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume])


def decode(symbol: str, raw: bytes | str) -> Bar:
    ts, o, h, low, c, v = orjson.loads(raw)
    return Bar(symbol, ts, o, h, low, c, v)


class RecentBars:
    def __init__(
        self, client: aioredis.Redis, channel: str, keep: dict[str, int], ttl_s: int
    ) -> None:
        self._client = client
        self._channel = channel
        self._keep = keep
        self._ttl_s = ttl_s
        self._pending: dict[str, list[bytes]] = {}

    def record(self, bar: Bar) -> None:
        self._pending.setdefault(bar.symbol, []).append(encode(bar))

    async def load(self, symbol: str) -> list[Bar]:
        raw = await self._client.lrange(bars_key(self._channel, symbol), -self._keep[symbol], -1)
        return [decode(symbol, item) for item in raw]

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        if not pending:
            return
        pipe = self._client.pipeline(transaction=False)
        for symbol, items in pending.items():
            key = bars_key(self._channel, symbol)
            pipe.rpush(key, *items)
            pipe.ltrim(key, -self._keep[symbol], -1)
            pipe.expire(key, self._ttl_s)
        await pipe.execute()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            try:
                await self.flush()
            except REDIS_ERRORS as exc:
                log.debug("bars_flush_failed", error=str(exc))
