"""Our backtest against backtesting.py (kernc/backtesting.py 0.6), a maintained library.

The same bars and the same rule, expressed as a backtesting.py ``Strategy``: driven by our
signals (every strategy, long-only and long-short, with and without fees), and for
``sma_cross`` also by backtesting.py's own SMA and ``crossover``, which checks our signals
too. Data: the shipped sample (generated) and two real series that ship with backtesting.py
(GOOG daily 2004-2013, EUR/USD hourly 2017-2018).

Agreement: the same number of trades and the same winners; total return and maximum
drawdown within ``TOLERANCE`` (absolute, as fractions: 1e-6 = 0.0001 percentage points).
What is left is backtesting.py's sizing: it buys whole units (``FractionalBacktest``: whole
1e-8ths of a unit) with 1 - 2**-52 of the equity, we buy the exact fraction. Its
"Exposure Time" counts closed trades only (a position still open at the end is left out
unless ``finalize_trades=True``, which closes it at the last bar's *open*); ours includes
the open one, so the comparison uses our closed trades. Both charge the commission on
entry and exit, fill market orders at the next bar's open, and hold one position at a time.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from backtesting import Strategy
from backtesting.lib import FractionalBacktest, crossover
from backtesting.test import EURUSD, GOOG, SMA

from monitor.backtest.data import load_file
from monitor.backtest.metrics import exposure, summarize
from monitor.backtest.signals import run_strategies
from monitor.backtest.trading import Backtest, simulate, targets
from monitor.sources.base import Bar
from monitor.strategies import AVAILABLE, build_strategy_book

TOLERANCE = 1e-6
SAMPLE = Path(__file__).parents[3] / "services/monitor/backtest/sample/BTCUSDT-1h-generated.csv"
EURUSD_BARS = 1500  # of 5000: enough trades, a quicker test


def bars_of(frame: pd.DataFrame, symbol: str) -> list[Bar]:
    stamps = frame.index.astype("int64") // 10**9
    return [
        Bar(symbol, float(ts), row.Open, row.High, row.Low, row.Close, float(row.Volume))
        for ts, row in zip(stamps, frame.itertuples(), strict=True)
    ]


def frame_of(bars: Sequence[Bar]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Open": [b.open for b in bars],
            "High": [b.high for b in bars],
            "Low": [b.low for b in bars],
            "Close": [b.close for b in bars],
            "Volume": [b.volume for b in bars],
        },
        index=pd.to_datetime([b.ts for b in bars], unit="s"),
    )


@cache
def dataset(name: str) -> list[Bar]:
    if name == "sample":
        return load_file(SAMPLE, lambda *_: None)["BTCUSDT"]
    if name == "GOOG":
        return bars_of(GOOG, "GOOG")
    return bars_of(EURUSD.iloc[:EURUSD_BARS], "EURUSD")


@cache
def signals(name: str) -> dict[str, list[dict[str, Any]]]:
    bars = dataset(name)
    symbol = bars[0].symbol
    book = build_strategy_book([symbol], list(AVAILABLE), {}, {})
    found = run_strategies({symbol: bars}, book).signals
    return {strategy: found[(symbol, strategy)] for strategy in AVAILABLE}


class FollowSignals(Strategy):  # type: ignore[misc]
    """The rule, in backtesting.py: act on bar i's signal in next(), filled at i+1's open."""

    orders: dict[int, int] = {}

    def init(self) -> None:
        pass

    def next(self) -> None:
        target = self.orders.get(len(self.data) - 1)
        held = 1 if self.position.is_long else -1 if self.position.is_short else 0
        if target is None or target == held:
            return
        if target == 1:
            self.buy()
        elif target == -1:
            self.sell()
        else:
            self.position.close()


class SmaCrossLongOnly(Strategy):  # type: ignore[misc]
    """sma_cross with backtesting.py's own SMA and crossover: long on up, flat on down."""

    def init(self) -> None:
        self.fast = self.I(SMA, self.data.Close, 5)
        self.slow = self.I(SMA, self.data.Close, 20)

    def next(self) -> None:
        if crossover(self.fast, self.slow) and not self.position:
            self.buy()
        elif crossover(self.slow, self.fast) and self.position:
            self.position.close()


