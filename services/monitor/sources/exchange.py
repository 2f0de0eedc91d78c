"""Live public market data from a real exchange through ccxt (REST polling of OHLCV).

One ccxt client is shared by every symbol, so its rate limiter (``enableRateLimit``)
spaces all requests to the exchange's published limit. A failing request raises out of
``stream``; the worker counts it, backs off for that symbol only and resumes.
``url`` replaces the scheme and host of every API URL the exchange defines: that is how
the tests point the real client at recorded responses on 127.0.0.1, and how an operator
points it at a proxy.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from monitor.sources.base import Bar


def override_urls(urls: Any, base: str) -> Any:
    """Every URL string in ccxt's (nested) ``urls['api']``, rehomed onto ``base``."""
    if isinstance(urls, dict):
        return {key: override_urls(value, base) for key, value in urls.items()}
    if isinstance(urls, str) and urls.startswith(("http://", "https://")):
        target = urlsplit(base)
        parts = urlsplit(urls)
        path = target.path.rstrip("/") + parts.path
        return urlunsplit((target.scheme, target.netloc, path, parts.query, parts.fragment))
    return urls


class ExchangeSource:
    name = "exchange"

    def __init__(
        self,
        *,
        exchange_id: str,
        timeframe: str,
        poll_interval_s: float,
        timeout_s: float,
        url: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        import ccxt.async_support as ccxt_async  # heavy import: only when this source is used

        if not hasattr(ccxt_async, exchange_id):
            raise ValueError(f"ccxt has no exchange {exchange_id!r}")
        self._client: Any = getattr(ccxt_async, exchange_id)(
            {
                "enableRateLimit": True,
                "timeout": int(timeout_s * 1000),
                "options": options or {},
            }
        )
        if url:
            self._client.urls["api"] = override_urls(self._client.urls["api"], url)
        self._timeframe = timeframe
        self._timeframe_ms = int(self._client.parse_timeframe(timeframe) * 1000)
        self._poll_s = poll_interval_s
        self._markets_lock = asyncio.Lock()

    async def _ready(self) -> Any:
        async with self._markets_lock:  # one markets download, however many symbols start
            if not self._client.markets:
                await self._client.load_markets()
        return self._client

    async def closed_bars(self, symbol: str, since_ms: int | None, limit: int) -> list[Bar]:
        client = await self._ready()
        rows = await client.fetch_ohlcv(symbol, self._timeframe, since=since_ms, limit=limit)
        now_ms = client.milliseconds()
        bars = []
        for open_ms, o, h, low, c, v in rows:
            close_ms = int(open_ms) + self._timeframe_ms
            if close_ms > now_ms:
                continue  # the current candle is still forming
            bars.append(
                Bar(
                    symbol,
                    close_ms / 1000,
                    float(o),
                    float(h),
                    float(low),
                    float(c),
                    float(v or 0.0),
                )
            )
        return bars

    async def history(self, symbol: str, bars: int) -> list[Bar]:
        # One extra: the newest candle is usually still open and gets dropped.
        return (await self.closed_bars(symbol, None, bars + 1))[-bars:]

    async def stream(self, symbol: str, last: Bar | None) -> AsyncIterator[Bar]:
        last_ts = last.ts if last else None
        while True:
            since = int(last_ts * 1000) - self._timeframe_ms if last_ts else None
            for bar in await self.closed_bars(symbol, since, 100):
                if last_ts is None or bar.ts > last_ts:
                    last_ts = bar.ts
                    yield bar
            await asyncio.sleep(self._poll_s)

    def timeframe_s(self, symbol: str) -> float:
        # ccxt's own reading of EXCHANGE_TIMEFRAME ("1M" counts as 30 days).
        return self._timeframe_ms / 1000

    async def aclose(self) -> None:
        await self._client.close()
