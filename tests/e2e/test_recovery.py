"""Client resume: missed signals in order, exactly once, honouring symbols, and a clear
answer when the gap is older than the retained history."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
import socketio

from common.constants import DEFAULT_CHANNEL, history_key
from common.publish import SignalPublisher
from common.schema import make_signal
from tests.conftest import ClientFactory, ServiceFactory
from tests.support.clients import RecordingClient

pytestmark = pytest.mark.e2e


async def publish_series(client: aioredis.Redis, symbols: list[str], start: int) -> list[str]:
    publisher = SignalPublisher(client, DEFAULT_CHANNEL)
    offsets = []
    for i, symbol in enumerate(symbols, start):
        signal = make_signal(
            signal_id=f"{symbol}:t:{i}",
            signal_type="BUY",
            price=float(i),
            symbol=symbol,
            strategy="t",
        )
        offset = await publisher.publish(signal)
        assert offset is not None
        offsets.append(offset)
    return offsets


async def test_resume_sends_the_gap_in_order_then_live(
    service_factory: ServiceFactory, client_factory: ClientFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    live = await client_factory(gateway.base_url)
    first = await publish_series(redis_client, ["AAA", "BBB"], 0)
    await live.wait_for(2)

    # A client that saw only the first signal comes back, wanting AAA only.
    missed = await publish_series(redis_client, ["AAA", "BBB", "AAA"], 2)
    await live.wait_for(5)
    resumer = RecordingClient(gateway.base_url)
    await resumer.sio.connect(
        gateway.base_url, transports=["websocket"], auth={"offset": first[0], "symbols": ["AAA"]}
    )
    try:
        await resumer.wait_for(1, attr="recoveries")
        await publish_series(redis_client, ["AAA", "BBB"], 5)
        await resumer.wait_for(3)
        await asyncio.sleep(0.3)
        assert [s["id"] for s in resumer.signals] == ["AAA:t:2", "AAA:t:4", "AAA:t:5"]
        assert [s["offset"] for s in resumer.signals[:2]] == [missed[0], missed[2]]
        assert resumer.recoveries == [{"complete": True, "recovered": 2, "since": first[0]}]
        assert gateway.metric("qs_gateway_recovered_signals_total") == 2
        # A recovered signal looks exactly like the live one did.
        assert resumer.signals[0] == live.signals[2]
    finally:
        await resumer.disconnect()


async def test_resume_older_than_retention_says_incomplete(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    offsets = await publish_series(redis_client, ["AAA"] * 5, 0)
    await redis_client.xtrim(history_key(DEFAULT_CHANNEL), maxlen=2, approximate=False)
    resumer = RecordingClient(gateway.base_url)
    await resumer.sio.connect(
        gateway.base_url, transports=["websocket"], auth={"offset": offsets[0]}
    )
    try:
        await resumer.wait_for(1, attr="recoveries")
        assert resumer.recoveries[0]["complete"] is False
        assert [s["id"] for s in resumer.signals] == ["AAA:t:3", "AAA:t:4"]
        assert gateway.metric("qs_gateway_recovery_incomplete_total") == 1
    finally:
        await resumer.disconnect()


async def test_malformed_resume_offset_is_refused_with_a_reason(
    service_factory: ServiceFactory,
) -> None:
    gateway = service_factory("gateway")
    client = socketio.AsyncClient(reconnection=False)
    errors: list[object] = []
    client.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            gateway.base_url, transports=["websocket"], auth={"offset": "yesterday"}, wait_timeout=5
        )
    assert errors and "offset" in str(errors[0])
