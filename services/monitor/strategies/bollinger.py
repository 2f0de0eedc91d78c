"""Bollinger breakout: BUY when the close breaks above the upper band, SELL below the lower."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from common.schema import SignalType
from monitor.strategies.base import Trigger, format_number, format_price
from monitor.strategies.indicators import bollinger_last2


@dataclass(frozen=True)
class BollingerBreakout:
    period: int = 20
    width: float = 2.0
    name: str = "bollinger"

    def __post_init__(self) -> None:
        if self.period < 2 or self.width <= 0:
            raise ValueError(f"needs period >= 2 and width > 0, got {self.period}/{self.width}")

    @property
    def params(self) -> Mapping[str, float]:
        return {"period": self.period, "width": self.width}

    @property
    def warmup_bars(self) -> int:
        return self.period + 1

    def evaluate(self, closes: Sequence[float]) -> Trigger | None:
        if len(closes) < self.warmup_bars:
            return None
        # Each bar is judged against the bands of its own trailing window.
        (lower_before, _, upper_before), (lower, middle, upper) = bollinger_last2(
            closes, self.period, self.width
        )
        before, now = closes[-2], closes[-1]
        side: SignalType
        if before <= upper_before and now > upper:
            side, band, edge = "BUY", "above the upper", upper
        elif before >= lower_before and now < lower:
            side, band, edge = "SELL", "below the lower", lower
        else:
            return None
        return Trigger(
            side,
            {"bb_upper": upper, "bb_middle": middle, "bb_lower": lower},
            f"Close broke {band} Bollinger band ({self.period} bars,"
            f" {format_number(self.width)} sd: {format_price(edge)}) at {format_price(now)}",
        )
