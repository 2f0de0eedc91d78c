"""History reads survive a Redis restart on their own (issue 12, 2b).

After Redis restarts, every pooled connection is dead and fails its first command. The
client here is built with no retries at all, so only the history's own retry can save the
read: a resuming client must not be told "incomplete" for an error a retry would cure.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from common.publish import SignalPublisher
from common.schema import make_signal
from gateway.delivery.history import History
from tests.support.redis_server import AOF_ALWAYS, ProcessRedis, own_redis

CHANNEL = "retry_test"


@pytest.fixture
def durable_redis() -> Iterator[ProcessRedis]:
    # AOF on every write: the data survives the restart, only the connections do not.
    with own_redis(*AOF_ALWAYS) as proc:
        yield proc


def no_retry_client(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), health_check_interval=0)


async def test_history_reads_retry_a_dropped_pooled_connection(
    durable_redis: ProcessRedis,
) -> None:
    client = no_retry_client(durable_redis.url)
    try:
        publisher = SignalPublisher(client, CHANNEL)
        for n in range(20):
            sig = make_signal(
                signal_id=f"S:t:{n}", signal_type="BUY", price=1.0, symbol="S", strategy="t"
            )
            await publisher.publish(sig)
        history = History(client, CHANNEL)
        epoch = await history.epoch(None)
        # Pool several connections, so each read below draws a dead one.
        await client.connection_pool.disconnect()
        conns = [await client.connection_pool.get_connection() for _ in range(4)]  # type: ignore[no-untyped-call]
        for conn in conns:
            await client.connection_pool.release(conn)
        durable_redis.stop()
        durable_redis.start()

        assert (await history.epoch(None)).epoch == epoch.epoch
        stats = await history.stats()
        assert stats is not None and stats.length == 20
        assert len([o async for o, _ in history.read(after=(0, 0))]) == 20
        assert (await history.tail())[0] > 0
        # Without the history's retry the same client fails on a dead connection.
        durable_redis.stop()
        durable_redis.start()
        with pytest.raises(RedisConnectionError):
            await client.xrange("whatever", count=1)
    finally:
        await client.aclose()
