"""Faults that must lose nothing: Redis outage, gateway crash, rolling restart, monitor kill.

Ground truth is the history stream: the monitor appends to it and publishes in one atomic
step, so its entries are exactly what was published. Every client must end with exactly
those signals, in order, once each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
import redis.asyncio as aioredis

from common.constants import history_key
from tests.conftest import ServiceFactory
from tests.support.clients import RecordingClient
from tests.support.proxy import TcpBalancer
from tests.support.redis_server import AOF_ALWAYS, ProcessRedis, own_redis
from tests.support.services import ServiceProcess

pytestmark = pytest.mark.e2e

CHANNEL = "quantum_signals"
FAST = {"redis_backoff_max_s": 0.5, "shutdown_grace_s": 8}
MONITOR = {
    **FAST,
    "tick_interval_s": 0.05,
    "symbols": "AAA,BBB,CCC,DDD",
    "lease_ttl_s": 2,
    "sim_volatility": 0.01,
}


@pytest.fixture
def redis_server() -> Iterator[ProcessRedis]:
    """A Redis that persists every write (AOF, fsync always), as production should run it."""
    with own_redis(*AOF_ALWAYS) as server:
        yield server


async def published_ids(redis_url: str) -> list[str]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        entries = await client.xrange(history_key(CHANNEL))
    finally:
        await client.aclose()
    import orjson

    return [orjson.loads(fields[b"data"])["id"] for _, fields in entries]


async def settle(clients: list[RecordingClient], expected: int, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(len(c.signals) < expected for c in clients):
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # anything extra (a duplicate) arrives right behind


def report_and_check(name: str, ids: list[str], clients: list[RecordingClient]) -> None:
    print(f"\n[{name}] published={len(ids)}")
    for i, client in enumerate(clients):
        got = [s["id"] for s in client.signals]
        dupes = len(got) - len(set(got))
        missing = len(set(ids) - set(got))
        in_order = got == sorted(got, key=ids.index) if not missing else "n/a"
        print(
            f"  client {i}: delivered={len(got)} duplicates={dupes} missing={missing} "
            f"in_order={in_order} connects={client.connects} recoveries={client.recoveries}"
        )
    for client in clients:
        assert [s["id"] for s in client.signals] == ids


async def wait_signals(clients: list[RecordingClient], count: int, timeout_s: float = 20) -> None:
    for client in clients:
        await client.wait_for(count, timeout_s=timeout_s)


async def time_until_recovered(clients: list[RecordingClient], timeout_s: float = 15) -> float:
    """Seconds until every client that lost its gateway is back and has been told how its
    resume went."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        lost = [c for c in clients if c.connects > 1 or not c.sio.connected]
        if lost and all(c.sio.connected and c.recoveries for c in lost):
            return time.monotonic() - started
        await asyncio.sleep(0.01)
    raise AssertionError("clients did not reconnect and recover in time")


async def connect_all(urls: list[str]) -> list[RecordingClient]:
    clients = [RecordingClient(url, resume=True) for url in urls]
    for client in clients:
        await client.connect()
    return clients


async def disconnect_all(clients: list[RecordingClient]) -> None:
    await asyncio.gather(*(c.disconnect() for c in clients if c.sio.connected))


async def test_redis_outage_loses_nothing(
    service_factory: ServiceFactory, redis_server: ProcessRedis, redis_url: str
) -> None:
    gateways = [service_factory("gateway", **FAST) for _ in range(2)]
    clients = await connect_all([g.base_url for g in gateways for _ in range(2)])
    try:
        monitor = service_factory("monitor", **MONITOR)
        await wait_signals(clients, 5)
        redis_server.stop()
        await asyncio.sleep(3)
        redis_server.start()
        started = time.monotonic()
        for gateway in gateways:
            gateway.wait_ready(15)
        recovered_s = time.monotonic() - started
        count = len(clients[0].signals)
        await wait_signals(clients, count + 5)
        assert monitor.terminate() == 0
        ids = await published_ids(redis_url)
        await settle(clients, len(ids))
        print(
            f"\n[redis outage] gateways ready again {recovered_s:.2f}s after Redis restarted; "
            f"backfilled={[g.metric('qs_gateway_backfilled_signals_total') for g in gateways]}"
        )
        report_and_check("redis outage", ids, clients)
    finally:
        await disconnect_all(clients)


@asynccontextmanager
async def behind_a_balancer(
    service_factory: ServiceFactory,
) -> AsyncIterator[tuple[list[ServiceProcess], list[RecordingClient]]]:
    """Two gateways behind one address (a Kubernetes Service), four resuming clients."""
    gateways = [service_factory("gateway", **FAST) for _ in range(2)]
    async with TcpBalancer([g.port for g in gateways]) as balancer:
        clients = await connect_all([balancer.url] * 4)
        try:
            yield gateways, clients
        finally:
            await disconnect_all(clients)


async def stop_and_check(
    name: str, monitor: ServiceProcess, redis_url: str, clients: list[RecordingClient]
) -> None:
    """Stop publishing, then every client must hold exactly what the stream holds."""
    assert await asyncio.to_thread(monitor.terminate) == 0
    ids = await published_ids(redis_url)
    await settle(clients, len(ids))
    report_and_check(name, ids, clients)


async def test_gateway_kill_and_monitor_takeover_lose_nothing(
    service_factory: ServiceFactory, redis_url: str
) -> None:
    async with behind_a_balancer(service_factory) as (gateways, clients):
        monitors = [service_factory("monitor", **MONITOR) for _ in range(2)]
        await wait_signals(clients, 5)
        gateways[0].kill()
        recovery_s = await time_until_recovered(clients)
        moved = [c for c in clients if c.connects > 1]
        print(
            f"\n[gateway kill] {len(moved)} clients moved and recovered "
            f"{recovery_s:.2f}s after the kill"
        )
        monitors[0].kill()
        await wait_signals(clients, len(clients[0].signals) + 10, timeout_s=30)
        await stop_and_check("gateway kill + monitor takeover", monitors[1], redis_url, clients)
        assert moved, "the killed gateway had clients"
        assert all(r["complete"] for c in moved for r in c.recoveries)


async def test_rolling_restart_loses_nothing(
    service_factory: ServiceFactory, redis_url: str
) -> None:
    replacements: list[ServiceProcess] = []
    async with behind_a_balancer(service_factory) as (gateways, clients):
        try:
            monitor = service_factory("monitor", **MONITOR)
            await wait_signals(clients, 5)
            for old in gateways:
                started = time.monotonic()
                code = await asyncio.to_thread(old.terminate, 10)
                drain_s = time.monotonic() - started
                assert code == 0
                assert drain_s < 8
                replacements.append(ServiceProcess("gateway", old.env, port=old.port))
                await asyncio.to_thread(replacements[-1].start)
                print(f"\n[rolling] replica on :{old.port} drained and exited in {drain_s:.2f}s")
                await wait_signals(clients, len(clients[0].signals) + 3)
            await stop_and_check("rolling restart", monitor, redis_url, clients)
        finally:
            for gateway in replacements:
                gateway.stop()
