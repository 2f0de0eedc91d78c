"""The consumer group on a real Redis: where a group starts, what a takeover claims and
when, the hand-back, and a group that Redis lost."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from common.constants import DEFAULT_CHANNEL
from common.publish import SignalPublisher
from notifier.consumer import StreamConsumer
from tests.integration.notifier.conftest import signal

DEST = "unit-dest"


def consumer(client: aioredis.Redis, name: str, claim_idle_ms: int = 60_000) -> StreamConsumer:
    return StreamConsumer(client, DEFAULT_CHANNEL, DEST, name, claim_idle_ms=claim_idle_ms, count=3)


async def publish(client: aioredis.Redis, numbers: range) -> list[str]:
    publisher = SignalPublisher(client, DEFAULT_CHANNEL)
    positions = [await publisher.publish(signal(i)) for i in numbers]
    return [str(p).split(":")[-1] for p in positions]


async def read_all(c: StreamConsumer) -> list[str]:
    ids: list[str] = []
    while batch := await c.read():
        ids += [e.id for e in batch]
    return ids


async def test_a_new_group_starts_at_the_end_of_the_stream(redis_client: aioredis.Redis) -> None:
    await publish(redis_client, range(3))  # history from before the destination existed
    a = consumer(redis_client, "a")
    await a.ensure_group()
    fresh = await publish(redis_client, range(3, 5))
    assert await read_all(a) == fresh


async def test_handed_back_entries_are_claimed_at_once_in_order(
    redis_client: aioredis.Redis,
) -> None:
    a, b = consumer(redis_client, "a"), consumer(redis_client, "b")
    await a.ensure_group()
    ids = await publish(redis_client, range(5))
    first = await a.read()  # 3 read, none settled
    await a.ack(first[0].id)
    assert await a.hand_back() == 2
    stop = asyncio.Event()
    # 60 s claim idle, yet the hand-back makes them claimable now.
    assert await asyncio.wait_for(b.take_over(stop), 5) == 2
    assert await read_all(b) == ids[1:]
    names = [c["name"].decode() for c in await redis_client.xinfo_consumers(a.stream, a.group)]
    assert names == ["b"]  # a, left with nothing pending, was deleted from the group


async def test_a_takeover_waits_for_an_entry_still_in_flight(
    redis_client: aioredis.Redis,
) -> None:
    a, b = consumer(redis_client, "a"), consumer(redis_client, "b", claim_idle_ms=60_000)
    await a.ensure_group()
    ids = await publish(redis_client, range(4))
    read = await a.read()  # a is stopping: the first in flight, two more read
    taking = asyncio.create_task(b.take_over(asyncio.Event()))
    await asyncio.sleep(0.5)
    assert not taking.done(), "read on while another consumer still had entries pending"
    await a.ack(read[0].id)  # a's attempt in flight succeeds...
    await a.hand_back()  # ...and it hands back what it will not deliver
    assert await asyncio.wait_for(taking, 5) == 2
    assert await read_all(b) == ids[1:]


async def test_a_crashed_consumers_entries_are_claimed_after_the_idle_time(
    redis_client: aioredis.Redis,
) -> None:
    a, b = consumer(redis_client, "a"), consumer(redis_client, "b", claim_idle_ms=300)
    await a.ensure_group()
    ids = await publish(redis_client, range(2))
    await a.read()  # then a dies: nothing acked, nothing handed back
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(b.take_over(asyncio.Event()), 5)
    assert loop.time() - started >= 0.2
    assert await read_all(b) == ids


async def test_a_group_redis_lost_is_recreated_after_the_last_settled_entry(
    redis_client: aioredis.Redis,
) -> None:
    a = consumer(redis_client, "a")
    await a.ensure_group()
    ids = await publish(redis_client, range(3))
    for entry in await a.read():
        await a.ack(entry.id)
    assert a.last_id == ids[-1]
    await redis_client.xgroup_destroy(a.stream, a.group)
    later = await publish(redis_client, range(3, 5))  # published while the group was gone
    await a.ensure_group()
    a.reread_pending()
    assert await read_all(a) == later
