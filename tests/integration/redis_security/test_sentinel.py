"""Redis Sentinel: a master, a replica and three sentinels; a failover mid-stream.

A gateway and a monitor are configured with only the sentinels' addresses. A test
publisher (our ``create_redis`` on the same URL) sends numbered signals every 20 ms and
retries on error, like any at-least-once publisher. Then, while signals flow, either
``SENTINEL FAILOVER`` promotes the replica (planned) or the master is SIGKILLed and the
sentinels promote the replica once they agree it is down (a crash). What the test proves
(and docs/security.md states):

- signals keep flowing: every signal published once the gateway is subscribed again
  arrives, in order, exactly once; those published before the failover all arrived;
- loss is confined to the failover window (Pub/Sub is at-most-once) and is reported;
- the monitor keeps working through the failover and its signals reach the client;
- the Socket.IO manager follows the new master (an admin broadcast arrives again).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import httpx
import pytest

from common.constants import DEFAULT_CHANNEL
from common.redis import REDIS_ERRORS, create_redis
from tests.conftest import ClientFactory
from tests.integration.redis_security.conftest import Services
from tests.integration.redis_security.servers import MASTER_NAME, SentinelGroup, wait_until
from tests.integration.redis_security.test_acl_tls import ADMIN_TOKEN, MONITOR_ENV

PUBLISH_INTERVAL_S = 0.02


class NumberedPublisher:
    def __init__(self, url: str) -> None:
        self.client = create_redis(url)
        self.published: list[int] = []
        self.errors = 0

    async def run(self) -> None:
        seq = 0
        while True:
            message = {"type": "BUY", "price": 1.0, "symbol": "FAILOVER", "seq": seq}
            try:
                await self.client.publish(DEFAULT_CHANNEL, json.dumps(message))
            except REDIS_ERRORS:
                self.errors += 1  # retried with the same number: at-least-once publisher
                await asyncio.sleep(0.05)
                continue
            self.published.append(seq)
            seq += 1
            await asyncio.sleep(PUBLISH_INTERVAL_S)


def seqs(signals: list[dict[str, Any]]) -> list[int]:
    return [s["seq"] for s in signals if s.get("symbol") == "FAILOVER"]


async def wait_seq(signals: list[dict[str, Any]], at_least: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not (got := seqs(signals)) or got[-1] < at_least:
        assert time.monotonic() < deadline, f"signal {at_least} not received; last {got[-1:]}"
        await asyncio.sleep(0.02)


async def broadcast_until_received(
    base_url: str, system: list[dict[str, Any]], message: str, timeout_s: float
) -> None:
    """The manager reconnects on its own schedule (1 s, then doubling); retry until it is back."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=5) as http:
        while not any(m.get("message") == message for m in system):
            assert time.monotonic() < deadline, f"broadcast {message!r} never arrived"
            resp = await http.post(
                f"{base_url}/api/broadcast",
                json={"message": message},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            assert resp.status_code == 202
            await asyncio.sleep(0.5)


@pytest.mark.parametrize("cause", ["planned", "master_killed"])
async def test_signals_keep_flowing_through_a_sentinel_failover(
    cause: str, sentinel_group: SentinelGroup, services: Services, client_factory: ClientFactory
) -> None:
    group = sentinel_group
    await asyncio.to_thread(wait_until, group.ready_for_failover, 20, "ready for failover")
    gateway = services(
        "gateway", redis_url=group.url, admin_token=ADMIN_TOKEN, redis_backoff_max_s=0.5
    )
    monitor = services("monitor", redis_url=group.url, redis_backoff_max_s=0.5, **MONITOR_ENV)
    client = await client_factory(gateway.base_url)
    await broadcast_until_received(gateway.base_url, client.system, "before", 10)

    publisher = NumberedPublisher(group.url)
    task = asyncio.create_task(publisher.run())
    try:
        await wait_seq(client.signals, 20, 10)
        failover_at = len(publisher.published)
        started = time.monotonic()
        if cause == "planned":
            with group.sentinel(0) as sentinel:
                assert sentinel.execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
        else:
            group.master.kill()
        await asyncio.to_thread(
            wait_until, lambda: group.master_port_now() == group.replica_port, 20, "failed over"
        )
        await asyncio.to_thread(gateway.wait_ready, 15)
        promoted_s = time.monotonic() - started
        resumed_at = len(publisher.published)
        await wait_seq(client.signals, resumed_at + 50, 15)
        monitor_signals_before = sum(1 for s in client.signals if s.get("strategy"))
        await asyncio.to_thread(monitor.wait_ready, 15)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await publisher.client.aclose()

    got = seqs(client.signals)
    assert got == sorted(set(got)), "signals out of order or duplicated across the failover"
    received = set(got)
    # A crash may beat Redis to writing the last acknowledged PUBLISH to the gateway: Redis
    # answers the publisher and feeds subscribers in the same event-loop turn, in no set order.
    sure = failover_at if cause == "planned" else failover_at - 1
    assert set(range(sure)) <= received, "signals published before the failover lost"
    assert set(range(resumed_at, got[-1] + 1)) <= received, "loss after the gateway resubscribed"
    lost = sorted(set(range(failover_at, resumed_at)) - received)
    print(
        f"\n{cause} failover: promoted+resubscribed in {promoted_s:.2f}s; published in "
        f"that window "
        f"{resumed_at - failover_at}, lost {len(lost)}; publisher errors {publisher.errors}; "
        f"relay reconnects {gateway.metric('qs_redis_reconnects_total', {'loop': 'relay'})}"
    )

    # The monitor still publishes (through the new master) and the manager follows it too.
    deadline = time.monotonic() + 15
    while sum(1 for s in client.signals if s.get("strategy")) <= monitor_signals_before:
        assert time.monotonic() < deadline, f"no monitor signal after failover\n{monitor.logs()}"
        await asyncio.sleep(0.05)
    await broadcast_until_received(gateway.base_url, client.system, "after", 15)
