"""One symbol's closed bars from a kline stream, with REST polling while the stream is down.

The follower holds the close time of the last bar it emitted and emits only newer bars, so a
bar never comes twice and never out of order, whichever path it came by:

- streaming: a closed kline newer than the last bar is emitted; an older or equal one is
  dropped and counted (``out_of_order``, ``duplicate``); one that skips bars first fetches
  the skipped bars from REST.
- a stream error, or no message for ``stale_s``: polling takes over (``fallbacks``), at once
  and then every ``poll_s``; after a silence, connections that have gone quiet are dropped
  so ccxt dials afresh.
- the first message while polling hands back (``handbacks``) after REST has filled every bar
  since the last one emitted. The follower also starts polling, so the bars between a warm-up
  and the stream's first message come from REST.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from common.logging import get_logger
from monitor.sources.base import Bar
from monitor.sources.kline_tap import Kline

if TYPE_CHECKING:
    from monitor.sources.exchange_stream import StreamingExchangeSource

log = get_logger(__name__)

#: Binance answers at most this many klines per request.
REST_PAGE = 1000
#: A bar the stream skipped may reach REST a moment later: ask again, briefly.
GAP_RETRIES = 3
GAP_RETRY_S = 0.25


@dataclass(frozen=True, slots=True)
class StreamDown:
    """The subscription failed (the watcher reconnects on its own)."""

    error: str


def _ms(bar: Bar) -> int:
    return round(bar.ts * 1000)


class Follower:
    def __init__(
        self,
        source: StreamingExchangeSource,
        symbol: str,
        last: Bar | None,
        inbox: asyncio.Queue[Kline | StreamDown],
    ) -> None:
        self.source = source
        self.symbol = symbol
        self.inbox = inbox
        self.last_ms = _ms(last) if last else None
        self.streaming = False
        self.fell_back = False  # a hand-back counts only after a fallback, not at the start
        self.loop = asyncio.get_running_loop()
        self.next_poll = self.loop.time()

    async def run(self) -> AsyncIterator[Bar]:
        while True:
            item = await self._next()
            if item is None:
                bars = await self._on_silence()
            elif isinstance(item, StreamDown):
                self._on_down(item)
                continue
            else:
                bars = await self._on_kline(item)
            for bar in bars:
                yield bar

    async def _next(self) -> Kline | StreamDown | None:
        """The next message, or None when it is time to poll (or the stream went quiet)."""
        if not self.inbox.empty():
            return self.inbox.get_nowait()
        wait_s = self.source.stale_s if self.streaming else self.next_poll - self.loop.time()
        if wait_s <= 0:
            return None
        try:
            return await asyncio.wait_for(self.inbox.get(), wait_s)
        except TimeoutError:
            return None

    def _take(self, bars: list[Bar]) -> list[Bar]:
        """The bars newer than the last emitted, which they become."""
        fresh = [b for b in bars if self.last_ms is None or _ms(b) > self.last_ms]
        if fresh:
            self.last_ms = _ms(fresh[-1])
        return fresh

    async def _on_silence(self) -> list[Bar]:
        if self.streaming:
            self._fall_back("stale")
            self.source.drop_idle_connections()
        self.next_poll = self.loop.time() + self.source.poll_s
        return self._take(await self._rest_after(None))

    def _on_down(self, down: StreamDown) -> None:
        if self.streaming:
            self._fall_back("error")
            self.next_poll = self.loop.time()  # poll at once: the stream may be gone a while

    async def _on_kline(self, kline: Kline) -> list[Bar]:
        bars: list[Bar] = []
        if not self.streaming:
            bars = self._take(await self._rest_after(None))
            self._hand_back(len(bars))
        if not kline.closed:
            return bars  # the forming candle: only proof that the stream lives
        close_ms = kline.open_ms + self.source.timeframe_ms
        if self.last_ms is not None and close_ms <= self.last_ms:
            reason = "duplicate" if close_ms == self.last_ms else "out_of_order"
            self.source.metrics.stream_dropped.labels(self.symbol, reason).inc()
            return bars
        if self.last_ms is not None and close_ms > self.last_ms + self.source.timeframe_ms:
            filled = self._take(await self._fill_gap(close_ms))
            self.source.metrics.stream_gap_bars.labels(self.symbol).inc(len(filled))
            bars += filled
        bar = Bar(
            self.symbol,
            close_ms / 1000,
            kline.open,
            kline.high,
            kline.low,
            kline.close,
            kline.volume,
        )
        return bars + self._take([bar])

    async def _fill_gap(self, until_ms: int) -> list[Bar]:
        """The closed bars between the last emitted and ``until_ms`` (exclusive), from REST."""
        assert self.last_ms is not None
        missing = (until_ms - self.last_ms) // self.source.timeframe_ms - 1
        bars: list[Bar] = []
        for attempt in range(GAP_RETRIES + 1):
            bars = await self._rest_after(until_ms)
            if len(bars) >= missing or attempt == GAP_RETRIES:
                break
            await asyncio.sleep(GAP_RETRY_S)
        if len(bars) < missing:
            log.warning("stream_gap_unfilled", symbol=self.symbol, missing=missing - len(bars))
        return bars

    async def _rest_after(self, until_ms: int | None) -> list[Bar]:
        """Closed bars after the last emitted (before ``until_ms``), following pages."""
        rest = self.source.rest
        after = self.last_ms
        bars: list[Bar] = []
        while True:
            # since = the next bar's open time; with no bar yet, only the latest closed bar.
            page = await rest.closed_bars(self.symbol, after, REST_PAGE if after else 2)
            new = [b for b in page if after is None or _ms(b) > after]
            bars += [b for b in new if until_ms is None or _ms(b) < until_ms]
            if after is None:
                return bars[-1:]
            reached = until_ms is not None and bool(new) and _ms(new[-1]) >= until_ms
            if len(page) < REST_PAGE or not new or reached:
                return bars
            after = _ms(new[-1])

    def _fall_back(self, reason: str) -> None:
        self.streaming = False
        self.fell_back = True
        self.source.metrics.stream_active.labels(self.symbol).set(0)
        self.source.metrics.stream_fallbacks.labels(self.symbol, reason).inc()
        log.warning("stream_fallback", symbol=self.symbol, reason=reason)

    def _hand_back(self, filled: int) -> None:
        self.streaming = True
        self.source.metrics.stream_active.labels(self.symbol).set(1)
        if self.fell_back:
            self.source.metrics.stream_handbacks.labels(self.symbol).inc()
        self.source.metrics.stream_gap_bars.labels(self.symbol).inc(filled)
        log.info("stream_active", symbol=self.symbol, filled_from_rest=filled)
