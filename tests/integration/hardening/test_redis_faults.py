"""Redis faults between history reads: the history API never answers wrong.

Hypothesis picks a sequence of faults (every client connection killed, a short stop and
start, reads while Redis is stopped) against a real redis-server with AOF under a real
gateway. After each fault the test reads ``/api/signals/latest``: while Redis answers, the
answer is 200 with exactly the stored signals; 503 only while Redis is really down; never
a 500, and the gateway never logs a traceback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.constants import DEFAULT_CHANNEL
from common.publish import SignalPublisher
from common.schema import make_signal
from tests.support.redis_server import AOF, ProcessRedis, own_redis
from tests.support.services import ServiceProcess

STORED = 5
FAULTS = ("kill", "restart", "kill_twice", "read_while_down", "none")


@pytest.fixture(scope="module")
def aof_redis() -> Iterator[ProcessRedis]:
    with own_redis(*AOF) as server:
        yield server


@pytest.fixture(scope="module")
def stored_ids(aof_redis: ProcessRedis) -> list[str]:
    async def publish() -> None:
        client = aioredis.Redis.from_url(aof_redis.url)
        publisher = SignalPublisher(client, DEFAULT_CHANNEL)
        for i in range(STORED):
            signal = make_signal(
                signal_id=f"F:t:{i}", signal_type="SELL", price=1.0 + i, symbol="F", strategy="t"
            )
            await publisher.publish(signal)
        await client.aclose()

    asyncio.run(publish())
    return [f"F:t:{i}" for i in reversed(range(STORED))]  # newest first


@pytest.fixture(scope="module")
def gateway(aof_redis: ProcessRedis, stored_ids: list[str]) -> Iterator[ServiceProcess]:
    proc = ServiceProcess("gateway", {"REDIS_URL": aof_redis.url}).start()
    try:
        yield proc
    finally:
        proc.stop()


def kill_clients(server: ProcessRedis) -> None:
    with redis.Redis.from_url(server.url) as admin:
        admin.client_kill_filter(_type="normal", skipme=True)


def read_latest(http: httpx.Client, gateway: ServiceProcess) -> httpx.Response:
    return http.get(f"{gateway.base_url}/api/signals/latest", params={"limit": 50})


def check_answer(response: httpx.Response, redis_up: bool, expected: list[str]) -> None:
    assert response.status_code != 500, response.text
    if redis_up:
        assert response.status_code == 200, response.text
        assert [s["id"] for s in response.json()["signals"]] == expected
    else:
        assert response.status_code == 503, response.text


def apply_fault(
    fault: str, server: ProcessRedis, pause_s: float, check_down: Callable[[], None]
) -> None:
    if fault == "kill":
        kill_clients(server)
    elif fault == "kill_twice":
        kill_clients(server)
        kill_clients(server)
    elif fault == "restart":
        server.stop()
        time.sleep(pause_s)
        server.start()
    elif fault == "read_while_down":
        server.stop()
        try:
            check_down()
        finally:
            server.start()


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(FAULTS), st.floats(min_value=0.0, max_value=0.5)),
        min_size=1,
        max_size=4,
    ),
    reads=st.integers(min_value=1, max_value=4),
)
def test_history_api_answers_right_through_redis_faults(
    aof_redis: ProcessRedis,
    gateway: ServiceProcess,
    stored_ids: list[str],
    steps: list[tuple[str, float]],
    reads: int,
) -> None:
    with httpx.Client(timeout=30) as http:

        def down() -> None:
            check_answer(read_latest(http, gateway), False, stored_ids)

        for fault, pause_s in steps:
            apply_fault(fault, aof_redis, pause_s, down)
            # Redis answers again: so must the gateway, from its very first request on.
            for response in [read_latest(http, gateway) for _ in range(reads)]:
                check_answer(response, True, stored_ids)
    log = gateway.log_path.read_text()
    assert "Traceback" not in log, log[-3000:]
