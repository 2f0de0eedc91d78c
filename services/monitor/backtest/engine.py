"""One backtest of a file: its bars, the live strategies' signals, trades and figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.backtest.data import detect_format, load_file
from monitor.backtest.metrics import Summary, summarize
from monitor.backtest.signals import run_strategies
from monitor.backtest.trading import Backtest, simulate
from monitor.sources.base import Bar, format_timeframe
from monitor.sources.replay import usual_gap
from monitor.strategies import Params, Strategy, build_strategy_book

BPS = 10_000


class NoBars(ValueError):
    """The file holds no bars for a symbol asked for (or none at all)."""


@dataclass(frozen=True)
class Options:
    file: Path
    strategies: Sequence[str]
    symbols: Sequence[str] = ()  # empty: every symbol in the file
    fee_bps: float = 10.0
    short: bool = False
    params: Params = field(default_factory=dict)

    @property
    def rule(self) -> str:
        return "long-short" if self.short else "long-only"


@dataclass(frozen=True)
class Run:
    """One strategy on one symbol."""

    strategy: Strategy
    symbol: str
    bars: Sequence[Bar]
    signals: Sequence[dict[str, Any]]
    result: Backtest
    summary: Summary

    @property
    def timeframe(self) -> str | None:
        return format_timeframe(usual_gap(list(self.bars)))


@dataclass(frozen=True)
class Report:
    options: Options
    file_format: str
    bad_rows: int
    runs: list[Run]
    strategy_errors: dict[str, int]  # evaluations that raised, per strategy (logged)


def _pick(bars: Mapping[str, list[Bar]], wanted: Sequence[str], file: Path) -> dict[str, list[Bar]]:
    if not wanted:
        if not bars:
            raise NoBars(f"{file}: no valid bars")
        return dict(bars)
    missing = [s for s in wanted if not bars.get(s)]
    if missing:
        have = ", ".join(sorted(bars)) or "none"
        raise NoBars(f"{file}: no bars for {', '.join(missing)} (symbols in the file: {have})")
    return {s: bars[s] for s in wanted}


def run_backtest(options: Options) -> Report:
    bad: list[str] = []
    everything = load_file(options.file, lambda symbol, _reason: bad.append(symbol))
    bars = _pick(everything, options.symbols, options.file)
    # The live monitor's own builder: the same defaults, the same parameter checks.
    book = build_strategy_book(list(bars), list(options.strategies), options.params, {})
    found = run_strategies(bars, book)
    runs = []
    for name in options.strategies:
        for symbol, strategies in book.items():
            strategy = next(s for s in strategies if s.name == name)
            own = found.signals[(symbol, name)]
            result = simulate(bars[symbol], own, fee=options.fee_bps / BPS, short=options.short)
            closes = [b.close for b in bars[symbol]]
            summary = summarize(name, symbol, closes, len(own), result)
            runs.append(Run(strategy, symbol, bars[symbol], own, result, summary))
    return Report(options, detect_format(options.file), len(bad), runs, found.errors)
