"""Message templates: the readable defaults, the placeholders, and rendering that never fails."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.strategies.base import format_price as monitor_format_price
from notifier.destinations.templates import (
    DEFAULT_TEXT,
    FIELDS,
    check_template,
    format_price,
    render,
    signal_fields,
    truncate,
)

SIGNAL: dict[str, Any] = {
    "v": 2,
    "id": "BTC-USD:sma_cross:1700000000000",
    "type": "BUY",
    "symbol": "BTC-USD",
    "strategy": "sma_cross",
    "price": 60112.4,
    "ts": 1700000000.0,
    "timeframe": "1m",
    "params": {"fast": 5, "slow": 20},
    "indicators": {"sma_fast": 60100.123, "sma_slow": 60050.0},
    "reason": "SMA 5 crossed above SMA 20 at 60,112.40",
}


def test_default_reads_like_the_page() -> None:
    assert render(DEFAULT_TEXT, SIGNAL) == (
        "BUY BTC-USD at 60,112.40 (sma_cross, 1m): SMA 5 crossed above SMA 20"
    )


def test_every_placeholder() -> None:
    fields = signal_fields(SIGNAL)
    assert set(fields) == FIELDS
    assert fields["price"] == "60,112.40" and fields["price_raw"] == "60112.4"
    assert fields["why"] == "SMA 5 crossed above SMA 20"
    assert fields["reason"] == SIGNAL["reason"]
    assert fields["time"] == "2023-11-14 22:13:20 UTC"
    assert fields["params"] == "fast=5, slow=20"
    assert fields["indicators"] == "sma_fast=60,100.12, sma_slow=60,050.00"
    assert fields["headline"] == "BUY BTC-USD at 60,112.40"
    assert fields["context"] == "sma_cross, 1m"
    assert fields["side"] == fields["type"] == "BUY"


@pytest.mark.parametrize(
    ("signal", "summary"),
    [
        ({"type": "SELL", "price": 0.00001234}, "SELL at 0.00001234"),
        ({"type": "BUY", "price": 3, "symbol": "ETH-USD"}, "BUY ETH-USD at 3.00"),
        (
            {"type": "BUY", "price": 1.5, "strategy": "rsi", "reason": "RSI 14 rose above 30"},
            "BUY at 1.50 (rsi): RSI 14 rose above 30",
        ),
        ({"type": "SELL", "price": 2.0, "reason": "at 2.00"}, "SELL at 2.00: at 2.00"),
        ({}, ""),
        ({"type": "BUY", "price": 10**400, "ts": 10**400}, "BUY"),
        ({"type": "BUY", "price": math.inf, "ts": math.nan}, "BUY"),
    ],
)
def test_summary_leaves_out_what_is_missing(signal: dict[str, Any], summary: str) -> None:
    assert signal_fields(signal)["summary"] == summary


def test_escape_applies_to_values_not_template() -> None:
    out = render("<b>$symbol</b>", {"symbol": "<x>"}, lambda v: v.replace("<", "&lt;"))
    assert out == "<b>&lt;x></b>"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("$symbl at $price", r"unknown placeholder\(s\) \$symbl"),
        ("costs $5", "write '\\$\\$'"),
        ("${price", "write '\\$\\$'"),
    ],
)
def test_check_template_refuses(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_template(template)


def test_check_template_accepts() -> None:
    assert check_template("$$5 ${symbol}: $summary") == "$$5 ${symbol}: $summary"


def test_truncate() -> None:
    assert truncate("abcdef", 6) == "abcdef"
    assert truncate("abcdefg", 6) == "abcde…"


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15))
def test_price_format_same_as_monitor(price: float) -> None:
    assert format_price(price) == monitor_format_price(price)


JSON_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and infinities too: the stream is not to be trusted
    st.text(max_size=30),
)
JSON = st.recursive(
    JSON_SCALAR,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
SIGNALS = st.dictionaries(
    st.sampled_from(sorted(FIELDS | {"price", "ts", "params", "indicators", "v"}))
    | st.text(max_size=5),
    JSON,
    max_size=12,
)
TEMPLATES = st.text(max_size=60) | st.lists(
    st.sampled_from([f"${f}" for f in sorted(FIELDS)] + ["$", "$$", "${", "x", " ", "\n"]),
    max_size=10,
).map("".join)


@settings(max_examples=300)
@given(TEMPLATES, SIGNALS)
def test_render_never_raises(template: str, signal: dict[str, Any]) -> None:
    text = render(template, signal)
    assert isinstance(text, str)
    fields = signal_fields(signal)
    assert all(isinstance(v, str) for v in fields.values())
    assert "nan" not in fields["price"].lower() and "inf" not in fields["price"].lower()
    if isinstance(signal.get("price"), float) and not math.isfinite(signal["price"]):
        assert fields["price"] == ""
