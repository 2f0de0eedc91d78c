"""MACD crossover: BUY when the MACD line crosses above its signal line, SELL below."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from monitor.strategies.base import Trigger, format_price
from monitor.strategies.indicators import crossing, macd_last2

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
    def params(self) -> Mapping[str, float]:
        return {"fast": self.fast, "slow": self.slow, "signal": self.signal}

    @property
    def warmup_bars(self) -> int:
        return (self.slow + self.signal) * HISTORY_FACTOR + 1

    def evaluate(self, closes: Sequence[float]) -> Trigger | None:
        if len(closes) < self.warmup_bars:
            return None
        line, signal = macd_last2(closes[-self.warmup_bars :], self.fast, self.slow, self.signal)
        side = crossing(line[0] - signal[0], line[1] - signal[1])
        if side is None:
            return None
        direction = "above" if side == "BUY" else "below"
        return Trigger(
            side,
            {"macd": line[-1], "macd_signal": signal[-1], "macd_histogram": line[-1] - signal[-1]},
            f"MACD {self.fast}/{self.slow} crossed {direction} its {self.signal}-bar signal line"
            f" at {format_price(closes[-1])}",
        )
