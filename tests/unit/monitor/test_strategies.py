"""Strategies on series built so their signals land on known bars."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.strategies import AVAILABLE, Strategy, create_strategy
from monitor.strategies.bollinger import BollingerBreakout
from monitor.strategies.macd import MacdCross
from monitor.strategies.rsi import RsiReversal
from monitor.strategies.sma_cross import MaCross


def signals(strategy: Strategy, closes: Sequence[float]) -> dict[int, str]:
    """Bar index -> signal, evaluating bar by bar as the worker does."""
    out: dict[int, str] = {}
    for i in range(1, len(closes) + 1):
        result = strategy.evaluate(closes[:i])
        if result is not None:
            out[i - 1] = result.type
    return out


def test_sma_cross_buys_on_bar_37_and_sells_on_bar_60_only() -> None:
    # Flat at 100 for bars 0..36: both SMAs equal, no signal. Bar 37 jumps to 110:
    # SMA5 = 102 > SMA20 = 100.5 while the bar before had them equal -> BUY on bar 37.
    # Held at 110 the averages converge (difference >= 0) -> nothing repeats.
    # Bar 60 drops to 90: SMA5 = 106 < SMA20 = 109 -> SELL on bar 60.
    closes = [100.0] * 37 + [110.0] * 23 + [90.0] * 10
    assert signals(MaCross(5, 20), closes) == {37: "BUY", 60: "SELL"}


def test_ema_cross_fires_once_per_turn() -> None:
    closes = [100.0] * 80 + [105.0] * 30 + [95.0] * 30
    assert signals(MaCross(3, 8, "ema"), closes) == {80: "BUY", 110: "SELL"}


def test_rsi_sells_when_leaving_overbought_and_buys_when_leaving_oversold() -> None:
    # period 2 (warm-up 8 bars). Bars 0..7 rise by 1: RSI 100 (overbought).
    # Bar 8 falls by 6: gain (1 + 0)/2 = 0.5, loss 6/2 = 3 -> RSI 14.3: leaves overbought -> SELL.
    # Bar 9 rises by 3: gain 1.75, loss 1.5 -> RSI 53.8: leaves oversold -> BUY.
    closes = [10.0 + i for i in range(8)] + [11.0, 14.0]
    assert signals(RsiReversal(period=2), closes) == {8: "SELL", 9: "BUY"}


def test_macd_cross_signals_each_turn_once() -> None:
    closes = [100.0] * 40 + [100.0 + i for i in range(1, 20)] + [118.0 - 2 * i for i in range(20)]
    found = signals(MacdCross(3, 6, 2), closes)
    assert list(found.values()) == ["BUY", "SELL"]
    buy_bar, sell_bar = found
    assert buy_bar == 40  # first rising bar lifts the fast EMA above the slow one
    assert 59 <= sell_bar <= 61


def test_bollinger_breaks_out_above_and_below() -> None:
    base = [100.0, 101.0] * 15
    closes = [*base, 110.0, 110.0, *base, 90.0]
    found = signals(BollingerBreakout(period=10, width=2.0), closes)
    assert found == {30: "BUY", len(closes) - 1: "SELL"}


@pytest.mark.parametrize("name", AVAILABLE)
def test_nothing_is_said_before_warm_up(name: str) -> None:
    strategy = create_strategy(name, {})
    rising = [float(i) for i in range(1, strategy.warmup_bars)]
    assert signals(strategy, rising) == {}


prices = st.floats(min_value=0.0, max_value=1e12, allow_nan=False, allow_infinity=False)
odd_series = st.one_of(
    st.lists(prices, max_size=130),
    st.lists(st.sampled_from([0.0, 1e-12, 1.0, 1e12]), max_size=130),
    st.builds(lambda v, n: [v] * n, prices, st.integers(0, 130)),
)


@settings(max_examples=80, deadline=None)
@given(name=st.sampled_from(AVAILABLE), closes=odd_series)
def test_strategies_never_raise_on_odd_but_valid_input(name: str, closes: list[float]) -> None:
    assert signals(create_strategy(name, {}), closes).keys() <= set(range(len(closes)))


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(AVAILABLE),
    closes=st.lists(prices, min_size=110, max_size=130),
    extra=st.lists(prices, max_size=30),
)
def test_answer_depends_only_on_the_warm_up_window(
    name: str, closes: list[float], extra: list[float]
) -> None:
    # Two replicas holding different amounts of older history must agree on every bar.
    strategy = create_strategy(name, {})
    assert len(closes) >= strategy.warmup_bars
    assert strategy.evaluate(closes) == strategy.evaluate(extra + closes)
