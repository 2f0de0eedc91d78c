"""The one rule for "does this signal match what was asked for", shared by every consumer.

The gateway's clients (``gateway.delivery.filters.SignalFilter``) and the notifier's
destinations both ask it, so a filter means the same thing on a page, in a history query
and in a webhook subscription. Per dimension (an empty set means any value):

- symbol: a signal without a symbol is operator-wide and passes every symbol filter;
- strategy: a signal without a strategy matches no strategy filter;
- side (``type``, BUY/SELL): every valid signal has one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

#: The sides a ``types`` filter may name.
SIDES: Final = frozenset({"BUY", "SELL"})


def signal_matches(
    signal: Mapping[str, Any],
    symbols: frozenset[str],
    strategies: frozenset[str],
    types: frozenset[str],
) -> bool:
    if symbols:
        symbol = signal.get("symbol")
        if isinstance(symbol, str) and symbol and symbol not in symbols:
            return False
    return _takes(strategies, signal.get("strategy")) and _takes(types, signal.get("type"))


def _takes(wanted: frozenset[str], value: Any) -> bool:
    return not wanted or (isinstance(value, str) and value in wanted)
