"""Live closed bars from Binance's WebSocket kline stream, REST polling as the fallback.

Per symbol, ccxt's ``watch_ohlcv`` keeps the ``<symbol>@kline_<interval>`` subscription
alive and reconnects; the raw kline events (``kline_tap``) feed a follower
(``stream_follower``) that emits each closed candle (``k.x``) once, in order. When the stream
fails or says nothing for ``stale_s``, the REST polling of ``ExchangeSource`` takes over; the
first message afterwards hands back, after REST has filled the bars in between. The REST
client also serves warm-up history and fills any gap the stream leaves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import CollectorRegistry

from common.logging import get_logger
from common.redis import Backoff
from monitor.metrics import MonitorMetrics
from monitor.sources.base import Bar
from monitor.sources.exchange import ExchangeSource, override_urls
from monitor.sources.kline_tap import (
    STREAM_EXCHANGES,
    Kline,
    drop_idle_connections,
    tapped_binance,
)
from monitor.sources.stream_follower import Follower, StreamDown

log = get_logger(__name__)

#: A healthy kline stream sends at least the closing update of every bar.
DEFAULT_STALE_BARS = 2


def override_ws_urls(urls: Any, base: str) -> Any:
    """Every ws:// or wss:// URL in ccxt's (nested) ``urls['api']['ws']``, rehomed onto ``base``."""
    if isinstance(urls, dict):
        return {key: override_ws_urls(value, base) for key, value in urls.items()}
    if isinstance(urls, str) and urls.startswith(("ws://", "wss://")):
        target, parts = urlsplit(base), urlsplit(urls)
        path = target.path.rstrip("/") + parts.path
        return urlunsplit((target.scheme, target.netloc, path, parts.query, parts.fragment))
    return urls


class StreamingExchangeSource:
    name = "exchange"

    def __init__(
        self,
        *,
        exchange_id: str,
        timeframe: str,
        poll_interval_s: float,
        timeout_s: float,
        stale_s: float | None = None,
        url: str | None = None,
        stream_url: str | None = None,
        options: dict[str, Any] | None = None,
        metrics: MonitorMetrics | None = None,
        backoff_max_s: float = 30.0,
    ) -> None:
        if exchange_id not in STREAM_EXCHANGES:
            raise ValueError(f"no kline stream for exchange {exchange_id!r}")
        self.rest = ExchangeSource(
            exchange_id=exchange_id,
            timeframe=timeframe,
            poll_interval_s=poll_interval_s,
            timeout_s=timeout_s,
            url=url,
            options=options,
        )
        self.ws: Any = tapped_binance(
            {"enableRateLimit": True, "timeout": int(timeout_s * 1000), "options": options or {}},
            self._on_kline,
            self._on_malformed,
        )
        if url:  # markets are loaded over REST
            self.ws.urls["api"] = override_urls(self.ws.urls["api"], url)
        if stream_url:
            self.ws.urls["api"]["ws"] = override_ws_urls(self.ws.urls["api"]["ws"], stream_url)
        self.timeframe = timeframe
        self.interval = self.ws.timeframes.get(timeframe, timeframe)
        self.timeframe_ms = round(self.rest.timeframe_s("") * 1000)
        self.poll_s = poll_interval_s
        self.stale_s = stale_s or DEFAULT_STALE_BARS * self.timeframe_ms / 1000
        self.metrics = metrics or MonitorMetrics(CollectorRegistry(), "exchange")
        self._backoff_max_s = backoff_max_s
        self._inboxes: dict[str, asyncio.Queue[Kline | StreamDown]] = {}

    def _on_kline(self, kline: Kline) -> None:
        inbox = self._inboxes.get(kline.market_id)
        if inbox is not None and kline.interval == self.interval:
            inbox.put_nowait(kline)

    def _on_malformed(self, reason: str) -> None:
        self.metrics.stream_malformed.labels(reason).inc()
        log.warning("stream_message_malformed", reason=reason)

    async def history(self, symbol: str, bars: int) -> list[Bar]:
        return await self.rest.history(symbol, bars)

    async def stream(self, symbol: str, last: Bar | None) -> AsyncIterator[Bar]:
        await self.ws.load_markets()
        market_id: str = self.ws.market(symbol)["id"]
        inbox: asyncio.Queue[Kline | StreamDown] = asyncio.Queue()
        self._inboxes[market_id] = inbox  # the worker runs one stream per symbol at a time
        self._declare_labels(symbol)
        watcher = asyncio.create_task(self._watch(symbol, inbox), name=f"watch:{symbol}")
        try:
            async for bar in Follower(self, symbol, last, inbox).run():
                yield bar
        finally:
            watcher.cancel()
            if self._inboxes.get(market_id) is inbox:
                del self._inboxes[market_id]

    def _declare_labels(self, symbol: str) -> None:
        m = self.metrics
        m.stream_active.labels(symbol).set(0)
        m.stream_handbacks.labels(symbol)
        m.stream_reconnects.labels(symbol)
        m.stream_gap_bars.labels(symbol)
        for reason in ("stale", "error"):
            m.stream_fallbacks.labels(symbol, reason)
        for reason in ("duplicate", "out_of_order"):
            m.stream_dropped.labels(symbol, reason)

    async def _watch(self, symbol: str, inbox: asyncio.Queue[Kline | StreamDown]) -> None:
        """Keep the subscription alive; ccxt dials again on the call after a failure."""
        backoff = Backoff(initial_s=0.1, max_s=self._backoff_max_s)
        while True:
            try:
                await self.ws.watch_ohlcv(symbol, self.timeframe)
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a dropped connection, a refused dial: report, retry
                inbox.put_nowait(StreamDown(repr(exc)))
                self.metrics.stream_reconnects.labels(symbol).inc()
                delay = backoff.next_delay()
                log.warning(
                    "stream_down", symbol=symbol, error=repr(exc), retry_in_s=round(delay, 2)
                )
                await asyncio.sleep(delay)

    def drop_idle_connections(self) -> None:
        dropped = drop_idle_connections(self.ws, self.stale_s)
        if dropped:
            log.warning("stream_connection_dropped", urls=dropped, idle_s=self.stale_s)

    def timeframe_s(self, symbol: str) -> float:
        return self.timeframe_ms / 1000

    async def aclose(self) -> None:
        try:
            await self.ws.close()
        finally:
            await self.rest.aclose()
