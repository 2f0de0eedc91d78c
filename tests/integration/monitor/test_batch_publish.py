"""One bar close, one round trip: the batched publish script and its companions, real Redis.

Per signal the batch keeps what the single publish guaranteed: dedupe (within a batch and
across batches), the history entry and the Pub/Sub message in one atomic step, in order.
The bars and scores travel in the same round trip, ahead of the signals.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, cast

import orjson
import pytest
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

from common.constants import OFFSET_FIELD, bars_channel, bars_key, history_key, scores_key
from common.publish import SignalPublisher
from common.redis import REDIS_ERRORS
from monitor import scoring
from monitor.bars import RecentBars
from monitor.scoring import ScoreTracker
from monitor.sources.base import Bar
from tests.support.redis_server import ProcessRedis, own_redis

CHANNEL = "batch_test"


def signal(n: int) -> dict[str, Any]:
    return {"id": f"s{n}", "type": "BUY", "symbol": "A", "strategy": "rsi", "price": float(n)}


def bar(ts: float, close: float = 100.0) -> Bar:
    return Bar("A", ts, close, close, close, close, 1.0)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client whose connections count what they send: one call is one round trip."""
    redis = aioredis.Redis.from_url(redis_url)
    base = cast(Any, redis.connection_pool.connection_class)

    class Counting(base):  # type: ignore[misc, valid-type]
        sent = 0

        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            Counting.sent += 1
            await super().send_packed_command(command, check_health)

    redis.connection_pool.connection_class = Counting
    yield redis
    await redis.aclose()


def round_trips(client: aioredis.Redis) -> int:
    return cast(Any, client.connection_pool.connection_class).sent  # type: ignore[no-any-return]


@pytest.fixture
async def listener(redis_client: aioredis.Redis) -> AsyncIterator[PubSub]:
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(bars_channel(CHANNEL), CHANNEL)
    yield pubsub
    await pubsub.aclose()


async def heard(pubsub: PubSub, count: int) -> list[tuple[str, dict[str, Any]]]:
    """The next ``count`` messages (channel, payload), and then silence."""
    out = await messages(pubsub, 2.0, count)
    assert len(out) == count, out
    assert await messages(pubsub, 0.2, 1) == []
    return out


async def messages(pubsub: PubSub, within_s: float, most: int) -> list[tuple[str, Any]]:
    # get_message answers None for a subscribe confirmation it skips: keep asking.
    deadline = time.monotonic() + within_s
    out: list[tuple[str, Any]] = []
    while len(out) < most and (left := deadline - time.monotonic()) > 0:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
        if message is not None:
            out.append((message["channel"].decode(), orjson.loads(message["data"])))
    return out


async def history_ids(client: aioredis.Redis) -> list[str]:
    entries = await client.xrange(history_key(CHANNEL))
    return [orjson.loads(fields[b"data"])["id"] for _, fields in entries]


async def test_a_batch_is_one_round_trip_published_in_order(
    client: aioredis.Redis, listener: PubSub
) -> None:
    publisher = SignalPublisher(client, CHANNEL)
    await client.ping()  # connected: the handshake's commands are not counted below
    before = round_trips(client)
    results = await publisher.publish_batch([signal(n) for n in range(50)])
    assert round_trips(client) == before + 1  # new to Redis: its text went, no SCRIPT LOAD
    results += await publisher.publish_batch([signal(n) for n in range(50, 60)])
    assert round_trips(client) == before + 2
    assert not any(r.duplicate for r in results)
    ids = [f"s{n}" for n in range(60)]
    messages = await heard(listener, 60)
    assert [m["id"] for _, m in messages] == ids
    assert [m[OFFSET_FIELD] for _, m in messages] == [r.position for r in results]
    assert await history_ids(client) == ids


async def test_dedupe_holds_within_and_across_batches(
    client: aioredis.Redis, listener: PubSub
) -> None:
    publisher = SignalPublisher(client, CHANNEL)
    first = await publisher.publish_batch([signal(1), signal(2), signal(1)])
    assert [r.duplicate for r in first] == [False, False, True]
    assert first[2].position == first[0].position  # the original's position
    second = await publisher.publish_batch([signal(2), signal(3)])
    assert [r.duplicate for r in second] == [True, False]
    assert second[0].position == first[1].position
    assert [m["id"] for _, m in await heard(listener, 3)] == ["s1", "s2", "s3"]
    assert await history_ids(client) == ["s1", "s2", "s3"]


