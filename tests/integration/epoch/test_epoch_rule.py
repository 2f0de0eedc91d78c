"""The epoch rule in Redis (common/publish.py's Lua), against a real redis-server.

A new epoch starts when the history is gone (first use, FLUSHALL, a restart without
persistence) or when a caller knows a position the stream never reached (writes lost in a
failover); a caller whose known epoch is already stale changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import cast

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from common.constants import history_epoch_key, history_key
from common.offsets import ZERO, Position, parse_offset, parse_position
from common.publish import SignalPublisher, ensure_epoch, latest_signals
from common.redis import Backoff
from common.schema import make_signal
from monitor.metrics import MonitorMetrics
from monitor.publisher import BufferedPublisher
from tests.support.redis_server import ProcessRedis, own_redis

CHANNEL = "epoch_test"


@pytest.fixture
def server() -> Iterator[ProcessRedis]:
    with own_redis() as proc:
        yield proc


@pytest.fixture
async def client(server: ProcessRedis) -> AsyncIterator[aioredis.Redis]:
    redis = aioredis.Redis.from_url(server.url)
    try:
        yield redis
    finally:
        await redis.aclose()


def signal(n: int) -> dict[str, object]:
    return make_signal(signal_id=f"S:t:{n}", signal_type="BUY", price=1.0, symbol="S", strategy="t")


async def test_first_use_starts_an_epoch_at_the_streams_end(client: aioredis.Redis) -> None:
    fresh = await ensure_epoch(client, CHANNEL, None)
    assert (fresh.base, fresh.prev) == (ZERO, None)
    assert (await ensure_epoch(client, CHANNEL, None)).epoch == fresh.epoch
    # A stream from before epochs: its entries precede the first epoch's base.
    old_id = cast(bytes, await client.xadd(history_key("legacy"), {"data": "{}"}))
    legacy = await ensure_epoch(client, "legacy", None)
    assert legacy.base == parse_offset(old_id.decode())


async def test_positions_carry_the_epoch(client: aioredis.Redis) -> None:
    publisher = SignalPublisher(client, CHANNEL)
    first = parse_position(await publisher.publish(signal(1)))
    second = parse_position(await publisher.publish(signal(2)))
    assert first is not None and second is not None
    assert first.epoch == second.epoch == (await ensure_epoch(client, CHANNEL, None)).epoch
    latest = await latest_signals(client, CHANNEL, 5)
    assert [s["offset"] for s in latest] == [str(second), str(first)]


async def test_a_known_position_past_the_stream_starts_a_new_epoch_once(
    client: aioredis.Redis,
) -> None:
    publisher = SignalPublisher(client, CHANNEL)
    last = parse_position(await publisher.publish(signal(1)))
    assert last is not None and last.epoch is not None
    # What a replica that missed the last writes looks like to someone who saw them.
    lost = Position(last.epoch, (last.offset[0] + 1000, 0))
    renewed = await ensure_epoch(client, CHANNEL, lost)
    assert renewed.epoch != last.epoch
    assert (renewed.base, renewed.prev) == (last.offset, last.epoch)
    # A second detector with the same (now stale) knowledge changes nothing (CAS).
    assert await ensure_epoch(client, CHANNEL, lost) == renewed
    # Knowing a position the stream has reached changes nothing either.
    assert await ensure_epoch(client, CHANNEL, Position(renewed.epoch, last.offset)) == renewed


async def test_the_publisher_detects_its_own_lost_write(client: aioredis.Redis) -> None:
    publisher = SignalPublisher(client, CHANNEL)
    first = parse_position(await publisher.publish(signal(1)))
    assert first is not None
    # Redis "forgets" the last entry and everything after the first (a stale replica).
    await client.delete(history_key(CHANNEL))
    await client.xadd(history_key(CHANNEL), {"data": "{}"}, id=f"{first.offset[0] - 1}-0")
    after = parse_position(await publisher.publish(signal(2)))
    assert after is not None and after.epoch != first.epoch
    stored = cast(dict[bytes, bytes], await client.hgetall(history_epoch_key(CHANNEL)))
    assert stored[b"prev"].decode() == first.epoch


async def test_monitor_counts_the_epoch_change_after_flushall(client: aioredis.Redis) -> None:
    metrics = MonitorMetrics(CollectorRegistry())
    buffered = BufferedPublisher(SignalPublisher(client, CHANNEL), metrics, Backoff(), 10)
    for n in (1, 2):
        buffered.submit(signal(n))
        await buffered._publish_head()
    before = await ensure_epoch(client, CHANNEL, None)
    await client.flushall()
    buffered.submit(signal(3))
    await buffered._publish_head()
    after = await ensure_epoch(client, CHANNEL, None)
    assert after.epoch != before.epoch and (after.base, after.prev) == (ZERO, None)
    assert metrics.total("qs_monitor_history_epoch_changes_total") == 1


async def test_a_restart_without_persistence_starts_a_new_epoch(
    server: ProcessRedis, client: aioredis.Redis
) -> None:
    publisher = SignalPublisher(client, CHANNEL)
    before = parse_position(await publisher.publish(signal(1)))
    server.stop()
    server.start()
    await client.connection_pool.disconnect()
    after = parse_position(await publisher.publish(signal(2)))
    assert before is not None and after is not None and after.epoch != before.epoch
