"""The one filter model: which signals a client asked for, and the rooms that deliver them.

Socket.IO subscriptions, SSE streams, client recovery and history queries all use
``SignalFilter.matches``, so a client's history, its resume gap and its live signals agree.

The rule is ``common.filters.signal_matches`` (shared with the notifier); a token's
``symbols`` claim is a symbol filter too.

Socket.IO delivers by rooms, so the fan-out does no per-recipient check: a client joins
the room of each combination of its filter's dimensions (``rooms``: the Cartesian product,
``*`` for an empty dimension, and a symbol filter also holds ``NO_SYMBOL``, the coordinate
of signals without one); a client without a filter stays in room ``all``. A signal goes to
``all`` plus the rooms of its own values with ``*`` substitutions (``target_rooms``: at most
8 in all). A client is in a target room exactly when its filter matches the signal
(tests/unit/gateway/test_filters.py checks that for random filters and signals), and a
client catching up is in no room, so no live signal overtakes its gap.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from common.constants import ALL_SIGNALS_ROOM, filter_room
from common.filters import SIDES, signal_matches

__all__ = ["SIDES", "SignalFilter", "target_rooms"]

#: Rooms one client's filter may need (symbols x strategies x types).
MAX_FILTER_ROOMS: Final = 200
#: The symbol coordinate of signals without one (no signal has it: the schema wants at
#: least one character). A filter of only this takes just those signals, all that an empty
#: ``symbols`` claim allows.
NO_SYMBOL: Final = ""
#: Distinct (symbol, strategy, type) combinations whose target rooms are kept.
TARGETS_CACHED: Final = 4096


@dataclass(frozen=True)
class SignalFilter:
    """What one client asked for; an empty set means every value."""

    symbols: frozenset[str] = frozenset()
    strategies: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()

    def matches(self, signal: dict[str, Any]) -> bool:
        return signal_matches(signal, self.symbols, self.strategies, self.types)

    @property
    def empty(self) -> bool:
        return not (self.symbols or self.strategies or self.types)

    def room_count(self) -> int:
        """Size of the filter: the product of its non-empty dimensions (0: room ``all``).

        Its rooms are at most twice as many (``NO_SYMBOL`` beside the symbols).
        """
        if self.empty:
            return 0
        return max(1, len(self.symbols)) * max(1, len(self.strategies)) * max(1, len(self.types))

    def rooms(self) -> list[str]:
        """The rooms a client with this filter is in (``all`` when it has none)."""
        if self.empty:
            return [ALL_SIGNALS_ROOM]
        symbols = sorted(self.symbols | {NO_SYMBOL}) if self.symbols else [None]
        strategies = sorted(self.strategies) if self.strategies else [None]
        types = sorted(self.types) if self.types else [None]
        return [filter_room(*c) for c in itertools.product(symbols, strategies, types)]

    def describe(self) -> dict[str, list[str]]:
        """What is in force, as acks and docs show it."""
        return {
            "symbols": sorted(self.symbols),
            "strategies": sorted(self.strategies),
            "types": sorted(self.types),
        }

    def add(self, other: SignalFilter) -> SignalFilter:
        return SignalFilter(
            self.symbols | other.symbols,
            self.strategies | other.strategies,
            self.types | other.types,
        )

    def remove(self, other: SignalFilter) -> SignalFilter:
        """Without ``other``'s values; a dimension left empty means any value again."""
        return SignalFilter(
            self.symbols - other.symbols,
            self.strategies - other.strategies,
            self.types - other.types,
        )

    def within(self, allowed: frozenset[str] | None) -> SignalFilter:
        """Limited to a token's symbols: no symbol asked means all it allows."""
        if allowed is None:
            return self
        symbols = self.symbols & allowed or allowed or frozenset({NO_SYMBOL})
        return SignalFilter(symbols, self.strategies, self.types)


def target_rooms(signal: dict[str, Any]) -> tuple[str, ...]:
    """Rooms that should see ``signal``: ``all`` and those of every filter that takes it."""
    symbol = signal.get("symbol")
    strategy = signal.get("strategy")
    side = signal.get("type")
    return _targets(
        symbol if isinstance(symbol, str) and symbol else NO_SYMBOL,
        strategy if isinstance(strategy, str) else None,
        side if isinstance(side, str) else None,
    )


@lru_cache(maxsize=TARGETS_CACHED)
def _targets(symbol: str, strategy: str | None, side: str | None) -> tuple[str, ...]:
    # Built once per combination (a tuple: shared by every emit of it, so never changed).
    strategies = (strategy, None) if strategy is not None else (None,)
    sides = (side, None) if side is not None else (None,)
    rooms = [ALL_SIGNALS_ROOM]
    for combination in itertools.product((symbol, None), strategies, sides):
        if combination != (None, None, None):  # that filter is room ``all``
            rooms.append(filter_room(*combination))
    return tuple(rooms)
