"""The strategies' last-two-values indicators against the series functions and talipp.

The ``*_last2`` functions must answer bit for bit what the series functions answer for their
last two elements (same float operations in the same order): then the fast path changes no
signal anywhere, and two replicas, whichever version they run, agree. talipp is the outside
check that both are the textbook formulas.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from talipp.indicators import EMA, MACD, RSI, SMA

from monitor.strategies.indicators import (
    bollinger,
    bollinger_last2,
    ema,
    ema_last2,
    macd,
    macd_last2,
    rsi,
    rsi_last2,
    sma,
    sma_last2,
)
from tests.unit.monitor.test_indicators_vs_talipp import close, defined

price = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)
# Random walks, flats and repeated values: flats are where a rounding difference would
# turn into a spurious crossing.
series = st.one_of(
    st.lists(price, min_size=3, max_size=140),
    st.lists(st.sampled_from([0.0, 1e-12, 1.0, 100.0, 1e12]), min_size=3, max_size=140),
    st.builds(lambda v, n, tail: [v] * n + tail, price, st.integers(3, 100), st.lists(price)),
)
periods = st.integers(min_value=1, max_value=30)


def last2(values: list[Any]) -> tuple[Any, Any]:
    return values[-2], values[-1]


def comparable(values: list[float]) -> bool:
    """Prices talipp's running sums handle to our tolerance (the range the talipp tests use)."""
    return min(values) >= 0.01 and max(values) <= 1e6


@settings(max_examples=300, deadline=None)
@given(series, periods)
def test_sma_last2_is_the_series_tail(values: list[float], period: int) -> None:
    if len(values) > period:
        assert sma_last2(values, period) == last2(sma(values, period))
        if comparable(values):
            close(sma_last2(values, period), last2(defined(SMA(period, values))))


@settings(max_examples=300, deadline=None)
@given(series, periods)
def test_ema_last2_is_the_series_tail(values: list[float], period: int) -> None:
    if len(values) > period:
        assert ema_last2(values, period) == last2(ema(values, period))
        if comparable(values):
            close(ema_last2(values, period), last2(defined(EMA(period, values))))


@settings(max_examples=300, deadline=None)
@given(series, periods)
def test_rsi_last2_is_the_series_tail(values: list[float], period: int) -> None:
    if len(values) > period + 1:
        ours = rsi_last2(values, period)
        assert ours == last2(rsi(values, period))
        if comparable(values) and period >= 2:  # talipp divides by period - 1
            theirs = last2(defined(RSI(period, values)))
            for mine, ref in zip(ours, theirs, strict=True):
                # 50 where talipp says 100: nothing moved (test_indicators_vs_talipp).
                assert (mine, ref) == (50.0, 100.0) or abs(mine - ref) <= 1e-7 * max(1, ref)


@settings(max_examples=300, deadline=None)
@given(series, st.integers(1, 12), st.integers(2, 26), st.integers(1, 9))
def test_macd_last2_is_the_series_tail(
    values: list[float], fast: int, slow: int, signal: int
) -> None:
    if fast >= slow or len(values) < slow + signal:
        return
    line, signal_line = macd(values, fast, slow, signal)
    assert macd_last2(values, fast, slow, signal) == (last2(line), last2(signal_line))
    theirs = [v for v in MACD(fast, slow, signal, values) if v is not None and v.signal]
    if len(theirs) >= 2 and comparable(values):
        (ours_line, ours_signal) = macd_last2(values, fast, slow, signal)
        close(ours_line, [v.macd for v in theirs[-2:]])
        close(ours_signal, [v.signal for v in theirs[-2:]])


@settings(max_examples=300, deadline=None)
@given(series, st.integers(2, 30), st.sampled_from([1.0, 2.0, 2.5]))
def test_bollinger_last2_is_both_windows(values: list[float], period: int, width: float) -> None:
    if len(values) > period:
        before, now = bollinger_last2(values, period, width)
        assert before == bollinger(values[-period - 1 : -1], period, width)
        assert now == bollinger(values[-period:], period, width)
