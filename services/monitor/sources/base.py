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

    def timeframe_s(self, symbol: str) -> float | None:
        """Seconds between ``symbol``'s bars, or None when the source cannot tell."""
        ...

    async def aclose(self) -> None:
        """Release connections; the source is not used afterwards."""
        ...


#: Units of a timeframe, largest first, in milliseconds.
_TIMEFRAME_UNITS = (
    ("w", 604_800_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
)


def format_timeframe(seconds: float | None) -> str | None:
    """The wire form of a bar interval: "500ms", "1s", "1m", "4h", "1d", "1w".

    The largest unit that divides the interval exactly, so one interval has one spelling
    (90 s is "90s", not "1.5m"). None for what has no such form (not a whole millisecond).
    """
    if seconds is None or not seconds > 0:
        return None
    ms = round(seconds * 1000)
    # 0.1 s is 100.00000000000001 ms in binary: a whole millisecond within float error.
    if ms < 1 or abs(seconds * 1000 - ms) > 1e-6 * ms:
        return None
    unit, size = next((u, n) for u, n in _TIMEFRAME_UNITS if ms % n == 0)
    return f"{ms // size}{unit}"
