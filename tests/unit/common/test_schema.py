"""The wire contract: what is relayed, what is rejected and why."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.schema import RejectReason, SignalRejected, parse_signal

MAX = 64 * 1024


def test_minimal_design_example_is_valid() -> None:
    assert parse_signal(b'{"type":"BUY","price":60000}', MAX) == {"type": "BUY", "price": 60000}


def test_unknown_fields_pass_through_unchanged() -> None:
    message = {"type": "SELL", "price": 1.25, "meta": {"a": [1, "x", None]}, "note": "é"}
    assert parse_signal(json.dumps(message), MAX) == message


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", RejectReason.NOT_JSON),
        (b"{", RejectReason.NOT_JSON),
        (b'{"type":"BUY","price":NaN}', RejectReason.NOT_JSON),
        (b"[]", RejectReason.NOT_OBJECT),
        (b'"BUY"', RejectReason.NOT_OBJECT),
        (b'{"price": 1}', RejectReason.INVALID),
        (b'{"type": "BUY"}', RejectReason.INVALID),
        (b'{"type": "HOLD", "price": 1}', RejectReason.INVALID),
        (b'{"type": "BUY", "price": "1"}', RejectReason.INVALID),
        (b'{"type": "BUY", "price": true}', RejectReason.INVALID),
        (b'{"type": "BUY", "price": -1}', RejectReason.INVALID),
        (b'{"type": "BUY", "price": 1, "symbol": ""}', RejectReason.INVALID),
        (b'{"type": "BUY", "price": 1, "ts": "now"}', RejectReason.INVALID),
    ],
)
def test_rejections_name_their_reason(raw: bytes, reason: RejectReason) -> None:
    with pytest.raises(SignalRejected) as info:
        parse_signal(raw, MAX)
    assert info.value.reason is reason


def test_size_limit_is_checked_before_parsing() -> None:
    raw = json.dumps({"type": "BUY", "price": 1, "pad": "x" * 100}).encode()
    assert parse_signal(raw, len(raw)) is not None
    with pytest.raises(SignalRejected) as info:
        parse_signal(raw, len(raw) - 1)
    assert info.value.reason is RejectReason.TOO_LARGE


@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_raise_anything_but_a_rejection(raw: bytes) -> None:
    try:
        result = parse_signal(raw, MAX)
    except SignalRejected as exc:
        assert exc.reason in RejectReason
    else:
        assert result["type"] in {"BUY", "SELL"}
