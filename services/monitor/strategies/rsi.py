"""RSI leaving a zone: SELL when it falls out of overbought, BUY when it rises out of oversold.

Leaving the zone, rather than entering it, waits for the move to turn before signalling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from common.schema import SignalType
from monitor.strategies.indicators import rsi

# Wilder smoothing remembers its seed; three periods of history make it negligible.
HISTORY_FACTOR = 3


@dataclass(frozen=True)
class RsiReversal:
    period: int = 14
    overbought: float = 70.0
    oversold: float = 30.0
    name: str = "rsi"

    def __post_init__(self) -> None:
        if self.period < 1:
            raise ValueError(f"needs period >= 1, got {self.period}")
        if not 0 < self.oversold < self.overbought < 100:
            raise ValueError(
                f"needs 0 < oversold < overbought < 100, got {self.oversold}/{self.overbought}"
            )

    @property
    def warmup_bars(self) -> int:
        return self.period * HISTORY_FACTOR + 2

    def evaluate(self, closes: Sequence[float]) -> SignalType | None:
        if len(closes) < self.warmup_bars:
            return None
        before, now = rsi(closes[-self.warmup_bars :], self.period)[-2:]
        if before >= self.overbought > now:
            return "SELL"
        if before <= self.oversold < now:
            return "BUY"
        return None
