"""The one Protocol every market-data source implements.

A source serves one symbol per ``stream`` call: the worker runs one task per symbol it holds
the lease for, so a failing symbol never stalls the others and a lease change starts or
stops exactly one stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
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


#: ``report(symbol, reason)``: a source found bad data it skipped (counted as a source error).
ErrorReport = Callable[[str, str], None]


class MarketSource(Protocol):
    @property
    def name(self) -> str: ...

    async def history(self, symbol: str, bars: int) -> list[Bar]:
        """Up to ``bars`` most recent closed bars, oldest first, to warm strategies up."""
        ...

    def stream(self, symbol: str, last: Bar | None) -> AsyncIterator[Bar]:
        """Closed bars of ``symbol`` newer than ``last``, in time order, as they happen.

        Raising ends the stream; the worker counts the error, backs off and calls
        ``stream`` again with the last bar it saw. Returning means no more data (replay).
        """
        ...

    async def aclose(self) -> None:
        """Release connections; the source is not used afterwards."""
        ...
