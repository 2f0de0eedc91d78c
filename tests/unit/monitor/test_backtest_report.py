"""The report's SVG pieces: round axis ticks, one marker per signal, escaped text."""

from __future__ import annotations

import pytest

from monitor.backtest.svg import nice_ticks, price_chart
from monitor.backtest.trading import Trade
from monitor.sources.base import Bar


@pytest.mark.parametrize(
    ("low", "high", "ticks"),
    [
        (47_350.88, 65_708.62, [50_000, 55_000, 60_000, 65_000]),
        (-22.9, 11.9, [-20, -10, 0, 10]),
        (0.4412, 0.4571, [0.445, 0.45, 0.455]),
        (3.0, 3.0, [3.0]),
    ],
)
def test_axis_ticks_are_round_numbers_inside_the_range(
    low: float, high: float, ticks: list[float]
) -> None:
    assert nice_ticks(low, high) == pytest.approx(ticks)


def test_price_chart_marks_every_signal_and_escapes_the_reason() -> None:
    bars = [Bar("X", 60.0 * i, 10 + i, 11 + i, 9 + i, 10.5 + i) for i in range(1, 6)]
    signals = [
        {"bar_ts": 120.0, "type": "BUY", "reason": "A <b> & C"},
        {"bar_ts": 240.0, "type": "SELL", "reason": "x"},
    ]
    svg = price_chart(bars, signals, [Trade(1, 2, 12, 4, 14, 0.1)], "t")
    assert svg.count('class="marker buy"') == 1 and svg.count('class="marker sell"') == 1
    assert "A &lt;b&gt; &amp; C" in svg and "<b>" not in svg
    assert svg.count('class="held"') == 1
