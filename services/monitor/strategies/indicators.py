"""Textbook indicator formulas over a window of closes, oldest first.

Hand-rolled on purpose (docs/monitor.md, "Why no indicator library"): the maintained libraries
either pull in pandas/numpy or a C library for five formulas of a few lines each, or keep
incremental state, while our strategies must be pure functions of a window so two replicas
holding the same bars always agree. Each formula is checked against hand-computed values in
tests/unit/monitor/test_indicators.py. Series are aligned to the end of ``values``: the last
element always belongs to the last bar.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from common.schema import SignalType


def sma(values: Sequence[float], period: int) -> list[float]:
    """Simple moving average; element i averages values[i : i + period]."""
    if len(values) < period:
        return []
    total = math.fsum(values[:period])
    out = [total / period]
    for i in range(period, len(values)):
        total += values[i] - values[i - period]
        out.append(total / period)
    return out


def ema(values: Sequence[float], period: int) -> list[float]:
    """Exponential moving average, alpha = 2 / (period + 1), seeded with the first SMA."""
    if len(values) < period:
        return []
    alpha = 2.0 / (period + 1)
    current = math.fsum(values[:period]) / period
    out = [current]
    for value in values[period:]:
        current += alpha * (value - current)
        out.append(current)
    return out


def rsi(values: Sequence[float], period: int) -> list[float]:
    """Wilder's RSI (0..100): seeded with the mean of the first ``period`` changes."""
    if len(values) <= period:
        return []
    changes = [b - a for a, b in itertools.pairwise(values)]
    gain = math.fsum(max(c, 0.0) for c in changes[:period]) / period
    loss = math.fsum(max(-c, 0.0) for c in changes[:period]) / period
    out = [_rsi_value(gain, loss)]
    for change in changes[period:]:
        gain = (gain * (period - 1) + max(change, 0.0)) / period
        loss = (loss * (period - 1) + max(-change, 0.0)) / period
        out.append(_rsi_value(gain, loss))
    return out


def _rsi_value(gain: float, loss: float) -> float:
    if loss == 0.0:
        # No losses: fully overbought, unless nothing moved at all (neutral).
        return 50.0 if gain == 0.0 else 100.0
    return 100.0 - 100.0 / (1.0 + gain / loss)


def macd(
    values: Sequence[float], fast: int, slow: int, signal: int
) -> tuple[list[float], list[float]]:
    """MACD line (EMA fast - EMA slow) and its signal line, both aligned to the end."""
    slow_ema = ema(values, slow)
    fast_ema = ema(values, fast)[-len(slow_ema) :] if slow_ema else []
    line = [f - s for f, s in zip(fast_ema, slow_ema, strict=True)]
    signal_line = ema(line, signal)
    return line[-len(signal_line) :] if signal_line else [], signal_line


def bollinger(values: Sequence[float], period: int, width: float) -> tuple[float, float, float]:
    """(lower, middle, upper) band of the last ``period`` values; population deviation."""
    window = values[-period:]
    mean = math.fsum(window) / period
    deviation = math.sqrt(math.fsum((v - mean) ** 2 for v in window) / period)
    return mean - width * deviation, mean, mean + width * deviation


def crossing(before: float, now: float) -> SignalType | None:
    """BUY when a difference turns positive, SELL when it turns negative, else nothing.

    Only the bar where the sign changes qualifies, so a held condition never repeats.
    """
    if before <= 0.0 < now:
        return "BUY"
    if before >= 0.0 > now:
        return "SELL"
    return None
