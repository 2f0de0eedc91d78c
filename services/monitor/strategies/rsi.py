"""RSI leaving a zone: SELL when it falls out of overbought, BUY when it rises out of oversold.

Leaving the zone, rather than entering it, waits for the move to turn before signalling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from common.schema import SignalType
from monitor.strategies.base import Trigger, format_number, format_price
from monitor.strategies.indicators import rsi_last2

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
    def params(self) -> Mapping[str, float]:
        return {"period": self.period, "overbought": self.overbought, "oversold": self.oversold}

    @property
    def warmup_bars(self) -> int:
        return self.period * HISTORY_FACTOR + 2

    def evaluate(self, closes: Sequence[float]) -> Trigger | None:
        if len(closes) < self.warmup_bars:
            return None
        before, now = rsi_last2(closes[-self.warmup_bars :], self.period)
        if before >= self.overbought > now:
            move = f"fell below {format_number(self.overbought)}, out of overbought,"
            side: SignalType = "SELL"
        elif before <= self.oversold < now:
            move = f"rose above {format_number(self.oversold)}, out of oversold,"
            side = "BUY"
        else:
            return None
        return Trigger(
            side,
            {"rsi": now, "rsi_prev": before},
            f"RSI {self.period} {move} to {now:.2f} at {format_price(closes[-1])}",
        )
