"""MACD crossover: BUY when the MACD line crosses above its signal line, SELL below."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from common.schema import SignalType
from monitor.strategies.indicators import crossing, macd

HISTORY_FACTOR = 3


@dataclass(frozen=True)
class MacdCross:
    fast: int = 12
    slow: int = 26
    signal: int = 9
    name: str = "macd_cross"

    def __post_init__(self) -> None:
        if not 1 <= self.fast < self.slow or self.signal < 1:
            raise ValueError(
                f"needs 1 <= fast < slow and signal >= 1, got {self.fast}/{self.slow}/{self.signal}"
            )

    @property
    def warmup_bars(self) -> int:
        return (self.slow + self.signal) * HISTORY_FACTOR + 1

    def evaluate(self, closes: Sequence[float]) -> SignalType | None:
        if len(closes) < self.warmup_bars:
            return None
        line, signal = macd(closes[-self.warmup_bars :], self.fast, self.slow, self.signal)
        return crossing(line[-2] - signal[-2], line[-1] - signal[-1])
