"""The one Protocol every market-data source implements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Bar:
    """One closed OHLCV bar; ``ts`` is the bar's close time in Unix seconds."""

    symbol: str
    ts: float
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0


class MarketSource(Protocol):
    name: str

    async def history(self, symbol: str, bars: int) -> list[Bar]:
        """Up to ``bars`` most recent closed bars, oldest first, to warm strategies up."""
        ...

    def stream(self, symbols: list[str]) -> AsyncIterator[Bar]:
        """New closed bars for ``symbols`` as they happen, in time order per symbol."""
        ...
