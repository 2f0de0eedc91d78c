"""The connect ``auth`` payload: any JSON value either parses or is refused with a reason.

``parse_resume`` may raise only ``SymbolRequestError`` (the connect handler answers it with
``connect_error``); anything else would leave the connect unanswered and log a traceback.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.offsets import Position
from gateway.clients.requests import SymbolRequestError, parse_resume
from gateway.delivery.filters import SignalFilter

NO_FILTER = SignalFilter()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
offsets = st.one_of(
    json_values, st.text(max_size=60), st.from_regex(r"[0-9²¹\uff11]{1,3}-[0-9²¹\uff11]{1,3}")
)
auths = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={"offset": offsets, "symbols": json_values}),
)


@given(auths)
def test_parse_resume_parses_or_refuses_with_a_reason(auth: Any) -> None:
    try:
        position, wanted = parse_resume(auth)
    except SymbolRequestError:
        return
    assert position is None or isinstance(position, Position)
    assert all(isinstance(s, str) for s in wanted.symbols)


@pytest.mark.parametrize("offset", ["²-0", "1-¹", "\uff11-0", "0-0\n", f"{2**64}-0", 17, ["1-0"]])
def test_hostile_offsets_are_refused_with_a_reason(offset: object) -> None:
    with pytest.raises(SymbolRequestError, match="offset"):
        parse_resume({"offset": offset})


def test_both_position_forms_parse() -> None:
    assert parse_resume({"offset": "k3x9q2ab:5-1"}) == (Position("k3x9q2ab", (5, 1)), NO_FILTER)
    assert parse_resume({"offset": "5-1", "symbols": ["A"]}) == (
        Position(None, (5, 1)),
        SignalFilter(frozenset({"A"})),
    )
