"""Schema version 2 end to end: a real monitor's signals reach a Socket.IO client whole."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from common.constants import DEFAULT_CHANNEL, OFFSET_FIELD
from common.schema import Signal
from tests.conftest import ClientFactory, ServiceFactory
from tests.support.clients import RecordingClient

pytestmark = pytest.mark.e2e

#: Each strategy's default parameters and the indicators its signals carry.
EXPECTED: dict[str, tuple[dict[str, float], set[str]]] = {
    "sma_cross": ({"fast": 5, "slow": 20}, {"sma_fast", "sma_slow"}),
    "ema_cross": ({"fast": 12, "slow": 26}, {"ema_fast", "ema_slow"}),
    "rsi": ({"period": 14, "overbought": 70.0, "oversold": 30.0}, {"rsi", "rsi_prev"}),
    "macd_cross": (
        {"fast": 12, "slow": 26, "signal": 9},
        {"macd", "macd_signal", "macd_histogram"},
    ),
    "bollinger": ({"period": 20, "width": 2.0}, {"bb_upper", "bb_middle", "bb_lower"}),
}
REASON_START = {
    "sma_cross": "SMA 5 crossed ",
    "ema_cross": "EMA 12 crossed ",
    "rsi": "RSI 14 ",
    "macd_cross": "MACD 12/26 crossed ",
    "bollinger": "Close broke ",
}


async def wait_for_every_strategy(client: RecordingClient, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while {s["strategy"] for s in client.signals} != set(EXPECTED):
        seen = sorted({s["strategy"] for s in client.signals})
        assert time.monotonic() < deadline, f"only {seen} signalled within {timeout_s} s"
        await asyncio.sleep(0.05)


async def test_a_client_receives_version_2_signals_with_every_field_as_published(
    service_factory: ServiceFactory, client_factory: ClientFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    client = await client_factory(gateway.base_url)
    channel: Any = redis_client.pubsub()  # redis-py types pubsub loosely
    await channel.subscribe(DEFAULT_CHANNEL)
    try:
        # BTC-USD starts at 60,000, so every reason quotes a price with a thousands separator.
        service_factory(
            "monitor", tick_interval_s=0.02, symbols="BTC-USD", strategies=",".join(EXPECTED)
        )
        await wait_for_every_strategy(client, timeout_s=45)
        received = list(client.signals)
        by_id = await published_until(channel, {s["id"] for s in received}, timeout_s=10)
    finally:
        await channel.aclose()

    for signal in received:
        params, indicators = EXPECTED[signal["strategy"]]
        assert signal["v"] == 2 and signal["timeframe"] == "20ms"
        assert signal["params"] == params
        assert set(signal["indicators"]) == indicators
        assert all(isinstance(v, float) for v in signal["indicators"].values())
        assert signal["reason"].startswith(REASON_START[signal["strategy"]])
        assert signal["reason"].endswith(f" at {signal['price']:,.2f}")
        assert "," in signal["reason"]
        Signal.model_validate(signal)
        # The gateway adds the history position and changes nothing else.
        relayed = {k: v for k, v in signal.items() if k != OFFSET_FIELD}
        sent = {k: v for k, v in by_id[signal["id"]].items() if k != OFFSET_FIELD}
        assert relayed == sent
        assert list(relayed) == list(sent)  # the field order too


async def published_until(
    channel: Any, ids: set[str], timeout_s: float
) -> dict[str, dict[str, Any]]:
    """Messages read from the channel itself, by id, until every one of ``ids`` is among them."""
    out: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    while not ids <= out.keys():
        assert time.monotonic() < deadline, f"never seen on the channel: {ids - out.keys()}"
        message = await channel.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None:
            signal = orjson.loads(message["data"])
            out[signal["id"]] = signal
    return out
