"""Sentinel failover to a replica that lost writes: resuming clients are told, not misled.

The replica is frozen (SIGSTOP) and cut off (the master drops its replication link, so no
bytes wait in a socket buffer for it) while the master acknowledges more signals; then the
master is killed (SIGKILL), the replica thawed and promoted. Its history ends before the
signals clients last saw. The gateway, knowing a position past the new master's stream,
starts a new epoch; every resume from before is answered ``complete: false, reason:
"epoch_changed"`` and replays what the new master has after the client's position (or
after the point where the epochs part), once, in order.
"""

from __future__ import annotations

import asyncio
import os
import signal

import redis as sync_redis

from common.constants import DEFAULT_CHANNEL
from common.offsets import parse_position
from common.publish import SignalPublisher
from common.redis import REDIS_ERRORS, create_redis
from common.schema import make_signal
from tests.integration.redis_security.conftest import Services
from tests.integration.redis_security.servers import SentinelGroup, wait_until
from tests.support.clients import RecordingClient


async def publish(publisher: SignalPublisher, n: int, attempts: int = 100) -> str:
    sig = make_signal(signal_id=f"F:t:{n}", signal_type="BUY", price=1.0, symbol="F", strategy="t")
    for _ in range(attempts):
        try:
            position = await publisher.publish(sig)
        except REDIS_ERRORS:
            await asyncio.sleep(0.1)  # the failover is under way: retry like the monitor
            continue
        assert position is not None
        return position
    raise AssertionError(f"signal {n} never published")


async def resume(url: str, offset: str) -> RecordingClient:
    client = RecordingClient(url)
    await client.sio.connect(url, transports=["websocket"], auth={"offset": offset})
    await client.wait_for(1, attr="recoveries", timeout_s=15)
    return client


async def test_failover_to_a_replica_that_lost_writes_starts_a_new_epoch(
    sentinel_group: SentinelGroup, services: Services
) -> None:
    group = sentinel_group
    await asyncio.to_thread(wait_until, group.ready_for_failover, 20, "ready for failover")
    gateway = services("gateway", redis_url=group.url, redis_backoff_max_s=0.5)
    redis = create_redis(group.url)
    publisher = SignalPublisher(redis, DEFAULT_CHANNEL)
    try:
        kept = [await publish(publisher, n) for n in range(5)]
        assert await redis.execute_command("WAIT", 1, 2000) == 1  # the replica has these
        assert group.replica.proc is not None
        os.kill(group.replica.proc.pid, signal.SIGSTOP)
        try:
            with sync_redis.Redis(port=group.master_port, socket_timeout=2) as master:
                master.execute_command("CLIENT", "KILL", "TYPE", "replica")
            lost = [await publish(publisher, n) for n in range(5, 10)]
            group.master.kill()
        finally:
            os.kill(group.replica.proc.pid, signal.SIGCONT)
        await asyncio.to_thread(
            wait_until, lambda: group.master_port_now() == group.replica_port, 30, "promoted"
        )
        await asyncio.to_thread(gateway.wait_ready, 20)
        fresh = [await publish(publisher, n) for n in range(10, 13)]
    finally:
        await redis.aclose()

    old_epoch = parse_position(kept[0]).epoch  # type: ignore[union-attr]
    new_epoch = parse_position(fresh[0]).epoch  # type: ignore[union-attr]
    assert old_epoch != new_epoch
    assert {parse_position(p).epoch for p in lost} == {old_epoch}  # type: ignore[union-attr]
    cases = {
        kept[-1]: ["F:t:10", "F:t:11", "F:t:12"],  # survived: from there
        lost[-1]: ["F:t:10", "F:t:11", "F:t:12"],  # lost: from where the epochs part
        kept[2]: ["F:t:3", "F:t:4", "F:t:10", "F:t:11", "F:t:12"],
    }
    for since, expected in cases.items():
        client = await resume(gateway.base_url, since)
        try:
            await client.wait_for(len(expected))
            await asyncio.sleep(0.3)
            assert [s["id"] for s in client.signals] == expected, since
            answer = client.recoveries[0]
            assert (answer["complete"], answer["reason"], answer["epoch"]) == (
                False,
                "epoch_changed",
                new_epoch,
            )
            assert all(str(s["offset"]).startswith(f"{new_epoch}:") for s in client.signals)
        finally:
            await client.disconnect()
    assert gateway.metric("qs_gateway_history_epoch_changes_total") == 1
