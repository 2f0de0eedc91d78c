"""How good the published signals have been: pure scoring, and the tracker that feeds it.

A signal is scored by the close ``h`` bars after its own bar, for h in ``HORIZONS``: the
relative move in the signal's direction, ``(close_h / price - 1)``, negated for a SELL, so a
positive move means the signal was right. A move of exactly 0 is not a hit.

Per (strategy, symbol) the last ``window`` signals are kept in one Redis hash
(common.constants.scores_key) with the summary the gateway serves. Signals whose 20 bars
have not closed yet are "pending"; at a takeover the next owner recomputes them from the
recent bars kept in Redis (monitor.bars), so they are not lost unless those bars are gone
(their unresolved horizons then stay unscored, and the loss is logged).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis

from common.constants import bars_key, scores_index_key, scores_key
from common.logging import get_logger
from common.redis import REDIS_ERRORS
from monitor.bars import decode
from monitor.sources.base import Bar

log = get_logger(__name__)

HORIZONS: tuple[int, ...] = (1, 5, 20)
LONGEST = HORIZONS[-1]
FLUSH_INTERVAL_S = 0.5


def directional_move(side: str, price: float, later: float) -> float:
    """The relative move from ``price`` to ``later`` in the signal's direction."""
    if price <= 0.0 or not math.isfinite(later):
        return 0.0
    move = later / price - 1.0
    return move if side == "BUY" else -move


@dataclass(slots=True)
class Entry:
    """One scored signal: its bar, side and price, and the moves known so far (None: not yet)."""

    ts: float
    side: str
    price: float
    moves: list[float | None] = field(default_factory=lambda: [None] * len(HORIZONS))
    seen: int = 0  # bars closed since the signal's bar (while pending)

    @property
    def pending(self) -> bool:
        return self.moves[-1] is None

    def advance(self, close: float) -> bool:
        """Count one more closed bar; True when a horizon got its move."""
        self.seen += 1
        if self.seen in HORIZONS:
            self.moves[HORIZONS.index(self.seen)] = directional_move(self.side, self.price, close)
            return True
        return False

    def encode(self) -> list[object]:
        return [self.ts, self.side, self.price, *self.moves]

    @classmethod
    def decode(cls, raw: Sequence[object]) -> Entry:
        ts, side, price, *moves = raw
        return cls(float(ts), str(side), float(price), [_opt(m) for m in moves])  # type: ignore[arg-type]


