"""Works one symbol: warm up, then bars in, strategies run, new signals out."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from common.logging import get_logger
from common.redis import REDIS_ERRORS, Backoff, raise_if_cancelling
from common.schema import Signal, make_signal, signal_id
from monitor.bars import RecentBars
from monitor.metrics import MonitorMetrics
from monitor.publisher import BufferedPublisher
from monitor.scoring import ScoreTracker
from monitor.sources import Bar, MarketSource, format_timeframe
from monitor.strategies import Strategy, Trigger

log = get_logger(__name__)


@dataclass
class RunnerDeps:
    """What every symbol's runner shares."""

    source: MarketSource
    publisher: BufferedPublisher
    bars: RecentBars
    metrics: MonitorMetrics
    backoff_max_s: float
    # Warm-ups at once: each holds a Redis connection and may call the exchange, and a
    # replica taking 100 symbols at start-up must not exhaust either.
    warmup_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(8))
    #: Scores the published signals (monitor.scoring); None: not scored.
    scores: ScoreTracker | None = None


class SymbolRunner:
    def __init__(self, symbol: str, strategies: list[Strategy], deps: RunnerDeps) -> None:
        self.symbol = symbol
        self.strategies = strategies
        self.deps = deps
        self.window_len = max(s.warmup_bars for s in strategies)
        # A list the strategies read as is (they look at their last ``warmup_bars`` only),
        # trimmed once per window rather than copied from a deque on every tick.
        self.closes: list[float] = []
        self.last: Bar | None = None
        self.timeframe = format_timeframe(deps.source.timeframe_s(symbol))
        # The labelled child once, not a label lookup on every tick.
        self._ticks = deps.metrics.ticks.labels(deps.source.name, symbol)

    async def run(self) -> None:
        """Warm up, then follow the source; errors back off and resume, never end the task."""
        backoff = Backoff(initial_s=0.5, max_s=self.deps.backoff_max_s)
        warmed = False
        while True:
            try:
                if not warmed:
                    async with self.deps.warmup_slots:
                        await self.warm_up()
                    raise_if_cancelling()
                    warmed = True
                async for bar in self.deps.source.stream(self.symbol, self.last):
                    self.on_bar(bar)
                    backoff.reset()
                return  # a finite source (replay) ran out
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any source failure: count, back off, retry
                self.deps.metrics.source_errors.labels(
                    self.deps.source.name, self.symbol, type(exc).__name__
                ).inc()
                delay = backoff.next_delay()
                log.warning(
                    "source_error", symbol=self.symbol, error=repr(exc), retry_in_s=round(delay, 2)
                )
                await asyncio.sleep(delay)

    async def warm_up(self) -> None:
        """Fill the window from recent bars in Redis, topped up by the source's history.

        Warm-up bars are never evaluated, so a restart or a takeover cannot fire on old bars.
        """
        try:
            stored = await self.deps.bars.load(self.symbol, self.window_len)
        except REDIS_ERRORS as exc:
            log.warning("warmup_redis_unavailable", symbol=self.symbol, error=str(exc))
            stored = []
        history: list[Bar] = []
        if len(stored) < self.window_len:
            history = await self.deps.source.history(self.symbol, self.window_len)
        older = [b for b in history if not stored or b.ts < stored[0].ts]
        bars = (older + stored)[-self.window_len :]
        for bar in bars:
            self._add_close(bar.close)
            if not stored:
                # Appending older bars after stored ones would disorder the list: only seed it.
                self.deps.bars.record(bar, live=False)
        self.last = bars[-1] if bars else None
        log.info(
            "symbol_warmed_up",
            symbol=self.symbol,
            from_redis=len(stored),
            from_source=len(bars) - min(len(stored), len(bars)),
            needed=self.window_len,
        )
        await self._restore_scores()

    async def _restore_scores(self) -> None:
        if self.deps.scores is None:
            return
        try:
            await self.deps.scores.restore(self.symbol, [s.name for s in self.strategies])
        except REDIS_ERRORS as exc:
            # Unscored until the next acquisition, rather than a stored window overwritten.
            log.warning("scores_restore_failed", symbol=self.symbol, error=str(exc))

    def _add_close(self, close: float) -> None:
        self.closes.append(close)
        if len(self.closes) >= 2 * self.window_len:
            del self.closes[: -self.window_len]

    def on_bar(self, bar: Bar) -> None:
        received_at = time.monotonic()
        self._add_close(bar.close)
        self.last = bar
        self.deps.bars.record(bar)
        metrics = self.deps.metrics
        self._ticks.inc()
        metrics.tick_received(bar.symbol, bar.ts)
        scores = self.deps.scores
        if scores is not None:
            scores.on_bar(bar)  # before the strategies: a signal's own bar does not score it
        closes = self.closes
        for strategy in self.strategies:
            try:
                trigger = strategy.evaluate(closes)
                signal = (
                    None
                    if trigger is None
                    else build_signal(strategy, trigger, bar, self.timeframe)
                )
            except Exception:
                # A strategy bug on odd data must not stop the other strategies or symbols.
                metrics.strategy_errors.labels(strategy.name).inc()
                log.exception("strategy_failed", strategy=strategy.name, symbol=bar.symbol)
                continue
            if signal is not None:
                self.deps.publisher.submit(signal, received_at)
                if scores is not None and trigger is not None:
                    scores.on_signal(strategy.name, bar.symbol, trigger.type, bar.close, bar.ts)


def build_signal(
    strategy: Strategy, trigger: Trigger, bar: Bar, timeframe: str | None
) -> dict[str, Any]:
    """The signal as published; raises if it breaks the contract (a strategy bug).

    Checked here because the gateway would drop it as ``invalid`` with nothing pointing back
    at the cause: an overflowing indicator or an overlong reason counts against its strategy.
    """
    signal = make_signal(
        signal_id=signal_id(bar.symbol, strategy.name, bar.ts),
        signal_type=trigger.type,
        price=bar.close,
        symbol=bar.symbol,
        strategy=strategy.name,
        timeframe=timeframe,
        params=strategy.params,
        indicators=trigger.indicators,
        reason=trigger.reason,
        bar_ts=bar.ts,
    )
    Signal.model_validate(signal)
    return signal
