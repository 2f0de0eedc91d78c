"""Seeded simulated market: geometric Brownian motion per symbol, one bar per tick."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncIterator

from monitor.sources.base import Bar

# Starting prices for the default symbols; other symbols start at 100.
_START_PRICES = {"BTC-USD": 60_000.0, "ETH-USD": 3_000.0, "SOL-USD": 150.0,
                 "ADA-USD": 0.45, "XRP-USD": 0.6}


class SimulatedMarket:
    name = "sim"

    def __init__(
        self,
        symbols: list[str],
        tick_interval_s: float = 0.5,
        seed: int = 42,
        volatility: float = 0.004,
    ) -> None:
        self._interval = tick_interval_s
        self._rng = random.Random(seed)
        self._vol = volatility
        self._prices = {s: _START_PRICES.get(s, 100.0) for s in symbols}
        self._last_ts = time.time()

    def _step(self, symbol: str, ts: float) -> Bar:
        # GBM step with zero drift; the close of the previous bar opens the next one.
        open_ = self._prices[symbol]
        shock = self._rng.gauss(0.0, 1.0)
        close = open_ * math.exp(-0.5 * self._vol**2 + self._vol * shock)
        spread = abs(self._rng.gauss(0.0, self._vol / 2)) * open_
        self._prices[symbol] = close
        return Bar(symbol, ts, open_, max(open_, close) + spread, min(open_, close) - spread,
                   close, volume=round(self._rng.uniform(1, 100), 3))

    async def history(self, symbol: str, bars: int) -> list[Bar]:
        self._prices.setdefault(symbol, _START_PRICES.get(symbol, 100.0))
        start = self._last_ts - bars * self._interval
        return [self._step(symbol, start + i * self._interval) for i in range(bars)]

    async def stream(self, symbols: list[str]) -> AsyncIterator[Bar]:
        for symbol in symbols:
            self._prices.setdefault(symbol, _START_PRICES.get(symbol, 100.0))
        next_tick = time.monotonic()
        while True:
            next_tick += self._interval
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
            ts = time.time()
            self._last_ts = ts
            for symbol in symbols:
                yield self._step(symbol, ts)
