"""The monitor's own runner over a file's bars, offline: the signals it would publish.

Nothing here decides a signal. Each symbol gets a real ``SymbolRunner`` with its real
warm-up and ``on_bar``: the same window (the largest ``warmup_bars`` of the symbol's
strategies), the same evaluation, the same contract check (``build_signal``). Only its
outside world is replaced: the bar store holds nothing (a replay warms up on its first bars,
as it does live with an empty Redis), the source yields the file's bars at once, and the
publisher keeps what it is given, refusing an id it has seen as the publish script does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from monitor.bars import RecentBars
from monitor.metrics import MonitorMetrics
from monitor.metrics import P as METRICS_PREFIX
from monitor.publisher import BufferedPublisher
from monitor.runner import RunnerDeps, SymbolRunner
from monitor.sources.base import Bar
from monitor.sources.replay import usual_gap
from monitor.strategies import Strategy

Signal = dict[str, Any]
ERRORS_SAMPLE = f"{METRICS_PREFIX}_strategy_errors_total"  # MonitorMetrics.strategy_errors


class FileBars:
    """A ``MarketSource`` over bars already in memory (the replay source at speed 0)."""

    name = "replay"

    def __init__(self, bars: Mapping[str, list[Bar]]) -> None:
        self._bars = bars

    async def history(self, symbol: str, bars: int) -> list[Bar]:
        return []  # as the replay source: the file is the whole history

    async def stream(self, symbol: str, last: Bar | None) -> AsyncIterator[Bar]:
        for bar in self._bars.get(symbol, []):
            if last is None or bar.ts > last.ts:
                yield bar

    def timeframe_s(self, symbol: str) -> float | None:
        return usual_gap(self._bars.get(symbol, []))

    async def aclose(self) -> None:
        return None


class NoStoredBars(RecentBars):
    """The runner's bar store with no Redis behind it: nothing stored, nothing kept."""

    def __init__(self) -> None:  # no client: never connects
        pass

    def record(self, bar: Bar, *, live: bool = True) -> None:
        return None

    async def load(self, symbol: str, count: int) -> list[Bar]:
        return []


class KeptSignals(BufferedPublisher):
    """The runner's publisher with no Redis behind it: keeps each signal whose id is new."""

    def __init__(self) -> None:  # no Redis, no queue: a signal is "published" at once
        self.signals: list[Signal] = []
        self.duplicates = 0
        self._ids: set[str] = set()

    def submit(self, signal: Signal, received_at: float | None = None) -> None:
        # The publish script's rule (common.publish): an id seen before is not published.
        if signal["id"] in self._ids:
            self.duplicates += 1
            return
        self._ids.add(signal["id"])
        self.signals.append(signal)


@dataclass(frozen=True)
class Found:
    #: Per (symbol, strategy), in bar order, as the live monitor would publish them.
    signals: dict[tuple[str, str], list[Signal]]
    #: Per strategy, evaluations that raised (the runner logs ``strategy_failed`` and goes on,
    #: so a bar that broke a strategy has no signal here either).
    errors: dict[str, int]


async def _collect(
    bars: Mapping[str, list[Bar]], book: Mapping[str, list[Strategy]], registry: CollectorRegistry
) -> KeptSignals:
    source = FileBars(bars)
    kept = KeptSignals()
    deps = RunnerDeps(
        source=source,
        publisher=kept,
        bars=NoStoredBars(),
        metrics=MonitorMetrics(registry),
        backoff_max_s=1.0,
    )
    for symbol, strategies in book.items():
        # One symbol at a time, in file order: the replay source's stream ends with the file.
        await SymbolRunner(symbol, strategies, deps).run()
    await source.aclose()
    return kept


def run_strategies(bars: Mapping[str, list[Bar]], book: Mapping[str, list[Strategy]]) -> Found:
    """What the runner publishes for each symbol's bars, and how often a strategy failed."""
    registry = CollectorRegistry()
    kept = asyncio.run(_collect(bars, book, registry))
    out: dict[tuple[str, str], list[Signal]] = {
        (symbol, s.name): [] for symbol, strategies in book.items() for s in strategies
    }
    for signal in kept.signals:
        out[(signal["symbol"], signal["strategy"])].append(signal)
    names = {s.name for strategies in book.values() for s in strategies}
    errors = {
        name: int(registry.get_sample_value(ERRORS_SAMPLE, {"strategy": name}) or 0)
        for name in sorted(names)
    }
    return Found(out, errors)
