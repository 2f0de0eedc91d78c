"""The figures of one backtest, as pure functions of its equity curve and trades."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from monitor.backtest.trading import Backtest, Trade


def max_drawdown(equity: Sequence[float]) -> float:
    """The largest fall from a running peak, as a share of that peak: 0.25 = 25 %.

    In [0, 1] for a positive curve; 0 for a curve that never falls (or is empty).
    """
    peak = float("-inf")
    worst = 0.0
    for value in equity:
        peak = max(peak, value)
        if peak > 0:
            worst = max(worst, 1.0 - value / peak)
    return worst


def hit_rate(returns: Sequence[float]) -> float | None:
    """Share of trades that made money (a return of exactly 0 is not a hit); None: no trade."""
    if not returns:
        return None
    return sum(1 for r in returns if r > 0) / len(returns)


def total_return(equity: Sequence[float], initial: float = 1.0) -> float:
    return equity[-1] / initial - 1.0 if equity else 0.0


def exposure(trades: Sequence[Trade], bars: int) -> float:
    """Share of bars with a position: each trade's entry bar through its exit bar.

    The exit bar counts although the position is closed at its open, as backtesting.py's
    "Exposure Time" counts it.
    """
    if bars <= 0:
        return 0.0
    held = [False] * bars
    for trade in trades:
        for i in range(trade.entry_i, trade.exit_i + 1):
            held[i] = True
    return sum(held) / bars


@dataclass(frozen=True)
class Summary:
    strategy: str
    symbol: str
    bars: int
    signals: int
    trades: int  # closed trades; an open position at the end is in ``open_trade``
    open_trade: bool
    hit_rate: float | None  # over closed trades
    avg_trade_return: float | None
    total_return: float  # the open position marked at the last close included
    max_drawdown: float
    exposure: float
    buy_and_hold: float  # first close to last close, for scale

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(
    strategy: str, symbol: str, closes: Sequence[float], signals: int, result: Backtest
) -> Summary:
    closed = [t.ret for t in result.trades if not t.open]
    return Summary(
        strategy=strategy,
        symbol=symbol,
        bars=len(closes),
        signals=signals,
        trades=len(closed),
        open_trade=any(t.open for t in result.trades),
        hit_rate=hit_rate(closed),
        avg_trade_return=sum(closed) / len(closed) if closed else None,
        total_return=total_return(result.equity),
        max_drawdown=max_drawdown(result.equity),
        exposure=exposure(result.trades, len(closes)),
        buy_and_hold=closes[-1] / closes[0] - 1.0 if closes and closes[0] > 0 else 0.0,
    )
