"""Simple moving-average crossover: BUY when the fast SMA crosses above the slow one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from common.schema import SignalType


def _sma(values: Sequence[float], period: int, end: int) -> float:
    return sum(values[end - period : end]) / period


@dataclass(frozen=True)
class SmaCross:
    fast: int = 5
    slow: int = 20
    name: str = "sma_cross"

    def __post_init__(self) -> None:
        if not 1 <= self.fast < self.slow:
            raise ValueError(f"sma_cross needs 1 <= fast < slow, got fast={self.fast} slow={self.slow}")

    @property
    def warmup_bars(self) -> int:
        return self.slow + 1

    def evaluate(self, closes: Sequence[float]) -> SignalType | None:
        n = len(closes)
        if n < self.warmup_bars:
            return None
        before = _sma(closes, self.fast, n - 1) - _sma(closes, self.slow, n - 1)
        now = _sma(closes, self.fast, n) - _sma(closes, self.slow, n)
        if before <= 0 < now:
            return "BUY"
        if before >= 0 > now:
            return "SELL"
        return None
