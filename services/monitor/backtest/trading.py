"""The trading rule: what a trader following the signals would have done, bar by bar.

- Long-only (the default): a BUY goes long with the whole account, a SELL goes flat. With
  ``short=True`` a SELL goes short instead (stop and reverse), as the scorecard reads a SELL.
  A signal that asks for the position already held (a second BUY in a row) changes nothing.
- A signal is known when its bar has closed, so it is filled at the *next* bar's open; one on
  the file's last bar is never filled.
- Fees: ``fee`` (0.001 = 10 bps) of each fill's value, on entry and on exit. Buying with
  equity E gets E / (price * (1 + fee)) units, so fee and position spend the account exactly.
- While open, a position is marked to market at each close: equity = cash + units * (close -
  entry) for a long, minus that for a short. A position still open after the last bar is
  marked at the last close (no exit fee: it was not sold) and reported as open.
- A short can lose more than the account (the price more than doubles): when equity at a
  close reaches 0 the position is closed there, the trade counts as -100 % and the backtest
  stops with nothing left, as backtesting.py stops.

These are backtesting.py's accounting rules (commission on entry and exit, exclusive orders,
market orders at the next open), so its figures and ours agree (tests/unit/monitor).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.sources.base import Bar

# What happened to each signal, for the report's signals table.
FILLED = "filled"
NO_CHANGE = "no change"
AFTER_LAST_BAR = "after last bar"


@dataclass(frozen=True, slots=True)
class Trade:
    side: int  # +1 long, -1 short
    entry_i: int
    entry_price: float
    exit_i: int  # the last bar's index while still open
    exit_price: float  # the last close while still open
    ret: float  # equity after the exit over equity before the entry, minus 1 (fees included)
    open: bool = False


@dataclass(slots=True)
class _Account:
    fee: float
    cash: float = 1.0
    side: int = 0
    units: float = 0.0
    entry_i: int = 0
    entry_price: float = 0.0
    before_entry: float = 1.0

    def equity(self, price: float) -> float:
        return self.cash + self.side * self.units * (price - self.entry_price)

    def enter(self, side: int, i: int, price: float) -> None:
        self.before_entry = self.cash
        self.units = self.cash / (price * (1.0 + self.fee))
        self.cash -= self.units * price * self.fee
        self.side, self.entry_i, self.entry_price = side, i, price

    def exit(self, i: int, price: float) -> Trade:
        self.cash = self.equity(price) - self.units * price * self.fee
        trade = Trade(
            self.side, self.entry_i, self.entry_price, i, price, self.cash / self.before_entry - 1
        )
        self.side, self.units = 0, 0.0
        return trade


@dataclass
class Backtest:
    """One strategy on one symbol: equity per bar (starting from 1.0), trades, signal fates."""

    equity: list[float] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)  # one per signal, in order


def targets(signals: Sequence[dict[str, Any]], short: bool) -> list[tuple[int, int]]:
    """(bar time in ms, wanted position) per signal: +1 on BUY, 0 or -1 on SELL."""
    sell = -1 if short else 0
    return [(round(s["bar_ts"] * 1000), 1 if s["type"] == "BUY" else sell) for s in signals]


def simulate(
    bars: Sequence[Bar], signals: Sequence[dict[str, Any]], *, fee: float, short: bool = False
) -> Backtest:
    index = {round(bar.ts * 1000): i for i, bar in enumerate(bars)}
    wanted = targets(signals, short)
    # A signal fires on its bar's close; its order waits for the next bar's open.
    orders = {index[ts] + 1: target for ts, target in wanted}
    account = _Account(fee)
    result = Backtest()
    for i, bar in enumerate(bars):
        target = orders.get(i)
        if target is not None and target != account.side:
            if account.side:
                result.trades.append(account.exit(i, bar.open))
            if target:
                account.enter(target, i, bar.open)
        equity = account.equity(bar.close)
        if equity <= 0.0:
            _ruin(account, result, i, bar.close, len(bars))
            break
        result.equity.append(equity)
    if account.side and bars:
        last = len(bars) - 1
        mark = account.equity(bars[-1].close)
        result.trades.append(
            Trade(
                account.side,
                account.entry_i,
                account.entry_price,
                last,
                bars[-1].close,
                mark / account.before_entry - 1,
                open=True,
            )
        )
    result.actions = _fates(wanted, index, len(bars), short)
    return result


def _ruin(account: _Account, result: Backtest, i: int, close: float, n: int) -> None:
    """A short that lost the whole account: closed at this close, nothing left to trade."""
    trade = account.exit(i, close)
    result.trades.append(Trade(trade.side, trade.entry_i, trade.entry_price, i, close, -1.0))
    account.cash = 0.0
    result.equity.extend([0.0] * (n - i))


def _fates(wanted: list[tuple[int, int]], index: dict[int, int], n: int, short: bool) -> list[str]:
    held = 0
    fates = []
    for ts, target in wanted:
        if index[ts] + 1 >= n:
            fates.append(AFTER_LAST_BAR)
        elif target == held:
            fates.append(NO_CHANGE)
        else:
            fates.append(FILLED)
            held = target
    return fates
