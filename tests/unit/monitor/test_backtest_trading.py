"""The trading rule on hand-built bars: fills at the next open, fees, long-only and short."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.backtest.trading import AFTER_LAST_BAR, FILLED, NO_CHANGE, simulate
from monitor.sources.base import Bar


def bars(*ohlc: tuple[float, float]) -> list[Bar]:
    """Bars from (open, close) pairs, one a minute."""
    return [Bar("X", 60.0 * (i + 1), o, max(o, c), min(o, c), c) for i, (o, c) in enumerate(ohlc)]


def signal(bar: Bar, side: str) -> dict[str, Any]:
    return {"bar_ts": bar.ts, "type": side, "price": bar.close}


def test_long_only_fills_at_the_next_open_and_marks_at_each_close() -> None:
    b = bars((100, 100), (100, 110), (120, 130), (125, 140), (150, 150))
    result = simulate(b, [signal(b[1], "BUY"), signal(b[3], "SELL")], fee=0.0)
    # Bought at bar 2's open (120), not at the BUY bar's close (110); sold at bar 4's open.
    assert [t.entry_price for t in result.trades] == [120]
    assert [t.exit_price for t in result.trades] == [150]
    assert result.trades[0].ret == pytest.approx(150 / 120 - 1)
    assert result.equity == pytest.approx([1, 1, 130 / 120, 140 / 120, 150 / 120])
    assert result.actions == [FILLED, FILLED]


def test_fee_is_charged_on_entry_and_exit_value() -> None:
    b = bars((100, 100), (100, 100), (100, 100), (110, 110), (110, 110))
    fee = 0.001
    result = simulate(b, [signal(b[0], "BUY"), signal(b[2], "SELL")], fee=fee)
    units = 1 / (100 * (1 + fee))  # the fee and the position spend the account exactly
    after = units * 110 * (1 - fee)
    assert result.trades[0].ret == pytest.approx(after - 1)
    assert result.equity[-1] == pytest.approx(after)
    assert result.equity[1] == pytest.approx(1 - units * 100 * fee)  # marked: entry fee paid


def test_long_only_ignores_a_sell_when_flat_and_a_repeated_buy() -> None:
    b = bars((100, 100), (100, 101), (101, 102), (102, 103), (103, 104))
    sigs = [signal(b[0], "SELL"), signal(b[1], "BUY"), signal(b[2], "BUY")]
    result = simulate(b, sigs, fee=0.0)
    assert result.actions == [NO_CHANGE, FILLED, NO_CHANGE]
    [trade] = result.trades
    assert trade.open and trade.entry_price == 101 and trade.exit_price == 104
    assert trade.ret == pytest.approx(104 / 101 - 1)


def test_a_signal_on_the_last_bar_is_never_filled() -> None:
    b = bars((100, 100), (100, 100))
    result = simulate(b, [signal(b[1], "BUY")], fee=0.0)
    assert result.actions == [AFTER_LAST_BAR]
    assert result.trades == [] and result.equity == [1.0, 1.0]


def test_long_short_reverses_on_each_signal() -> None:
    b = bars((100, 100), (100, 100), (100, 90), (80, 80), (80, 100), (100, 100))
    sigs = [signal(b[0], "BUY"), signal(b[1], "SELL"), signal(b[3], "BUY")]
    result = simulate(b, sigs, fee=0.0, short=True)
    long_, short_, again = result.trades
    assert (long_.side, long_.entry_price, long_.exit_price, long_.ret) == (1, 100, 100, 0.0)
    # Short at 100, covered at 80: +20 % of the account.
    assert (short_.side, short_.exit_price) == (-1, 80)
    assert short_.ret == pytest.approx(0.2)
    assert again.open and again.side == 1 and again.entry_price == 80
    assert result.equity[2] == pytest.approx(1.1)  # short marked at 90
    assert result.equity[-1] == pytest.approx(1.2 * 100 / 80)


def test_a_short_that_loses_everything_stops_the_backtest() -> None:
    b = bars((100, 100), (100, 150), (150, 210), (210, 300), (300, 100))
    result = simulate(b, [signal(b[0], "SELL")], fee=0.0, short=True)
    [trade] = result.trades
    assert trade.ret == -1.0 and not trade.open and trade.exit_i == 2
    assert result.equity == pytest.approx([1.0, 0.5, 0.0, 0.0, 0.0])
