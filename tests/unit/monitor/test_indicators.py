"""Indicator formulas against values worked out by hand."""

from __future__ import annotations

import pytest

from monitor.strategies.indicators import bollinger, crossing, ema, macd, rsi, sma


def test_sma_averages_each_trailing_window() -> None:
    assert sma([1, 2, 3, 4, 5], 3) == [2.0, 3.0, 4.0]
    assert sma([1, 2], 3) == []


def test_ema_is_seeded_with_the_sma_then_smoothed() -> None:
    # period 3: alpha = 0.5; seed = mean(1, 2, 3) = 2; then 2 + 0.5 * (4 - 2) = 3; 3 + 0.5 * 7 = 6.5
    assert ema([1, 2, 3, 4, 10], 3) == [2.0, 3.0, 6.5]


def test_rsi_follows_wilder_smoothing() -> None:
    # period 2, changes +1 +1 -4 +1: seed gain 1 loss 0 -> 100;
    # then gain (1*1 + 0)/2 = 0.5, loss (0 + 4)/2 = 2 -> 100 - 100/1.25 = 20;
    # then gain (0.5 + 1)/2 = 0.75, loss 2/2 = 1 -> 100 - 100/1.75 = 42.857...
    values = rsi([1, 2, 3, -1 + 0.0, 0], 2)
    assert values[0] == 100.0
    assert values[1] == pytest.approx(20.0)
    assert values[2] == pytest.approx(100 - 100 / 1.75)


def test_rsi_of_a_flat_series_is_neutral() -> None:
    assert rsi([5.0] * 10, 3) == [50.0] * 7


def test_macd_line_and_signal_are_aligned_to_the_last_bar() -> None:
    values = [float(v) for v in range(1, 40)]
    line, signal = macd(values, 3, 6, 4)
    assert len(line) == len(signal) > 0
    # A straight line: both EMAs lag by (period - 1) / 2 bars, so MACD = (6 - 1)/2 - (3 - 1)/2.
    assert line[-1] == pytest.approx(1.5)
    assert signal[-1] == pytest.approx(1.5)


def test_bollinger_uses_the_population_deviation() -> None:
    # mean 5, deviations -3 -1 1 3 -> variance (9 + 1 + 1 + 9) / 4 = 5
    lower, middle, upper = bollinger([2, 4, 6, 8], 4, 2.0)
    assert middle == 5.0
    assert upper == pytest.approx(5 + 2 * 5**0.5)
    assert lower == pytest.approx(5 - 2 * 5**0.5)


@pytest.mark.parametrize(
    ("before", "now", "expected"),
    [
        (-1, 1, "BUY"),
        (0, 1, "BUY"),
        (1, -1, "SELL"),
        (0, -1, "SELL"),
        (1, 2, None),
        (-1, -2, None),
        (0, 0, None),
        (1, 0, None),
    ],
)
def test_crossing_fires_only_on_a_sign_change(before: float, now: float, expected: str) -> None:
    assert crossing(before, now) == expected
