"""Moving-average crossover: BUY when the fast average crosses above the slow one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from monitor.strategies.base import Trigger, format_price
from monitor.strategies.indicators import crossing, ema_last2, sma_last2

# An EMA remembers its seed; three slow periods of history make the seed's weight negligible.
EMA_HISTORY_FACTOR = 3


@dataclass(frozen=True)
class MaCross:
    fast: int = 5
    slow: int = 20
    kind: Literal["sma", "ema"] = "sma"

    def __post_init__(self) -> None:
        if not 1 <= self.fast < self.slow:
            raise ValueError(f"needs 1 <= fast < slow, got fast={self.fast} slow={self.slow}")

    @property
    def name(self) -> str:
        return f"{self.kind}_cross"

    @property
    def params(self) -> Mapping[str, float]:
        return {"fast": self.fast, "slow": self.slow}

    @property
    def warmup_bars(self) -> int:
        history = self.slow * EMA_HISTORY_FACTOR if self.kind == "ema" else self.slow
        return history + 1

    def evaluate(self, closes: Sequence[float]) -> Trigger | None:
        if len(closes) < self.warmup_bars:
            return None
        window = closes[-self.warmup_bars :]
        average = ema_last2 if self.kind == "ema" else sma_last2
        fast, slow = average(window, self.fast), average(window, self.slow)
        side = crossing(fast[0] - slow[0], fast[1] - slow[1])
        if side is None:
            return None
        label = self.kind.upper()
        direction = "above" if side == "BUY" else "below"
        return Trigger(
            side,
            {f"{self.kind}_fast": fast[-1], f"{self.kind}_slow": slow[-1]},
            f"{label} {self.fast} crossed {direction} {label} {self.slow}"
            f" at {format_price(closes[-1])}",
        )


def SmaCross(fast: int = 5, slow: int = 20) -> MaCross:  # noqa: N802 - reads as a class
    return MaCross(fast, slow, "sma")


def EmaCross(fast: int = 12, slow: int = 26) -> MaCross:  # noqa: N802 - reads as a class
    return MaCross(fast, slow, "ema")
