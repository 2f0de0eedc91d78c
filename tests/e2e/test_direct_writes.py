"""Direct WebSocket writes keep the order when a client falls behind and catches up.

The gateway writes a signal straight to a client's WebSocket while nothing is waiting for
that client, and queues it for the socket's writer task once the transport pushes back
(gateway/wire/direct.py). A client that stops reading for a while, then reads everything, must
see every signal once and in order across both paths, and both paths must have been used.
"""

from __future__ import annotations

import asyncio
import json

import orjson
import pytest
import redis.asyncio as aioredis

from common.constants import DEFAULT_CHANNEL, SIGNAL_EVENT
from tests.conftest import ClientFactory, ServiceFactory
from tests.support.clients import raw_socketio_websocket

pytestmark = pytest.mark.e2e

SIGNALS = 1200
RATE = 400  # per second: signals keep arriving while the paused client catches up
PAUSE_S = 1.5
PAD = "x" * 16_000  # 1.5 s of these is more than the kernel's socket buffers hold
DELIVERIES = "qs_gateway_deliveries_total"


def signal_seq(frame: str) -> int | None:
    """The ``seq`` of a ``new_signal`` frame (``42["new_signal",{...}]``), else None."""
    if not frame.startswith("42"):
        return None  # Engine.IO ping or another Socket.IO packet
    event, payload = json.loads(frame[2:])
    return int(payload["seq"]) if event == SIGNAL_EVENT else None


async def publish_paced(client: aioredis.Redis) -> None:
    start = asyncio.get_running_loop().time()
    for seq in range(SIGNALS):
        await asyncio.sleep(max(0.0, start + seq / RATE - asyncio.get_running_loop().time()))
        signal = {"type": "BUY", "price": seq, "symbol": "BULK", "seq": seq, "pad": PAD}
        await client.publish(DEFAULT_CHANNEL, orjson.dumps(signal))


async def test_a_client_that_pauses_gets_everything_in_order(
    service_factory: ServiceFactory, client_factory: ClientFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway", transports="websocket", client_queue_max=100_000)
    paused = await raw_socketio_websocket(gateway.port)
    reading = await client_factory(gateway.base_url)
    publisher = asyncio.create_task(publish_paced(redis_client))
    received: list[int] = []
    try:
        await asyncio.sleep(PAUSE_S)
        while len(received) < SIGNALS:  # catch up while signals keep coming
            seq = signal_seq(str(await asyncio.wait_for(paused.recv(), 10)))
            if seq is not None:
                received.append(seq)
        await publisher
        await reading.wait_for(SIGNALS, timeout_s=30)
    finally:
        publisher.cancel()
        paused.transport.abort()
    direct = gateway.metric(DELIVERIES, {"path": "direct"})
    queued = gateway.metric(DELIVERIES, {"path": "queued"})
    print(f"\n[direct writes] direct={direct:.0f} queued={queued:.0f} of {2 * SIGNALS}")
    assert received == list(range(SIGNALS))
    assert [s["seq"] for s in reading.signals] == list(range(SIGNALS))
    assert queued > 0, "the paused client never made the gateway queue"
    assert direct >= SIGNALS, "the reading client should have been written to directly"
