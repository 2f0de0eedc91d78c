"""History positions: the parser never raises, round-trips, and refuses non-ASCII digits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.offsets import (
    EPOCH_ALPHABET,
    EPOCH_LENGTH,
    MAX_ID_PART,
    Position,
    format_position,
    is_epoch,
    new_epoch,
    parse_offset,
    parse_position,
)
from common.schema import RejectReason, SignalRejected, parse_signal

ids = st.integers(min_value=0, max_value=MAX_ID_PART)
epochs = st.text(alphabet=EPOCH_ALPHABET, min_size=EPOCH_LENGTH, max_size=EPOCH_LENGTH)

HOSTILE = [
    "²-0",  # superscript two: str.isdigit() says True, int() refuses it
    "1-¹",
    "\uff11-0",  # fullwidth digit: \d matches it
    "0-٣",  # Arabic-Indic digit
    "abcdefgh:²-0",
    "0-0\n",  # "$" alone would let a trailing newline through
    "ABCDEFGH:1-0",  # epochs are lower case
    "abcdefg:1-0",  # seven characters
    "abcdefghi:1-0",
    f"{2**64}-0",
    f"0-{2**64}",
    "1" * 21 + "-0",
    "-0",
    "1-",
    "1--1",
    " 1-0",
    "1-0 ",
    ":1-0",
    "abcdefgh:",
    "",
    "9" * 10_000,
]


@given(st.text(max_size=80))
def test_parse_position_never_raises_on_text(value: str) -> None:
    position = parse_position(value)
    assert position is None or str(position) == value


@given(st.one_of(st.none(), st.integers(), st.floats(), st.binary(), st.lists(st.text())))
def test_parse_position_never_raises_on_other_types(value: object) -> None:
    assert parse_position(value) is None


@given(st.one_of(st.none(), epochs), ids, ids)
def test_format_then_parse_round_trips(epoch: str | None, ms: int, seq: int) -> None:
    text = format_position(epoch, (ms, seq))
    assert parse_position(text) == Position(epoch, (ms, seq))
    assert parse_offset(text) == ((ms, seq) if epoch is None else None)


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_positions_are_refused(value: str) -> None:
    assert parse_position(value) is None
    assert parse_offset(value) is None


def test_legacy_and_epoch_forms() -> None:
    assert parse_position("1700000000000-3") == Position(None, (1700000000000, 3))
    assert parse_position("k3x9q2ab:1700000000000-3") == Position("k3x9q2ab", (1700000000000, 3))
    assert parse_position(f"{MAX_ID_PART}-{MAX_ID_PART}") is not None


def test_new_epochs_are_valid_and_distinct() -> None:
    made = {new_epoch() for _ in range(200)}
    assert len(made) == 200
    assert all(is_epoch(e) for e in made)


@pytest.mark.parametrize("value", ["k3x9q2ab:1700000000000-0", "1700000000000-0"])
def test_signal_schema_accepts_both_forms(value: str) -> None:
    assert parse_signal(f'{{"type":"BUY","price":1,"offset":"{value}"}}', 1000)["offset"] == value


@pytest.mark.parametrize("value", ["²-0", "\uff11-0", f"{2**64}-0", "x:1-0", 7])
def test_signal_schema_refuses_what_the_parser_refuses(value: object) -> None:
    raw = (
        '{"type":"BUY","price":1,"offset":'
        + (f'"{value}"' if isinstance(value, str) else str(value))
        + "}"
    )
    with pytest.raises(SignalRejected) as info:
        parse_signal(raw.encode(), 1000)
    assert info.value.reason is RejectReason.INVALID
