"""qs_client's pure parts: the offset rule (a copy of docs/delivery.md's), models, format."""

from __future__ import annotations

import json

import pytest
from qs_client import Recovery, Signal, is_newer, parse_position
from qs_client.format import json_line, recovery_line, signal_line


def test_positions_parse_exactly_the_two_forms() -> None:
    assert str(parse_position("k3x9q2ab:1700000000000-7")) == "k3x9q2ab:1700000000000-7"
    assert parse_position("1700000000000-7") is not None
    for bad in ["", "1-", "x:1-0", "K3X9Q2AB:1-0", "²-0", "1-0\n", f"{2**64}-0", None, 5]:
        assert parse_position(bad) is None, bad


def test_newer_compares_as_integers_within_an_epoch_and_any_other_epoch_is_newer() -> None:
    def newer(a: str, b: str | None) -> bool:
        pa = parse_position(a)
        assert pa is not None
        return is_newer(pa, parse_position(b) if b else None)

    assert newer("aaaaaaaa:10-0", "aaaaaaaa:9-5")  # 10 > 9 as numbers, not as text
    assert newer("aaaaaaaa:9-10", "aaaaaaaa:9-9")
    assert not newer("aaaaaaaa:9-9", "aaaaaaaa:9-9")  # the same entry is not newer
    assert not newer("aaaaaaaa:8-0", "aaaaaaaa:9-0")
    assert newer("bbbbbbbb:1-0", "aaaaaaaa:9-0")  # a new epoch starts over
    assert newer("aaaaaaaa:1-0", "5-0")  # from before epochs to an epoch
    assert newer(f"{2**64 - 1}-1", f"{2**64 - 1}-0")  # beyond 2^53: exact
    assert newer("1-0", None)


def test_signal_keeps_unknown_fields_and_gives_the_payload_back() -> None:
    payload = {"type": "SELL", "price": 3, "symbol": "ETH-USD", "v": 2, "reason": "x", "k": [1]}
    signal = Signal.from_dict(payload)
    assert (signal.type, signal.price, signal.v) == ("SELL", 3.0, 2)
    assert signal.extra == {"reason": "x", "k": [1]}
    assert signal.to_dict() == {**payload, "price": 3.0}
    for bad in [[], {"type": "BUY"}, {"type": "BUY", "price": True}, {"price": 1}]:
        with pytest.raises(ValueError):
            Signal.from_dict(bad)


def test_terminal_line_is_readable_and_json_line_is_compact() -> None:
    signal = Signal("BUY", 60112.4, id="a", symbol="BTC-USD", strategy="sma", offset="1-0")
    line = signal_line(signal)
    assert line.split() == ["--:--:--", "BUY", "BTC-USD", "60,112.40", "sma", "1-0"]
    assert "\x1b[" not in line and "\x1b[32mBUY" in signal_line(signal, color=True)
    assert json.loads(json_line(signal.to_dict()))["price"] == 60112.4
    assert recovery_line(Recovery(True, 3, None, "e")).startswith("resumed: 3")
    assert "epoch_changed" in recovery_line(Recovery(False, 0, "epoch_changed", "e", "1-0"))
