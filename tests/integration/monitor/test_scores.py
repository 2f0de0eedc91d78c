"""Scores persist in a real Redis, and a second tracker (a takeover) continues them."""

from __future__ import annotations

import orjson
import pytest
import redis.asyncio as aioredis

from common.constants import bars_key, scores_index_key, scores_key
from monitor.bars import encode
from monitor.scoring import ScoreTracker
from monitor.sources.base import Bar

CHANNEL = "qs_scores_test"
SYMBOL = "BTC-USD"
STRATEGY = "sma_cross"


def bar(ts: float, close: float) -> Bar:
    return Bar(SYMBOL, ts, close, close, close, close, 1.0)


async def closes(client: aioredis.Redis, tracker: ScoreTracker | None, *items: Bar) -> None:
    """Bars close: stored as the monitor stores them, then seen by the tracker (if alive)."""
    await client.rpush(bars_key(CHANNEL, SYMBOL), *(encode(b) for b in items))
    for item in items:
        if tracker is not None:
            tracker.on_bar(item)


async def stored(client: aioredis.Redis) -> dict[str, str]:
    raw = await client.hgetall(scores_key(CHANNEL, STRATEGY, SYMBOL))
    return {text(k): text(v) for k, v in raw.items()}


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def test_a_takeover_continues_the_scores(redis_client: aioredis.Redis) -> None:
    first = ScoreTracker(redis_client, CHANNEL, window=100)
    await first.restore(SYMBOL, [STRATEGY])
    await closes(redis_client, first, bar(0, 100.0))
    first.on_signal(STRATEGY, SYMBOL, "BUY", 100.0, 0)
    await closes(redis_client, first, *(bar(t, 100.0 + t) for t in range(1, 8)))  # 101..107
    await first.flush()

    card = await stored(redis_client)
    assert card["signals"] == "1"
    assert float(card["hit_rate_1"]) == 1.0 and float(card["hit_rate_5"]) == 1.0
    assert card["hit_rate_20"] == ""  # not closed yet
    assert float(card["avg_move_5"]) == pytest.approx(0.05)
    members = await redis_client.smembers(scores_index_key(CHANNEL))
    assert [orjson.loads(m) for m in members] == [[STRATEGY, SYMBOL]]

    # The first replica dies: two more bars close that it never wrote scores for.
    await closes(redis_client, None, bar(8, 108.0), bar(9, 109.0))
    second = ScoreTracker(redis_client, CHANNEL, window=100)
    await second.restore(SYMBOL, [STRATEGY])
    assert second.entries(STRATEGY, SYMBOL)[0].seen == 9  # recomputed from the stored bars
    await closes(redis_client, second, *(bar(t, 100.0 + t) for t in range(10, 21)))  # ..120
    second.on_signal(STRATEGY, SYMBOL, "SELL", 120.0, 20)
    await closes(redis_client, second, bar(21, 126.0))
    await second.flush()

    card = await stored(redis_client)
    assert card["signals"] == "2"
    window = orjson.loads(card["window"])
    assert window[0][3:] == pytest.approx([0.01, 0.05, 0.20])  # the BUY, completed by the second
    assert window[1][3:5] == [pytest.approx(-0.05), None]  # the SELL: wrong after 1 bar
    assert float(card["hit_rate_1"]) == 0.5 and float(card["hit_rate_20"]) == 1.0


async def test_pending_signals_older_than_the_stored_bars_are_lost(
    redis_client: aioredis.Redis,
) -> None:
    first = ScoreTracker(redis_client, CHANNEL, window=100)
    await first.restore(SYMBOL, [STRATEGY])
    first.on_signal(STRATEGY, SYMBOL, "BUY", 100.0, 0)
    await closes(redis_client, first, bar(1, 101.0))
    await first.flush()
    await redis_client.delete(bars_key(CHANNEL, SYMBOL))  # the bars expired meanwhile
    await closes(redis_client, None, bar(30, 90.0))

    second = ScoreTracker(redis_client, CHANNEL, window=100)
    await second.restore(SYMBOL, [STRATEGY])
    await closes(redis_client, second, *(bar(t, 90.0) for t in range(31, 60)))
    await second.flush()
    window = orjson.loads((await stored(redis_client))["window"])
    # The 1-bar move survives; the 5- and 20-bar ones are never made up from later bars.
    assert window == [[0, "BUY", 100.0, pytest.approx(0.01), None, None]]


async def test_the_window_keeps_the_last_signals(redis_client: aioredis.Redis) -> None:
    tracker = ScoreTracker(redis_client, CHANNEL, window=3)
    await tracker.restore(SYMBOL, [STRATEGY])
    for t in range(5):
        tracker.on_signal(STRATEGY, SYMBOL, "BUY", 100.0, t)
    await tracker.flush()
    card = await stored(redis_client)
    assert card["signals"] == "3" and card["window_signals"] == "3"
    assert [e[0] for e in orjson.loads(card["window"])] == [2, 3, 4]
