"""A bar reaches exactly the clients whose filter includes its symbol, whatever their
strategy and side filters (gateway/delivery/bars.py), checked over random filters."""

from __future__ import annotations

import itertools
import random

from common.constants import ALL_SIGNALS_ROOM
from gateway.delivery.bars import bar_rooms, filter_rooms
from gateway.delivery.filters import SignalFilter

SYMBOLS = ["BTC-USD", "a:b", "*", "x\\y"]  # ':' '*' '\\': names the room scheme escapes
STRATEGIES = ["sma_cross", "rsi", "*"]


def subsets(values: list[str], rng: random.Random) -> frozenset[str]:
    return frozenset(v for v in values if rng.random() < 0.4)


def test_bars_follow_the_symbol_filter_only() -> None:
    rng = random.Random(7)
    filters = [
        SignalFilter(subsets(SYMBOLS, rng), subsets(STRATEGIES, rng), subsets(["BUY", "SELL"], rng))
        for _ in range(300)
    ]
    # A replica's room table: every client's rooms, plus one room per client (its sid).
    table: dict[object, int] = {None: 1}
    for n, f in enumerate(filters):
        table[f"sid{n}"] = 1
        table.update(dict.fromkeys(f.rooms(), 1))
    listed = filter_rooms(table)
    assert ALL_SIGNALS_ROOM not in listed and not any(r.startswith("sid") for r in listed)
    for f, symbol in itertools.product(filters, SYMBOLS):
        targets = set(bar_rooms(listed, symbol))
        wants = not f.symbols or symbol in f.symbols
        assert bool(targets & set(f.rooms())) == wants, (f, symbol)
