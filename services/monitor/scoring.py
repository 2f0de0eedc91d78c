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

import math
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError
from redis.typing import EncodableT

from common.constants import bars_key, scores_index_key, scores_key
from common.logging import get_logger
from monitor.bars import decode
from monitor.sources.base import Bar

log = get_logger(__name__)

HORIZONS: tuple[int, ...] = (1, 5, 20)
LONGEST = HORIZONS[-1]
FLUSH_INTERVAL_S = 0.5

# One script for all changed hashes (rather than an HSET and an SADD each: with every window
# of 100 symbols changing, packing and parsing those was a fifth of the monitor's CPU), its
# values in one JSON argument (redis-py packs each argument in Python; cjson unpacks in C).
# KEYS: the index set, then one hash per window. ARGV: a JSON array of the field names, and
# a JSON array with per hash [its index member, [its values in the names' order]].
_WRITE = """
local names = cjson.decode(ARGV[1])
local hashes = cjson.decode(ARGV[2])
for k = 2, #KEYS do
  local member, values = hashes[k - 1][1], hashes[k - 1][2]
  local fields = {}
  for f = 1, #names do
    fields[2 * f - 1] = names[f]
    fields[2 * f] = values[f]
  end
  redis.call('HSET', KEYS[k], unpack(fields))
  redis.call('SADD', KEYS[1], member)
end
return #KEYS - 1
"""


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
    # ``encode`` as JSON, kept until a move changes: most of a window is settled, and
    # re-encoding every entry of every changed window was most of a scores write.
    _json: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def pending(self) -> bool:
        return self.moves[-1] is None

    def advance(self, close: float) -> bool:
        """Count one more closed bar; True when a horizon got its move."""
        self.seen += 1
        if self.seen in HORIZONS:
            self.moves[HORIZONS.index(self.seen)] = directional_move(self.side, self.price, close)
            self._json = None
            return True
        return False

    def encode(self) -> list[object]:
        return [self.ts, self.side, self.price, *self.moves]

    def json(self) -> bytes:
        """``orjson.dumps(self.encode())``, encoded once per change of the moves."""
        if self._json is None:
            self._json = orjson.dumps(self.encode())
        return self._json

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


#: The fields of a scores hash, in the order ``_WRITE`` takes their values.
FIELDS = (
    "signals",
    *(f"hit_rate_{h}" for h in HORIZONS),
    "avg_move_5",
    "window",
    "window_signals",
)


def summary(entries: Sequence[Entry]) -> dict[str, float | int | None]:
    """The scorecard of one (strategy, symbol) window, as the API serves it."""
    five = HORIZONS.index(5)
    return {
        "signals": len(entries),
        **{f"hit_rate_{h}": hit_rate(entries, i) for i, h in enumerate(HORIZONS)},
        "avg_move_5": average_move(entries, five),
    }


Key = tuple[str, str]  # (strategy, symbol)


