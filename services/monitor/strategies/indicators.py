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
import operator
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
    n = len(values)
    total = math.fsum(values[:period])
    # The last step apart, so the loop keeps no "before": a third less work per value.
    for new, old in zip(values[period : n - 1], values[: n - 1 - period], strict=True):
        total += new - old
    before = total / period
    total += values[n - 1] - values[n - 1 - period]
    return before, total / period


def ema_last2(values: Sequence[float], period: int) -> tuple[float, float]:
    """``ema(values, period)[-2:]``; needs ``len(values) > period``."""
    alpha = 2.0 / (period + 1)
    current = math.fsum(values[:period]) / period
    for value in values[period:-1]:
        current += alpha * (value - current)
    before = current
    current += alpha * (values[-1] - current)
    return before, current


def rsi_last2(values: Sequence[float], period: int) -> tuple[float, float]:
    """``rsi(values, period)[-2:]``; needs ``len(values) > period + 1``."""
    # map() over builtins rather than a comprehension: no Python step per value.
    changes = list(map(operator.sub, values[1:], values[:-1]))
    seed = changes[:period]
    gain = math.fsum(map(max, seed, itertools.repeat(0.0))) / period
    loss = math.fsum(map(max, map(operator.neg, seed), itertools.repeat(0.0))) / period
    keep = period - 1
    # The loop repeats ``_wilder`` inline: a call per change would cost more than the step.
    for change in changes[period:-1]:
        if change > 0.0:
            gain = (gain * keep + change) / period
            loss = (loss * keep + 0.0) / period
        else:
            gain = (gain * keep + 0.0) / period
            loss = (loss * keep - change) / period
    before = _rsi_value(gain, loss)
    return before, _rsi_value(*_wilder(gain, loss, changes[-1], period))


def _wilder(gain: float, loss: float, change: float, period: int) -> tuple[float, float]:
    """One step of Wilder's smoothing, adding what max(change, 0.0) and max(-change, 0.0)
    would (a NaN change still poisons ``loss``, so no signal, as in ``rsi``)."""
    keep = period - 1
    if change > 0.0:
        return (gain * keep + change) / period, (loss * keep + 0.0) / period
    return (gain * keep + 0.0) / period, (loss * keep - change) / period


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
    for value in values[slow + signal - 1 : -1]:
        fast_ema += alpha_fast * (value - fast_ema)
        slow_ema += alpha_slow * (value - slow_ema)
        sig += alpha * (fast_ema - slow_ema - sig)  # the line's value, as ``ema`` gets it
    before, sig_before = fast_ema - slow_ema, sig
    value = values[-1]
    fast_ema += alpha_fast * (value - fast_ema)
    slow_ema += alpha_slow * (value - slow_ema)
    now = fast_ema - slow_ema
    return (before, now), (sig_before, sig + alpha * (now - sig))


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