async def test_a_script_redis_lost_is_sent_again_and_publishes_once(
    client: aioredis.Redis, listener: PubSub
) -> None:
    publisher = SignalPublisher(client, CHANNEL)
    await publisher.publish_batch([signal(1)])
    await client.script_flush()
    results = await publisher.publish_batch([signal(1), signal(2)])
    assert [r.duplicate for r in results] == [True, False]
    assert [m["id"] for _, m in await heard(listener, 2)] == ["s1", "s2"]
    assert await history_ids(client) == ["s1", "s2"]


async def test_bars_and_scores_ride_ahead_of_the_signals_in_one_round_trip(
    client: aioredis.Redis, listener: PubSub
) -> None:
    publisher = SignalPublisher(client, CHANNEL)
    bars = RecentBars(client, CHANNEL, {"A": 3}, 60)
    scores = ScoreTracker(client, CHANNEL, window=10)
    await scores.restore("A", ["rsi"])
    for ts in range(5):
        bars.record(bar(ts, 100.0 + ts))
    scores.on_signal("rsi", "A", "BUY", 104.0, 4)
    before = round_trips(client)
    await publisher.publish_batch([signal(1)], [bars, scores])
    assert round_trips(client) == before + 1
    # The bar is stored and heard before the signal it triggered.
    assert [c for c, _ in await heard(listener, 6)] == [bars_channel(CHANNEL)] * 5 + [CHANNEL]
    stored = await client.lrange(bars_key(CHANNEL, "A"), 0, -1)
    assert [orjson.loads(b)[0] for b in stored] == [2, 3, 4]  # the newest 3 kept
    card = await client.hgetall(scores_key(CHANNEL, "rsi", "A"))
    assert card[b"signals"] == b"1" and card[b"window_signals"] == b"10"
    # Nothing new: nothing sent.
    before = round_trips(client)
    await publisher.publish_batch([], [bars, scores])
    assert round_trips(client) == before


async def test_a_lost_round_trip_drops_the_bars_and_keeps_the_scores_for_later() -> None:
    server: ProcessRedis
    with own_redis() as server:
        client = aioredis.Redis.from_url(server.url)
        publisher = SignalPublisher(client, CHANNEL)
        bars = RecentBars(client, CHANNEL, {"A": 10}, 60)
        scores = ScoreTracker(client, CHANNEL, window=10)
        await scores.restore("A", ["rsi"])
        bars.record(bar(1))
        scores.on_signal("rsi", "A", "BUY", 100.0, 1)
        server.stop()
        with pytest.raises(REDIS_ERRORS):
            await publisher.publish_batch([signal(1)], [bars, scores])
        server.start()
        await client.connection_pool.disconnect()
        bars.record(bar(2))
        await publisher.publish_batch([signal(1)], [bars, scores])
        stored = await client.lrange(bars_key(CHANNEL, "A"), 0, -1)
        assert [orjson.loads(b)[0] for b in stored] == [2]  # a cache: bar 1 was dropped
        card = await client.hgetall(scores_key(CHANNEL, "rsi", "A"))
        assert card[b"signals"] == b"1"  # the score was written on the next round trip
        assert await history_ids(client) == ["s1"]
        await client.aclose()


async def test_bars_and_scores_redis_had_no_script_for_go_with_the_next_round_trip(
    client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scoring, "FLUSH_INTERVAL_S", 0.0)  # scores go with every round trip
    publisher = SignalPublisher(client, CHANNEL)
    bars = RecentBars(client, CHANNEL, {"A": 10}, 60)
    scores = ScoreTracker(client, CHANNEL, window=10)
    await scores.restore("A", ["rsi"])
    bars.record(bar(1))
    scores.on_signal("rsi", "A", "BUY", 100.0, 1)
    await publisher.publish_batch([signal(1)], [bars, scores])  # the scripts are known now
    await client.script_flush()  # as a Redis restart with persistence does
    bars.record(bar(2))
    scores.on_signal("rsi", "A", "SELL", 100.0, 2)
    await publisher.publish_batch([signal(2)], [bars, scores])  # NOSCRIPT but for signals
    bars.record(bar(3))
    await publisher.publish_batch([], [bars, scores])
    stored = await client.lrange(bars_key(CHANNEL, "A"), 0, -1)
    assert [orjson.loads(b)[0] for b in stored] == [1, 2, 3]  # none lost, in order
    card = await client.hgetall(scores_key(CHANNEL, "rsi", "A"))
    assert card[b"signals"] == b"2"
    assert await history_ids(client) == ["s1", "s2"]
