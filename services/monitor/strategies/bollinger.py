"""Bollinger breakout: BUY when the close breaks above the upper band, SELL below the lower."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from common.schema import SignalType
from monitor.strategies.indicators import bollinger


@dataclass(frozen=True)
class BollingerBreakout:
    period: int = 20
    width: float = 2.0
    name: str = "bollinger"

    def __post_init__(self) -> None:
        if self.period < 2 or self.width <= 0:
            raise ValueError(f"needs period >= 2 and width > 0, got {self.period}/{self.width}")

    @property
    def warmup_bars(self) -> int:
        return self.period + 1

    def evaluate(self, closes: Sequence[float]) -> SignalType | None:
        if len(closes) < self.warmup_bars:
            return None
        # Each bar is judged against the bands of its own trailing window.
        lower_before, _, upper_before = bollinger(
            closes[-self.period - 1 : -1], self.period, self.width
        )
        lower, _, upper = bollinger(closes[-self.period :], self.period, self.width)
        before, now = closes[-2], closes[-1]
        if before <= upper_before and now > upper:
            return "BUY"
        if before >= lower_before and now < lower:
            return "SELL"
        return None
