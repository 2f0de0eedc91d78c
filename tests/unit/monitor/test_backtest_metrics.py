"""The backtest's figures on hand-built equity curves and trades, and their properties."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.backtest.metrics import exposure, hit_rate, max_drawdown, summarize, total_return
from monitor.backtest.trading import Backtest, Trade

curves = st.lists(
    st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=200,
)


def test_max_drawdown_of_hand_built_curves() -> None:
    assert max_drawdown([]) == 0.0
    assert max_drawdown([1.0, 1.1, 1.2]) == 0.0
    # Peak 1.2, trough 0.9 after it: 25 %; the later, smaller fall (1.5 -> 1.35, 10 %) loses.
    assert max_drawdown([1.0, 1.2, 0.9, 1.5, 1.35]) == pytest.approx(0.25)
    # A trough before the peak is not a drawdown from it.
    assert max_drawdown([1.0, 0.5, 2.0, 1.5]) == pytest.approx(0.5)
    assert max_drawdown([2.0, 1.0, 0.5]) == pytest.approx(0.75)
    assert max_drawdown([1.0, 0.0]) == 1.0  # ruined


def test_hit_rate_total_return_and_exposure_by_hand() -> None:
    assert hit_rate([]) is None
    assert hit_rate([0.02, -0.01, 0.0, 0.03]) == 0.5  # exactly 0 is not a hit
    assert total_return([1.0, 1.3, 1.1]) == pytest.approx(0.1)
    assert total_return([]) == 0.0
    trades = [Trade(1, 2, 10.0, 4, 11.0, 0.1), Trade(-1, 4, 11.0, 5, 10.0, 0.09)]
    assert exposure(trades, 10) == pytest.approx(0.4)  # bars 2-5; bar 4 is counted once
    assert exposure([], 0) == 0.0


def test_summary_counts_closed_trades_and_reports_the_open_one() -> None:
    result = Backtest(
        equity=[1.0, 1.0, 1.1, 1.05, 1.2],
        trades=[Trade(1, 1, 10.0, 2, 11.0, 0.1), Trade(1, 3, 10.5, 4, 12.0, 0.14, open=True)],
    )
    summary = summarize("sma_cross", "X", [10.0, 10.0, 11.0, 10.5, 12.0], 3, result)
    assert (summary.trades, summary.open_trade, summary.hit_rate) == (1, True, 1.0)
    assert summary.total_return == pytest.approx(0.2)
    assert summary.max_drawdown == pytest.approx(1 - 1.05 / 1.1)
    assert summary.buy_and_hold == pytest.approx(0.2)
    assert summary.exposure == pytest.approx(4 / 5)


@given(curves)
def test_drawdown_is_a_share_between_0_and_1(curve: list[float]) -> None:
    assert 0.0 <= max_drawdown(curve) <= 1.0


@given(curves)
def test_drawdown_is_the_worst_fall_over_every_pair_of_points(curve: list[float]) -> None:
    worst = max((1 - b / a for a, b in itertools.combinations(curve, 2)), default=0.0)
    assert max_drawdown(curve) == pytest.approx(max(worst, 0.0), abs=1e-12)


@given(curves)
def test_a_rising_curve_has_no_drawdown_and_scaling_changes_nothing(curve: list[float]) -> None:
    assert max_drawdown(sorted(curve)) == 0.0
    assert max_drawdown([v * 3.0 for v in curve]) == pytest.approx(max_drawdown(curve), abs=1e-12)


@given(st.lists(st.floats(min_value=-1, max_value=10, allow_nan=False), max_size=50))
def test_hit_rate_is_the_share_of_positive_returns(returns: list[float]) -> None:
    rate = hit_rate(returns)
    if not returns:
        assert rate is None
    else:
        assert rate is not None and 0.0 <= rate <= 1.0
        assert rate * len(returns) == pytest.approx(sum(r > 0 for r in returns))
