"""The one filter model: requests, the matching rule, and rooms that deliver exactly it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.constants import ALL_SIGNALS_ROOM, filter_room
from gateway.clients.requests import SymbolRequestError, parse_filter, parse_resume
from gateway.delivery.filters import NO_SYMBOL, SignalFilter, target_rooms
from gateway.http.history_query import Filters

# Values that could confuse room names: separators, the wildcard, escapes.
values = st.sampled_from(["A", "B", "a:b", "a", "b", "*", "\\", "x\\:y", "C*"])
maybe = st.one_of(st.none(), values, st.integers(), st.just(""))
filters = st.builds(
    SignalFilter,
    st.frozensets(values, max_size=3),
    st.frozensets(values, max_size=3),
    st.frozensets(st.sampled_from(["BUY", "SELL"]), max_size=2),
)
signals = st.fixed_dictionaries(
    {"price": st.just(1)},
    optional={
        "symbol": maybe,
        "strategy": maybe,
        "type": st.sampled_from(["BUY", "SELL", "buy", None]),
    },
)


def delivered(wanted: SignalFilter, signal: dict[str, Any]) -> bool:
    """What python-socketio does: a client gets an emit if it is in any target room."""
    return bool(set(wanted.rooms()) & set(target_rooms(signal)))


@given(filters, signals)
def test_a_client_is_in_a_target_room_exactly_when_its_filter_matches(
    wanted: SignalFilter, signal: dict[str, Any]
) -> None:
    assert delivered(wanted, signal) == wanted.matches(signal)


@given(filters, st.lists(filters, max_size=4), signals)
def test_distinct_filters_share_no_room_by_accident(
    wanted: SignalFilter, others: list[SignalFilter], signal: dict[str, Any]
) -> None:
    # Rooms of other clients never change what this one receives.
    for other in others:
        assert delivered(wanted, signal) == wanted.matches(signal)
        assert delivered(other, signal) == other.matches(signal)


@given(signals)
def test_at_most_eight_target_rooms(signal: dict[str, Any]) -> None:
    rooms = target_rooms(signal)
    assert rooms[0] == ALL_SIGNALS_ROOM
    assert len(rooms) == len(set(rooms)) <= 8


def test_the_rule() -> None:
    by_symbol = SignalFilter(frozenset({"A"}))
    assert by_symbol.matches({"type": "BUY", "symbol": "A"})
    assert not by_symbol.matches({"type": "BUY", "symbol": "B"})
    assert by_symbol.matches({"type": "BUY"})  # no symbol: reaches every symbol filter
    by_strategy = SignalFilter(strategies=frozenset({"sma"}))
    assert by_strategy.matches({"type": "BUY", "strategy": "sma"})
    assert not by_strategy.matches({"type": "BUY"})  # no strategy: matches no strategy filter
    by_side = SignalFilter(types=frozenset({"SELL"}))
    assert not by_side.matches({"type": "BUY", "symbol": "A"})
    assert SignalFilter().rooms() == [ALL_SIGNALS_ROOM]


def test_rooms_are_the_product_of_the_dimensions() -> None:
    wanted = SignalFilter(frozenset({"A", "B"}), frozenset(), frozenset({"BUY"}))
    assert wanted.room_count() == 2
    assert sorted(wanted.rooms()) == sorted(
        filter_room(s, None, "BUY") for s in ("A", "B", NO_SYMBOL)
    )
    assert filter_room("A", None, "BUY") == "f:A:*:BUY"
    assert filter_room("*", "a:b", None) == "f:\\*:a\\:b:*"


def test_a_token_limits_symbols_and_an_empty_claim_allows_none() -> None:
    assert SignalFilter().within(frozenset({"A", "B"})).symbols == {"A", "B"}
    assert SignalFilter(frozenset({"A", "C"})).within(frozenset({"A"})).symbols == {"A"}
    nothing = SignalFilter().within(frozenset())
    assert not nothing.matches({"type": "BUY", "symbol": "A"})
    assert nothing.matches({"type": "BUY"})


def test_history_queries_use_the_same_rule() -> None:
    query = Filters(frozenset({"A"}), frozenset({"A", "B"}), frozenset({"sma"}), None)
    assert query.matches({"type": "BUY", "symbol": "A", "strategy": "sma"})
    assert query.matches({"type": "BUY", "strategy": "sma"})
    assert not query.matches({"type": "BUY", "symbol": "A"})
    assert not Filters(allowed=frozenset()).matches({"type": "BUY", "symbol": "A"})


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("A", SignalFilter(frozenset({"A"}))),
        (["A", " B ", ""], SignalFilter(frozenset({"A", "B"}))),
        ({"symbols": ["A"]}, SignalFilter(frozenset({"A"}))),
        (
            {"strategies": "sma", "types": ["buy", "SELL"]},
            SignalFilter(frozenset(), frozenset({"sma"}), frozenset({"BUY", "SELL"})),
        ),
    ],
)
def test_requests_old_and_new_forms(data: Any, expected: SignalFilter) -> None:
    assert parse_filter(data) == expected


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"strategy": ["sma"]}, "unknown filter keys"),
        ({"types": ["HOLD"]}, "BUY or SELL"),
        ({"strategies": [1]}, "strategy strings"),
        ({"symbols": {"symbols": ["A"]}}, "symbol strings"),
        (None, "symbol strings"),
    ],
)
def test_bad_requests_say_what_is_wrong(data: Any, error: str) -> None:
    with pytest.raises(SymbolRequestError, match=error):
        parse_filter(data)


def test_connect_auth_carries_a_filter() -> None:
    _, wanted = parse_resume({"offset": "5-1", "strategies": ["sma"], "types": "SELL"})
    assert wanted == SignalFilter(frozenset(), frozenset({"sma"}), frozenset({"SELL"}))
