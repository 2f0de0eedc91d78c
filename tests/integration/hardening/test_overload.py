"""A flood older than the overload bound, through a real gateway process and real Redis.

The signals carry history offsets from 5 s ago (the age the gateway measures), published in
one pipeline so they wait in the gateway's subscription together. The gateway must enter
overload, coalesce them, give an ordinary client every signal exactly once and in order,
give a client that connected with ``latest_only`` the newest signal of each symbol (and
fewer than all), count what it left out for that client, and leave overload once a fresh
signal arrives (docs/delivery.md, "Overload").
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
import redis.asyncio as redis_asyncio
import socketio

from common.constants import DEFAULT_CHANNEL, SIGNAL_EVENT
from tests.conftest import ServiceFactory

FLOOD = 600
SYMBOLS = ("BTC/USDT", "ETH/USDT")
P = "qs_gateway"


def signal(n: int, ms: int) -> bytes:
    return orjson.dumps(
        {
            "v": 1,
            "id": f"overload:{n}",
            "type": "BUY",
            "symbol": SYMBOLS[n % 2],
            "strategy": "flood",
            "price": float(n),
            "ts": ms / 1000,
            "offset": f"{ms}-{n}",
        }
    )


async def client(url: str, auth: dict[str, Any] | None) -> tuple[socketio.AsyncClient, list[Any]]:
    sio = socketio.AsyncClient(reconnection=False)
    got: list[Any] = []
    sio.on(SIGNAL_EVENT, got.append)
    await sio.connect(url, transports=["websocket"], auth=auth)
    return sio, got


@pytest.mark.timeout(90)
async def test_a_flood_past_the_bound_is_coalesced_and_only_opted_in_clients_lose_signals(
    service_factory: ServiceFactory, redis_url: str
) -> None:
    gateway = service_factory(
        "gateway", transports="websocket", overload_age_ms=200, log_level="warning"
    )
    every_sio, every = await client(gateway.base_url, None)
    latest_sio, latest = await client(gateway.base_url, {"latest_only": True})
    publisher = redis_asyncio.Redis.from_url(redis_url)
    try:
        old_ms = int(time.time() * 1000) - 5000
        async with publisher.pipeline(transaction=False) as pipe:
            for n in range(FLOOD):
                pipe.publish(DEFAULT_CHANNEL, signal(n, old_ms))
            await pipe.execute()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(every) < FLOOD:
            await asyncio.sleep(0.05)
        assert gateway.metric(f"{P}_overloaded") == 1
        await publisher.publish(DEFAULT_CHANNEL, signal(FLOOD, int(time.time() * 1000)))
        while time.monotonic() < deadline and len(every) < FLOOD + 1:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # anything late or doubled would arrive now
    finally:
        await publisher.aclose()
        for sio in (every_sio, latest_sio):
            await sio.disconnect()

    assert [s["price"] for s in every] == [float(n) for n in range(FLOOD + 1)]
    prices = [int(s["price"]) for s in latest]
    assert prices == sorted(set(prices)), "latest_only: out of order or doubled"
    assert len(prices) < FLOOD, "the opted-in client was sent every signal"
    assert {FLOOD - 2, FLOOD - 1, FLOOD} <= set(prices)  # the newest of each symbol
    assert gateway.metric(f"{P}_overload_episodes_total") == 1
    assert gateway.metric(f"{P}_overload_coalesced_signals_total") > 0
    dropped = gateway.metric(f"{P}_overload_dropped_deliveries_total")
    assert dropped == FLOOD + 1 - len(prices)
    assert gateway.metric(f"{P}_overloaded") == 0  # the fresh signal ended it
    assert gateway.metric(f"{P}_fanout_age_seconds_count") == FLOOD + 1