class ScoreTracker:
    """Scores the signals of the symbols this replica works; state lives in Redis hashes.

    The runner calls ``restore`` after its warm-up, ``on_bar`` for every closed bar before
    the strategies run, and ``on_signal`` for each signal it publishes. The changed hashes
    travel with the publisher's round trips (``stage``, a ``Companion``), at most every
    ``FLUSH_INTERVAL_S``: a window is rewritten whole, so writing it on every bar close
    would cost more than it tells. ``flush`` writes them at once (at shutdown).
    """

    def __init__(self, client: aioredis.Redis, channel: str, window: int) -> None:
        self._client = client
        self._channel = channel
        self._window = window
        self._entries: dict[Key, list[Entry]] = {}
        self._dirty: set[Key] = set()
        # Per symbol, the entries still waiting for a horizon: a bar looks at those only,
        # not at every window of every symbol (that scan was a tenth of a tick's cost).
        self._waiting: dict[str, list[tuple[Key, Entry]]] = {}
        self._staged: deque[set[Key]] = deque()  # staged, not yet settled, oldest first
        self._next_write = 0.0
        self._script = client.register_script(_WRITE)
        self._script_known = False
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
        waiting = [x for x in self._waiting.get(symbol, []) if x[0][0] not in strategies]
        self._waiting[symbol] = waiting
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
            waiting.extend(((strategy, symbol), e) for e in entries if _waits(e))
            if entries:  # re-scored; a strategy that never signalled gets no hash yet
                self._dirty.add((strategy, symbol))

    def forget(self, symbol: str) -> None:
        """Drop a symbol this replica no longer works (its next owner restores it)."""
        self._symbols.discard(symbol)
        self._waiting.pop(symbol, None)
        for key in [k for k in self._entries if k[1] == symbol]:
            del self._entries[key]
            self._dirty.discard(key)

    def on_bar(self, bar: Bar) -> None:
        waiting = self._waiting.get(bar.symbol)
        if not waiting:
            return
        done = False
        for key, entry in waiting:
            if entry.advance(bar.close):
                self._dirty.add(key)
                done = done or entry.seen == LONGEST  # its last horizon
        if done:
            self._waiting[bar.symbol] = [item for item in waiting if _waits(item[1])]

    def on_signal(self, strategy: str, symbol: str, side: str, price: float, ts: float) -> None:
        if symbol not in self._symbols:
            return
        entries = self._entries.setdefault((strategy, symbol), [])
        # The window is in bar order: only a bar no newer than its last can be one seen.
        if entries and ts <= entries[-1].ts and any(e.ts == ts for e in entries):
            return  # the same bar's signal again (a replayed bar): scored once
        entry = Entry(ts, side, price)
        entries.append(entry)
        self._waiting.setdefault(symbol, []).append(((strategy, symbol), entry))
        gone = entries[: -self._window]
        if gone:
            del entries[: -self._window]
            if any(_waits(e) for e in gone):  # no longer in the window: no longer scored
                dropped = {id(e) for e in gone}
                self._waiting[symbol] = [
                    x for x in self._waiting[symbol] if id(x[1]) not in dropped
                ]
        self._dirty.add((strategy, symbol))

    def stage(self, pipe: Pipeline) -> int:
        """Queue the changed hashes if the last write is ``FLUSH_INTERVAL_S`` old (a
        ``Companion``); ``settle`` marks them changed again if the write failed."""
        now = time.monotonic()
        if not self._dirty or now < self._next_write:
            return 0
        self._next_write = now + FLUSH_INTERVAL_S
        dirty, self._dirty = self._dirty, set()
        self._staged.append(dirty)
        return self._queue_writes(pipe, dirty)

    def settle(self, replies: Sequence[Any] | BaseException) -> None:
        # Round trips answer in the order they were staged: the oldest staged is this one.
        staged = self._staged.popleft()
        error = replies if isinstance(replies, BaseException) else replies[0]
        if not isinstance(error, BaseException):
            self._script_known = True
            return
        if isinstance(error, NoScriptError):
            self._script_known = False
        self._dirty |= staged
        self._next_write = 0.0  # with the next round trip
        log.debug("scores_write_failed", keys=len(staged), error=str(error))

    async def flush(self) -> None:
        """Write every changed hash now, in a round trip of its own (at shutdown)."""
        dirty, self._dirty = self._dirty, set()
        pipe = self._client.pipeline(transaction=False)
        if not self._queue_writes(pipe, dirty):
            return
        try:
            await pipe.execute()
        except BaseException:
            self._dirty |= dirty  # written next time
            raise

    def _queue_writes(self, pipe: Pipeline, dirty: set[Key]) -> int:
        keys = [scores_index_key(self._channel)]
        hashes: list[tuple[str, list[str]]] = []
        for key in dirty:
            entries = self._entries.get(key)
            if entries is None:
                continue
            keys.append(scores_key(self._channel, *key))
            values = ["" if v is None else repr(v) for v in summary(entries).values()]
            # Byte for byte orjson.dumps([e.encode() for e in entries]).
            window = b"[" + b",".join([e.json() for e in entries]) + b"]"
            values += (window.decode(), str(self._window))
            hashes.append((orjson.dumps(key).decode(), values))
        if not hashes:
            return 0
        args: list[EncodableT] = [orjson.dumps(FIELDS), orjson.dumps(hashes)]
        # EVALSHA once Redis holds the script; after a restart a NOSCRIPT reply marks
        # these changed again (settle) and the next write sends its text.
        if self._script_known:
            pipe.evalsha(self._script.sha, len(keys), *keys, *args)
        else:
            pipe.eval(_WRITE, len(keys), *keys, *args)
        return 1


def _waits(entry: Entry) -> bool:
    """Still to be scored on a later bar (a lost one, ``seen`` at the end, never is)."""
    return entry.pending and entry.seen < LONGEST
