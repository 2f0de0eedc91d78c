"""The wire contract: what is relayed, what is rejected and why."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from common.constants import SCHEMA_VERSION
from common.schema import RejectReason, Signal, SignalRejected, make_signal, parse_signal

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


# --- schema version 2 ----------------------------------------------------------------------

V1 = {
    "v": 1,
    "id": "BTC-USD:sma_cross:1700000000000",
    "type": "BUY",
    "symbol": "BTC-USD",
    "strategy": "sma_cross",
    "price": 60112.4,
    "ts": 1700000000.5,
}
V2 = {
    **V1,
    "v": 2,
    "timeframe": "1m",
    "params": {"fast": 5, "slow": 20},
    "indicators": {"sma_fast": 60022.48, "sma_slow": 60005.62},
    "reason": "SMA 5 crossed above SMA 20 at 60,112.40",
}


def test_monitor_publishes_version_2_and_leaves_out_what_it_was_not_given() -> None:
    assert SCHEMA_VERSION == 2
    bare = make_signal(signal_id="a:b:1", signal_type="SELL", price=1.0, symbol="a", strategy="b")
    assert bare["v"] == 2
    assert not {"timeframe", "params", "indicators", "reason"} & bare.keys()
    full = make_signal(
        signal_id="a:b:1",
        signal_type="BUY",
        price=1.0,
        symbol="a",
        strategy="b",
        timeframe="500ms",
        params={"period": 14},
        indicators={"rsi": 31.5},
        reason="RSI 14 rose above 30",
    )
    assert parse_signal(orjson.dumps(full), MAX) == full


@pytest.mark.parametrize(
    "message",
    [
        V1,
        V2,
        {"type": "BUY", "price": 60000},
        {**V1, "reason": "a v1 publisher's own note"},
        {**V2, "extra": {"nested": [1, "x", None]}, "confidence": "high"},
        {**V2, "timeframe": "500ms"},
        {**V2, "indicators": {f"k{i}": i for i in range(16)}, "params": {}},
        {**V2, "reason": "x" * 200},
    ],
)
def test_v1_and_v2_messages_pass_through_unchanged(message: dict[str, object]) -> None:
    raw = json.dumps(message).encode()
    assert parse_signal(raw, MAX) == message
    assert orjson.dumps(parse_signal(raw, MAX)) == orjson.dumps(message)  # key order kept


@pytest.mark.parametrize(
    "change",
    [
        {"indicators": {f"k{i}": i for i in range(17)}},
        {"params": {f"k{i}": i for i in range(17)}},
        {"indicators": {"rsi": "31.5"}},
        {"indicators": {"rsi": True}},
        {"indicators": {"rsi": None}},
        {"indicators": {"": 1}},
        {"indicators": {"k" * 65: 1}},
        {"indicators": [1, 2]},
        {"params": {"fast": {"value": 5}}},
        {"reason": "x" * 201},
        {"reason": ""},
        {"reason": 5},
        {"timeframe": "1 minute"},
        {"timeframe": "0s"},
        {"timeframe": "1M"},
        {"timeframe": 60},
    ],
)
def test_v2_fields_out_of_bounds_are_rejected_as_invalid(change: dict[str, object]) -> None:
    with pytest.raises(SignalRejected) as info:
        parse_signal(json.dumps({**V2, **change}), MAX)
    assert info.value.reason is RejectReason.INVALID
    assert next(iter(change)) in info.value.detail


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_indicators_never_reach_a_client(token: bytes) -> None:
    # Not JSON to the parser; and a Python float that is not finite fails the model itself.
    raw = b'{"type":"BUY","price":1,"indicators":{"x":' + token + b"}}"
    with pytest.raises(SignalRejected) as info:
        parse_signal(raw, MAX)
    assert info.value.reason is RejectReason.NOT_JSON
    with pytest.raises(ValidationError):
        Signal.model_validate({**V2, "indicators": {"x": float(token)}})
    with pytest.raises(ValidationError):
        Signal.model_validate({**V2, "params": {"x": float("nan")}})


def test_the_json_schema_is_self_contained() -> None:
    # The gateway inlines it into OpenAPI and AsyncAPI: a $ref to local $defs would dangle.
    schema = Signal.model_json_schema()
    assert "$defs" not in schema
    for name in ("timeframe", "params", "indicators", "reason"):
        assert name in schema["properties"]
