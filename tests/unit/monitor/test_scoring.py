"""Scoring of published signals against hand-computed price series (monitor.scoring)."""

from __future__ import annotations

import orjson
import pytest

from monitor.scoring import HORIZONS, Entry, directional_move, replay, summary
from monitor.sources.base import Bar


def bars(closes: list[float], start: float = 1.0) -> list[Bar]:
    """One bar a second after ``start`` per close (the signal's own bar is at ts 0)."""
    return [Bar("BTC-USD", start + i, c, c, c, c, 1.0) for i, c in enumerate(closes)]


def scored(side: str, price: float, closes: list[float]) -> Entry:
    return replay(Entry(0.0, side, price), bars(closes))


RISING = [101.0 + i for i in range(20)]  # 101, 102, ..., 120


def test_a_buy_followed_by_rises_scores_positive() -> None:
    entry = scored("BUY", 100.0, RISING)
    # after 1 bar 101/100 - 1; after 5 bars 105/100 - 1; after 20 bars 120/100 - 1
    assert entry.moves == pytest.approx([0.01, 0.05, 0.20])
    assert not entry.pending


def test_a_sell_is_mirrored() -> None:
    assert scored("SELL", 100.0, RISING).moves == pytest.approx([-0.01, -0.05, -0.20])
    falling = [99.0 - i for i in range(20)]  # 99 ... 80
    assert scored("SELL", 100.0, falling).moves == pytest.approx([0.01, 0.05, 0.20])


def test_unclosed_horizons_stay_pending() -> None:
    entry = scored("BUY", 100.0, [102.0, 98.0, 97.0])
    assert entry.moves[0] == pytest.approx(0.02)
    assert entry.moves[1:] == [None, None]
    assert entry.pending and entry.seen == 3


def test_bars_before_and_at_the_signal_do_not_count() -> None:
    entry = replay(Entry(5.0, "BUY", 100.0), bars([50.0] * 5 + [110.0]))  # ts 1..6
    assert entry.seen == 1 and entry.moves[0] == pytest.approx(0.10)


def test_hit_rates_average_and_sample_size() -> None:
    entries = [
        scored("BUY", 100.0, RISING),  # right at 1, 5, 20
        scored("SELL", 100.0, RISING),  # wrong at 1, 5, 20
        scored("BUY", 100.0, [100.0] * 20),  # flat: 0 is not a hit
        scored("SELL", 100.0, [99.0, 99.0]),  # right at 1; 5 and 20 not closed yet
    ]
    card = summary(entries)
    assert card["signals"] == 4
    assert card["hit_rate_1"] == pytest.approx(2 / 4)
    assert card["hit_rate_5"] == pytest.approx(1 / 3)
    assert card["hit_rate_20"] == pytest.approx(1 / 3)
    assert card["avg_move_5"] == pytest.approx((0.05 - 0.05 + 0.0) / 3)


def test_an_empty_window_has_no_rates() -> None:
    assert summary([]) == {
        "signals": 0,
        **{f"hit_rate_{h}": None for h in HORIZONS},
        "avg_move_5": None,
    }


def test_moves_survive_encoding() -> None:
    entry = scored("SELL", 100.0, [99.0, 98.0])
    assert Entry.decode(entry.encode()).moves == entry.moves
    assert directional_move("BUY", 0.0, 5.0) == 0.0  # a bad price scores nothing


def test_an_entrys_cached_json_follows_its_moves() -> None:
    entry = Entry(1.0, "BUY", 100.0)
    assert entry.json() == orjson.dumps(entry.encode())
    for close in (101.0, 102.0, 103.0, 104.0, 105.0):  # the 1- and 5-bar horizons
        entry.advance(close)
        assert entry.json() == orjson.dumps(entry.encode())
    assert entry.moves[1] == pytest.approx(0.05)
