"""Textbook indicator formulas over a window of closes, oldest first.

Hand-rolled on purpose (docs/monitor.md, "Why no indicator library"): the maintained libraries
either pull in pandas/numpy or a C library for five formulas of a few lines each, or keep
incremental state, while our strategies must be pure functions of a window so two replicas
holding the same bars always agree. Each formula is checked against hand-computed values in
tests/unit/monitor/test_indicators.py. Series are aligned to the end of ``values``: the last
element always belongs to the last bar.

The strategies need only the last two values of each series, on every bar of every symbol:
the ``*_last2`` functions compute just those in one pass with no list built, doing the very
same float operations in the same order as the series functions, so their answers are
bit for bit the same (tests/unit/monitor/test_indicators_fast.py). They are not incremental
across bars on purpose: a running state updated bar by bar drifts from the window's own value
by rounding, and on a flat market that noise around zero reads as a crossing
(docs/performance.md, "Monitor throughput").
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


# The last two values of each series (see the module docstring): each needs at least one
# value more than the series function needs for its first value.


def sma_last2(values: Sequence[float], period: int) -> tuple[float, float]:
    """``sma(values, period)[-2:]``; needs ``len(values) > period``."""
    total = math.fsum(values[:period])
    now = total / period
    before = now
    for i in range(period, len(values)):
        total += values[i] - values[i - period]
        before, now = now, total / period
    return before, now


def ema_last2(values: Sequence[float], period: int) -> tuple[float, float]:
    """``ema(values, period)[-2:]``; needs ``len(values) > period``."""
    alpha = 2.0 / (period + 1)
    current = math.fsum(values[:period]) / period
    before = current
    for value in values[period:]:
        before = current
        current += alpha * (value - current)
    return before, current


def rsi_last2(values: Sequence[float], period: int) -> tuple[float, float]:
    """``rsi(values, period)[-2:]``; needs ``len(values) > period + 1``."""
    changes = iter([b - a for a, b in itertools.pairwise(values)])
    seed = list(itertools.islice(changes, period))
    gain = math.fsum([max(c, 0.0) for c in seed]) / period
    loss = math.fsum([max(-c, 0.0) for c in seed]) / period
    keep = period - 1
    before = (gain, loss)
    for change in changes:
        before = (gain, loss)
        # The branch adds what max(change, 0.0) and max(-change, 0.0) would: a NaN change
        # still poisons ``loss`` (so no signal), as in ``rsi``.
        if change > 0.0:
            gain = (gain * keep + change) / period
            loss = (loss * keep + 0.0) / period
        else:
            gain = (gain * keep + 0.0) / period
            loss = (loss * keep - change) / period
    return _rsi_value(*before), _rsi_value(gain, loss)


def macd_last2(
    values: Sequence[float], fast: int, slow: int, signal: int
) -> tuple[tuple[float, float], tuple[float, float]]:
    """The last two values of ``macd(...)``: (line before, now), (signal before, now).

    Needs ``len(values) >= slow + signal``: the signal line's first two values.
    """
    alpha_fast, alpha_slow = 2.0 / (fast + 1), 2.0 / (slow + 1)
    fast_ema = math.fsum(values[:fast]) / fast
    for value in values[fast:slow]:
        fast_ema += alpha_fast * (value - fast_ema)
    slow_ema = math.fsum(values[:slow]) / slow
    line = [fast_ema - slow_ema]
    for value in values[slow : slow + signal - 1]:
        fast_ema += alpha_fast * (value - fast_ema)
        slow_ema += alpha_slow * (value - slow_ema)
        line.append(fast_ema - slow_ema)
    alpha = 2.0 / (signal + 1)
    sig = math.fsum(line) / signal
    now = line[-1]
    before, sig_before = now, sig
    for value in values[slow + signal - 1 :]:
        fast_ema += alpha_fast * (value - fast_ema)
        slow_ema += alpha_slow * (value - slow_ema)
        before, sig_before = now, sig
        now = fast_ema - slow_ema
        sig += alpha * (now - sig)
    return (before, now), (sig_before, sig)


def bollinger_last2(
    values: Sequence[float], period: int, width: float
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """``bollinger`` of the window ending one bar before the last, and of the last one."""
    n = len(values)
    return (
        _bands(values[n - period - 1 : n - 1], period, width),
        _bands(values[n - period :], period, width),
    )


def _bands(window: Sequence[float], period: int, width: float) -> tuple[float, float, float]:
    mean = math.fsum(window) / period
    # A list, not a generator: fsum is exact whatever the order, and a list is faster.
    deviation = math.sqrt(math.fsum([(v - mean) ** 2 for v in window]) / period)
    return mean - width * deviation, mean, mean + width * deviation
