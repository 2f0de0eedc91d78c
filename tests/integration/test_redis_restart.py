"""A Redis restart with persistence (AOF) loses nothing, so the gateway must not say it did.

After the restart every connection in the gateway's pool is dead. Before commands were
retried, each resume that drew one was told ``complete: false`` (14 of 16 in the probe that
found it) and the history API answered 503, although the whole gap was in the history.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from common.constants import DEFAULT_CHANNEL, OFFSET_FIELD
from common.publish import SignalPublisher
from common.schema import make_signal
from tests.support.clients import RecordingClient
from tests.support.redis_server import AOF, ProcessRedis, own_redis
from tests.support.services import ServiceProcess

RESUMERS = 16
GAP = 10
RESTART_PAUSE_S = 3.0
HOLD_MS = 500


@pytest.fixture
def aof_redis() -> Iterator[ProcessRedis]:
    # Later arguments win: this Redis persists every write and reloads it on start.
    with own_redis(*AOF) as server:
        yield server


@pytest.fixture
def gateway(aof_redis: ProcessRedis) -> Iterator[ServiceProcess]:
    proc = ServiceProcess("gateway", {"REDIS_URL": aof_redis.url}).start()
    try:
        yield proc
    finally:
        proc.stop()


async def publish(url: str, first: int, count: int) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        publisher = SignalPublisher(client, DEFAULT_CHANNEL)
        for i in range(first, first + count):
            signal = make_signal(
                signal_id=f"R:t:{i}", signal_type="BUY", price=float(i), symbol="R", strategy="t"
            )
            assert await publisher.publish(signal) is not None
    finally:
        await client.aclose()


async def hold_redis(url: str, hold_ms: int) -> None:
    """Redis answers no client for ``hold_ms`` (CLIENT PAUSE ALL ends by itself)."""
    client = aioredis.Redis.from_url(url)
    try:
        await client.client_pause(hold_ms, all=True)
    finally:
        await client.aclose()


async def resume(base_url: str, offset: str) -> RecordingClient:
    """A client that saw ``offset`` comes back; returns once it was told how recovery went."""
    client = RecordingClient(base_url)
    await client.sio.connect(
        base_url, transports=["websocket"], auth={OFFSET_FIELD: offset}, wait_timeout=10
    )
    await client.wait_for(1, attr="recoveries")
    return client


async def resume_all(base_url: str, offset: str) -> list[RecordingClient]:
    return await asyncio.gather(*(resume(base_url, offset) for _ in range(RESUMERS)))


def outcomes(clients: list[RecordingClient]) -> list[tuple[Any, Any, list[str]]]:
    return [
        (c.recoveries[0]["complete"], c.recoveries[0]["recovered"], [s["id"] for s in c.signals])
        for c in clients
    ]


async def test_resumes_and_history_right_after_a_restart_with_aof(
    aof_redis: ProcessRedis, gateway: ServiceProcess
) -> None:
    live = RecordingClient(gateway.base_url)
    await live.connect()
    await publish(aof_redis.url, 0, 1)
    await live.wait_for(1)
    offset = live.signals[0][OFFSET_FIELD]  # as a client has it, whatever its format
    await publish(aof_redis.url, 1, GAP)
    await live.wait_for(1 + GAP)
    await live.disconnect()
    expected = (True, GAP, [f"R:t:{i}" for i in range(1, 1 + GAP)])
    latest = f"{gateway.base_url}/api/signals/latest?limit=100"

    async with httpx.AsyncClient(timeout=10) as http:
        # Fill the gateway's pool as a busy gateway's is: Redis holds every command for a
        # moment, so each of these resumes and requests needs a connection of its own.
        await hold_redis(aof_redis.url, HOLD_MS)
        before, replies = await asyncio.gather(
            resume_all(gateway.base_url, offset),
            asyncio.gather(*(http.get(latest) for _ in range(RESUMERS))),
        )
        assert [r.status_code for r in replies] == [200] * RESUMERS
        assert outcomes(before) == [expected] * RESUMERS
        await asyncio.gather(*(c.disconnect() for c in before))

        aof_redis.stop()
        await asyncio.sleep(RESTART_PAUSE_S)
        aof_redis.start()  # returns once Redis answers PING

        started = time.monotonic()
        # The resumes and the first history request at once, as clients would come back.
        after, first = await asyncio.gather(resume_all(gateway.base_url, offset), http.get(latest))
        took = time.monotonic() - started
    try:
        assert outcomes(after) == [expected] * RESUMERS
        assert first.status_code == 200, first.text
        assert len(first.json()["signals"]) == 1 + GAP
        assert gateway.metric("qs_gateway_recovery_requests_total") == 2 * RESUMERS
        assert gateway.metric("qs_gateway_recovery_incomplete_total") == 0
        assert "Traceback" not in gateway.log_path.read_text()
        assert took < 10, took
    finally:
        await asyncio.gather(*(c.disconnect() for c in after))