def _opt(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def replay(entry: Entry, bars: Iterable[Bar]) -> Entry:
    """``entry`` re-scored from scratch over the bars that closed after it (oldest first)."""
    fresh = Entry(entry.ts, entry.side, entry.price)
    for bar in bars:
        if bar.ts > entry.ts and fresh.pending:
            fresh.advance(bar.close)
    return fresh


def hit_rate(entries: Sequence[Entry], horizon_index: int) -> float | None:
    """Share of the signals scored at that horizon whose move was positive; None: none yet."""
    moves = [m for e in entries if (m := e.moves[horizon_index]) is not None]
    return sum(1 for m in moves if m > 0.0) / len(moves) if moves else None


def average_move(entries: Sequence[Entry], horizon_index: int) -> float | None:
    moves = [m for e in entries if (m := e.moves[horizon_index]) is not None]
    return math.fsum(moves) / len(moves) if moves else None


def summary(entries: Sequence[Entry]) -> dict[str, float | int | None]:
    """The scorecard of one (strategy, symbol) window, as the API serves it."""
    five = HORIZONS.index(5)
    return {
        "signals": len(entries),
        **{f"hit_rate_{h}": hit_rate(entries, i) for i, h in enumerate(HORIZONS)},
        "avg_move_5": average_move(entries, five),
    }


class ScoreTracker:
    """Scores the signals of the symbols this replica works; state lives in Redis hashes.

    The runner calls ``restore`` after its warm-up, ``on_bar`` for every closed bar before
    the strategies run, and ``on_signal`` for each signal it publishes; ``flush`` (a loop
    in the worker) writes the changed hashes in one pipeline.
    """

    def __init__(self, client: aioredis.Redis, channel: str, window: int) -> None:
        self._client = client
        self._channel = channel
        self._window = window
        self._entries: dict[tuple[str, str], list[Entry]] = {}
        self._dirty: set[tuple[str, str]] = set()
        # Symbols whose windows were loaded: only those are scored, so a failed load can
        # never overwrite a stored window with an empty one.
        self._symbols: set[str] = set()

    def entries(self, strategy: str, symbol: str) -> list[Entry]:
        return self._entries.get((strategy, symbol), [])

    async def restore(self, symbol: str, strategies: Sequence[str]) -> None:
        """Load the windows of ``symbol``; re-score pending signals over the stored bars."""
        pipe = self._client.pipeline(transaction=False)
        pipe.lrange(bars_key(self._channel, symbol), -(LONGEST + 1), -1)
        for strategy in strategies:
            pipe.hget(scores_key(self._channel, strategy, symbol), "window")
        stored, *raws = await pipe.execute()
        self._load(symbol, strategies, raws, [decode(symbol, raw) for raw in stored])
        self._symbols.add(symbol)

    def _load(
        self, symbol: str, strategies: Sequence[str], raws: Sequence[object], bars: Sequence[Bar]
    ) -> None:
        first_ts = bars[0].ts if bars else math.inf
        for strategy, raw in zip(strategies, raws, strict=True):
            entries = [Entry.decode(item) for item in orjson.loads(raw)] if raw else []  # type: ignore[arg-type]
            lost = 0
            for i, entry in enumerate(entries):
                if not entry.pending:
                    continue
                if entry.ts < first_ts:
                    # The bars after it are gone: its unresolved horizons stay unscored.
                    entry.seen = LONGEST
                    lost += 1
                    continue
                fresh = replay(entry, bars)
                entries[i] = Entry(entry.ts, entry.side, entry.price, fresh.moves, fresh.seen)
            if lost:
                log.warning("scores_pending_lost", symbol=symbol, strategy=strategy, signals=lost)
            self._entries[(strategy, symbol)] = entries
            if entries:  # re-scored; a strategy that never signalled gets no hash yet
                self._dirty.add((strategy, symbol))

    def forget(self, symbol: str) -> None:
        """Drop a symbol this replica no longer works (its next owner restores it)."""
        self._symbols.discard(symbol)
        for key in [k for k in self._entries if k[1] == symbol]:
            del self._entries[key]
            self._dirty.discard(key)

    def on_bar(self, bar: Bar) -> None:
        for key, entries in self._entries.items():
            if key[1] != bar.symbol:
                continue
            for entry in entries:
                if entry.pending and entry.seen < LONGEST and entry.advance(bar.close):
                    self._dirty.add(key)

    def on_signal(self, strategy: str, symbol: str, side: str, price: float, ts: float) -> None:
        if symbol not in self._symbols:
            return
        entries = self._entries.setdefault((strategy, symbol), [])
        if any(e.ts == ts for e in entries):
            return  # the same bar's signal again (a replayed bar): scored once
        entries.append(Entry(ts, side, price))
        del entries[: -self._window]
        self._dirty.add((strategy, symbol))

    async def flush(self) -> None:
        dirty, self._dirty = self._dirty, set()
        if not dirty:
            return
        pipe = self._client.pipeline(transaction=False)
        for strategy, symbol in dirty:
            entries = self._entries.get((strategy, symbol))
            if entries is None:
                continue
            # Any: redis-py's mapping type is invariant in a union of key types.
            fields: dict[Any, str] = {
                k: "" if v is None else repr(v) for k, v in summary(entries).items()
            }
            fields["window"] = orjson.dumps([e.encode() for e in entries]).decode()
            fields["window_signals"] = str(self._window)
            pipe.hset(scores_key(self._channel, strategy, symbol), mapping=fields)
            pipe.sadd(scores_index_key(self._channel), orjson.dumps([strategy, symbol]))
        try:
            await pipe.execute()
        except BaseException:
            self._dirty |= dirty  # written next time
            raise

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            try:
                await self.flush()
            except REDIS_ERRORS as exc:
                log.debug("scores_flush_failed", error=str(exc))
