"""Recent closed bars per symbol, kept in Redis for warm-ups and charts, and published live.

A tick costs no Redis round trip: bars wait here until the publisher's next round trip
(monitor.publisher), which carries them ahead of the signals of the same bar close as one
script call (``_WRITE``): each symbol's new bars are appended to its list, and the live ones
PUBLISHed on ``bars_channel`` (the gateway relays them as ``new_bar``). One script, rather
than three list commands per symbol and a PUBLISH per bar, because packing and parsing
hundreds of commands per bar close was a large share of the monitor's CPU
(docs/performance.md, "Monitor throughput"). The store is a cache: while Redis is away,
writes and publishes are dropped and a later warm-up falls back to the source's own history
(a chart reloads GET /api/bars after a reconnect).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError
from redis.typing import EncodableT

from common.constants import bars_channel, bars_key
from common.logging import get_logger
from monitor.sources.base import Bar, format_timeframe

log = get_logger(__name__)

# KEYS: one bar list per symbol. ARGV: bars channel, TTL s, a JSON array with per key
# [how many to keep, [bar, ...]], a JSON array of the live bar messages to publish (after the
# lists are written, so whoever hears a bar finds it in its list). Two JSON arguments rather
# than one per bar: redis-py packs each argument in Python, cjson unpacks them in C.
_WRITE = """
local lists = cjson.decode(ARGV[3])
for k = 1, #KEYS do
  local keep, items = lists[k][1], lists[k][2]
  for first = 1, #items, 1000 do  -- unpack has a stack limit
    redis.call('RPUSH', KEYS[k], unpack(items, first, math.min(first + 999, #items)))
  end
  redis.call('LTRIM', KEYS[k], -keep, -1)
  redis.call('EXPIRE', KEYS[k], ARGV[2])
end
for _, message in ipairs(cjson.decode(ARGV[4])) do
  redis.call('PUBLISH', ARGV[1], message)
end
return #KEYS
"""


def encode(bar: Bar) -> bytes:
    return orjson.dumps([bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume])


def _text(bar: Bar) -> str:
    """``encode`` as text: it travels inside the write's JSON argument as a string."""
    return encode(bar).decode()


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


def _nothing() -> None:
    return None


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
        self._pending: dict[str, list[str]] = {}
        self._live: list[str] = []
        self._staged: deque[tuple[dict[str, list[str]], list[str]]] = deque()
        self._frames: dict[str, tuple[float | None]] = {}  # timeframe_s per symbol, asked once
        self._script = client.register_script(_WRITE)
        # EVAL (the script's text) until Redis is known to hold it, then EVALSHA: no extra
        # round trip to load it, at start-up or after Redis lost it.
        self._script_known = False
        #: Called when a bar is queued: the publisher sends it with its next round trip.
        self.wake: Callable[[], None] = _nothing

    def record(self, bar: Bar, *, live: bool = True) -> None:
        """Queue ``bar`` for the list; a live one (not a warm-up seed) is also published."""
        pending = self._pending.get(bar.symbol)
        if pending is None:
            pending = self._pending[bar.symbol] = []
        pending.append(_text(bar))
        if live:
            frame = self._frames.get(bar.symbol)
            if frame is None:
                frame = self._frames[bar.symbol] = (self._timeframe_s(bar.symbol),)
            self._live.append(orjson.dumps(bar_message(bar, frame[0])).decode())
        self.wake()

    async def load(self, symbol: str, count: int) -> list[Bar]:
        """The newest ``count`` stored bars of ``symbol``, oldest first."""
        raw = await self._client.lrange(bars_key(self._channel, symbol), -count, -1)
        return [decode(symbol, item) for item in raw]

    def stage(self, pipe: Pipeline) -> int:
        """Queue the write of every bar recorded since the last one (a ``Companion``)."""
        pending, self._pending = self._pending, {}
        live, self._live = self._live, []
        if not pending:
            return 0
        self._staged.append((pending, live))
        keys = [bars_key(self._channel, symbol) for symbol in pending]
        # Per symbol only the newest ``keep``: older ones would be trimmed at once.
        lists = [(self._keep[s], items[-self._keep[s] :]) for s, items in pending.items()]
        args: list[EncodableT] = [
            bars_channel(self._channel),
            self._ttl_s,
            orjson.dumps(lists),
            orjson.dumps(live),
        ]
        if self._script_known:
            pipe.evalsha(self._script.sha, len(keys), *keys, *args)
        else:
            pipe.eval(_WRITE, len(keys), *keys, *args)
        return 1

    def settle(self, replies: Sequence[Any] | BaseException) -> None:
        # Round trips answer in the order they were staged: the oldest staged is this one.
        pending, live = self._staged.popleft()
        error = replies if isinstance(replies, BaseException) else replies[0]
        if not isinstance(error, BaseException):
            self._script_known = True
            return
        if isinstance(error, NoScriptError):
            # Nothing was written: they go again, ahead of newer ones, with the text.
            self._script_known = False
            for symbol, items in self._pending.items():
                pending.setdefault(symbol, []).extend(items)
            self._pending, self._live = pending, live + self._live
            return
        # Lost in transit (written or not): a cache, dropped; a warm-up falls back to the
        # source's history, a chart reloads.
        log.debug("bars_write_failed", error=str(error))

    async def flush(self) -> None:
        """Write what is queued now, in a round trip of its own (at shutdown)."""
        pipe = self._client.pipeline(transaction=False)
        if not self.stage(pipe):
            return
        try:
            replies = await pipe.execute(raise_on_error=False)
        except BaseException as exc:
            self.settle(exc)
            raise
        self.settle(replies)