def run_library(bars: Sequence[Bar], strategy: type[Strategy], fee: float) -> pd.Series:
    test = FractionalBacktest(
        frame_of(bars), strategy, cash=1_000_000, commission=fee, exclusive_orders=True
    )
    with warnings.catch_warnings():
        # "Some trades remain open at the end": expected, see the module docstring.
        warnings.simplefilter("ignore", UserWarning)
        # backtesting.py 0.6.6 calls pandas' deprecated DatetimeIndex.dayofweek.
        warnings.filterwarnings("ignore", message=".*dayofweek is deprecated")
        return test.run()


def assert_agree(ours: Backtest, bars: Sequence[Bar], theirs: pd.Series, fee: float) -> None:
    summary = summarize("s", "x", [b.close for b in bars], 0, ours)
    closed = [t for t in ours.trades if not t.open]
    assert summary.trades == theirs["# Trades"]
    assert summary.total_return == pytest.approx(theirs["Return [%]"] / 100, abs=TOLERANCE)
    assert summary.max_drawdown == pytest.approx(-theirs["Max. Drawdown [%]"] / 100, abs=TOLERANCE)
    assert exposure(closed, len(bars)) == pytest.approx(theirs["Exposure Time [%]"] / 100)
    if not closed:
        assert math.isnan(theirs["Win Rate [%]"])
        return
    assert summary.hit_rate == pytest.approx(theirs["Win Rate [%]"] / 100)
    # Per trade: its PnL includes both commissions (the sign is what a hit means); its
    # ReturnPct leaves them out, so it equals ours only without fees; and for a short that
    # ruined the account it is the price's move (say -101 %), ours the account's (-100 %).
    assert [t.ret > 0 for t in closed] == [p > 0 for p in theirs["_trades"]["PnL"]]
    if fee == 0:
        pairs = zip(closed, theirs["_trades"]["ReturnPct"], strict=True)
        kept = [(t.ret, r) for t, r in pairs if t.ret > -1.0]
        assert [a for a, _ in kept] == pytest.approx([b for _, b in kept], abs=TOLERANCE)


@pytest.mark.parametrize("name", ["sample", "GOOG", "EURUSD"])
@pytest.mark.parametrize("short", [False, True], ids=["long-only", "long-short"])
@pytest.mark.parametrize("fee", [0.0, 0.001], ids=["no-fee", "10bps"])
def test_every_strategy_agrees_with_backtesting_py(name: str, short: bool, fee: float) -> None:
    bars = dataset(name)
    index = {round(b.ts * 1000): i for i, b in enumerate(bars)}
    traded = 0
    for strategy, found in signals(name).items():
        ours = simulate(bars, found, fee=fee, short=short)
        orders = {index[ts]: target for ts, target in targets(found, short)}
        follow = type("Follow", (FollowSignals,), {"orders": orders})
        theirs = run_library(bars, follow, fee)
        try:
            assert_agree(ours, bars, theirs, fee)
        except AssertionError as exc:
            raise AssertionError(f"{name} {strategy}: {exc}") from exc
        traded += len(ours.trades)
    assert traded > 20  # the comparison is about trades, not empty books


@pytest.mark.parametrize("name", ["sample", "GOOG"])
def test_sma_cross_agrees_with_backtesting_pys_own_sma_and_crossover(name: str) -> None:
    bars = dataset(name)
    ours = simulate(bars, signals(name)["sma_cross"], fee=0.001)
    theirs = run_library(bars, SmaCrossLongOnly, 0.001)
    assert len(ours.trades) > 10
    assert_agree(ours, bars, theirs, 0.001)
