"""Property-based fuzzing of what the gateway reads from outside: channel messages and
client subscription payloads.

Properties, for any input:
- ``SignalEmitter.handle`` never raises;
- each message has exactly one outcome: emitted, or rejected and counted under one reason
  (or skipped as an already-emitted history offset);
- whatever is emitted can be encoded by Socket.IO exactly as the real server does it (the
  stand-in encodes every emit) and carries no NaN/Infinity;
- the next valid message is still delivered.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from socketio import packet

from common.schema import RejectReason
from gateway.clients.requests import (
    MAX_SYMBOL_LENGTH,
    MAX_SYMBOLS_PER_REQUEST,
    SymbolRequestError,
    parse_symbols,
)
from gateway.delivery.emitter import SignalEmitter
from gateway.metrics import GatewayMetrics

MAX_BYTES = 4096
VALID = {"type": "SELL", "price": 101.5, "symbol": "ETH-USD", "strategy": "fuzz"}
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class EncodingServer:
    """Stand-in for ``socketio.AsyncServer``: records emits and encodes each one as the
    real server does for every connected client, so an unencodable signal fails here too."""

    def __init__(self) -> None:
        self.emits: list[tuple[str, Any, dict[str, Any]]] = []

    async def emit(self, event: str, data: Any, **kwargs: Any) -> None:
        packet.Packet(packet.EVENT, data=[event, data], namespace="/").encode()
        json.dumps(data, allow_nan=False)  # NaN/Infinity never reach a client
        self.emits.append((event, data, kwargs))


class Harness:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.registry = CollectorRegistry()
        self.server = EncodingServer()
        self.fanout = SignalEmitter(
            self.server,
            GatewayMetrics(self.registry),
            MAX_BYTES,  # type: ignore[arg-type]
        )

    def counts(self) -> dict[str, float]:
        names = {
            "qs_gateway_signals_emitted_total": "emitted",
            "qs_gateway_signals_skipped_total": "skipped",
            "qs_gateway_signals_received_total": "received",
        }
        out = {r.value: 0.0 for r in RejectReason} | dict.fromkeys(names.values(), 0.0)
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name == "qs_gateway_signals_rejected_total":
                    out[sample.labels["reason"]] = sample.value
                elif sample.name in names:
                    out[names[sample.name]] = sample.value
        return out

    def feed(self, raw: bytes) -> str:
        """Handle ``raw`` then a valid message; return the outcome of ``raw``."""
        before = self.counts()
        self.loop.run_until_complete(self.fanout.handle(raw))
        after = self.counts()
        changed = [k for k in after if k != "received" and after[k] != before[k]]
        assert after["received"] == before["received"] + 1
        assert len(changed) == 1, f"expected one outcome, got {changed}"
        assert after[changed[0]] == before[changed[0]] + 1
        marker = {**VALID, "n": int(after["received"])}
        self.loop.run_until_complete(self.fanout.handle(json.dumps(marker).encode()))
        assert self.server.emits[-1][1] == marker, "the next valid message was not delivered"
        return changed[0]


# --- what the channel might carry -------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(st.characters(codec=None), max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)
signal_shaped = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["BUY", "SELL", "buy", "", "HOLD"]) | json_values,
        "price": st.floats() | st.integers() | json_values,
        "symbol": st.text(max_size=80) | json_values,
        "strategy": st.text(max_size=80) | json_values,
        "id": st.text(max_size=250) | json_values,
        "ts": st.floats() | st.integers() | json_values,
        "v": st.integers() | json_values,
        "extra": json_values,
    },
)


def dumps(value: Any) -> bytes:
    # allow_nan: the stdlib writes NaN/Infinity tokens, which a careless publisher may send.
    return json.dumps(value, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")


def nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    made = Harness()
    yield made
    made.loop.close()


@FUZZ
@given(raw=st.binary(max_size=MAX_BYTES + 64))
def test_arbitrary_bytes(harness: Harness, raw: bytes) -> None:
    harness.feed(raw)


@FUZZ
@given(value=json_values)
def test_arbitrary_json(harness: Harness, value: Any) -> None:
    harness.feed(dumps(value))


@FUZZ
@given(value=signal_shaped)
def test_signal_shaped_objects_with_wrong_types(harness: Harness, value: dict[str, Any]) -> None:
    outcome = harness.feed(dumps(value))
    price = value.get("price")
    if isinstance(price, float) and not math.isfinite(price):
        assert outcome != "emitted"


@FUZZ
@given(depth=st.integers(0, 900) | st.integers(1024, 1500), leaf=json_scalars)
def test_deep_json(harness: Harness, depth: int, leaf: Any) -> None:
    harness.feed(dumps({**VALID, "extra": nested(depth, leaf)}))


@FUZZ
@given(
    price=st.sampled_from(
        [
            "NaN",
            "Infinity",
            "-Infinity",
            "1e400",
            "-1e400",
            "1e308",
            "18446744073709551616",
            "-9223372036854775809",
            "1" * 400,
            "0e0",
        ]
    ),
    ts=st.sampled_from(["NaN", "1e400", "1700000000.5", "-1", "1" * 50]),
)
def test_huge_numbers_nan_and_infinity(harness: Harness, price: str, ts: str) -> None:
    raw = f'{{"type":"BUY","price":{price},"ts":{ts},"symbol":"BTC-USD"}}'.encode()
    outcome = harness.feed(raw)
    if price in {"NaN", "Infinity", "-Infinity", "1e400", "-1e400"} or ts in {"NaN", "1e400"}:
        assert outcome != "emitted"


@FUZZ
@given(text=st.text(st.characters(codec=None), min_size=1, max_size=200))
def test_unicode_everywhere(harness: Harness, text: str) -> None:
    harness.feed(dumps({"type": "BUY", "price": 1, "symbol": text[:64], text: text}))


@FUZZ
@given(size=st.integers(MAX_BYTES - 64, MAX_BYTES + 64))
def test_size_limit_boundary(harness: Harness, size: int) -> None:
    head = json.dumps({**VALID, "pad": ""}).encode()
    raw = head[:-2] + b"x" * max(0, size - len(head)) + b'"}'
    outcome = harness.feed(raw)
    assert (outcome == RejectReason.TOO_LARGE.value) == (len(raw) > MAX_BYTES)


def test_nesting_that_passes_orjson_but_breaks_socketio_encoding_is_rejected() -> None:
    made = Harness()
    try:
        # Built as text: the stdlib encoder itself cannot write this depth.
        raw = dumps(VALID)[:-1] + b', "extra": ' + b"[" * 900 + b"]" * 900 + b"}"
        outcome = made.feed(raw)
    finally:
        made.loop.close()
    assert outcome == RejectReason.INVALID.value


def test_every_reason_is_reachable(harness: Harness) -> None:
    assert harness.feed(b"x" * (MAX_BYTES + 1)) == RejectReason.TOO_LARGE.value
    assert harness.feed(b"\xff\xfe") == RejectReason.NOT_JSON.value
    assert harness.feed(b"[1,2]") == RejectReason.NOT_OBJECT.value
    assert harness.feed(b'{"type":"BUY","price":"1"}') == RejectReason.INVALID.value
    assert harness.feed(json.dumps(VALID).encode()) == "emitted"


# --- what a client might send with ``subscribe`` / ``unsubscribe`` ----------------------

client_payloads = (
    json_values
    | st.lists(st.text(max_size=80), max_size=250)
    | st.dictionaries(
        st.just("symbols"), st.lists(st.text(max_size=80), max_size=250) | json_values
    )
)


@FUZZ
@given(payload=client_payloads)
def test_parse_symbols_accepts_or_refuses_cleanly(payload: Any) -> None:
    try:
        symbols = parse_symbols(payload)
    except SymbolRequestError as exc:
        assert str(exc)
        return
    assert isinstance(symbols, list)
    assert len(symbols) <= MAX_SYMBOLS_PER_REQUEST
    assert len(set(symbols)) == len(symbols)
    for symbol in symbols:
        assert isinstance(symbol, str)
        assert symbol and symbol == symbol.strip()
        assert len(symbol) <= MAX_SYMBOL_LENGTH
