"""From a real monitor to a webhook: ``python -m monitor`` publishes version 2 signals,
``python -m notifier`` delivers them to a recording receiver. Each body is the history
entry's signal unchanged (every field, its order, extra fields included) plus ``offset``,
the entry's position; signed, and in stream order."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from common.constants import DEFAULT_CHANNEL, OFFSET_FIELD, history_epoch_key
from common.publish import SignalPublisher
from common.schema import Signal
from notifier.destinations.webhook import sign
from tests.conftest import ServiceFactory
from tests.integration.notifier.conftest import (
    SECRET,
    STREAM,
    NotifierFactory,
    signal,
    wait_for_group,
)
from tests.support.receivers import HttpReceiver

pytestmark = pytest.mark.e2e
STRATEGIES = ("sma_cross", "rsi", "macd_cross")


@pytest.mark.timeout(90)
async def test_monitor_signals_reach_the_webhook_unchanged(
    redis_client: aioredis.Redis,
    hook_receiver: HttpReceiver,
    notifier_factory: NotifierFactory,
    service_factory: ServiceFactory,
) -> None:
    notifier_factory("n1")
    await wait_for_group(redis_client)
    service_factory(
        "monitor", tick_interval_s=0.02, symbols="BTC-USD", strategies=",".join(STRATEGIES)
    )
    # A signal with fields no schema version knows, through the publish path the API uses.
    extra = {**signal(7), "venue": "test", "meta": {"nested": [1, 2.5, "x", None]}, "ü": "ß"}
    deadline = time.monotonic() + 45
    while {r.json().get("strategy") for r in hook_receiver.requests} < set(STRATEGIES):
        assert time.monotonic() < deadline, [r.json() for r in hook_receiver.requests][:5]
        await asyncio.sleep(0.1)
    await SignalPublisher(redis_client, DEFAULT_CHANNEL).publish(extra)
    deadline = time.monotonic() + 15
    while extra["id"] not in {r.headers["idempotency-key"] for r in hook_receiver.requests}:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)

    epoch = (await redis_client.hget(history_epoch_key(DEFAULT_CHANNEL), "epoch")).decode()
    entries: dict[str, bytes] = {
        i.decode(): f[b"data"] for i, f in await redis_client.xrange(STREAM)
    }
    positions = []
    for request in list(hook_receiver.requests):
        body: dict[str, Any] = request.json()
        offset = body.pop(OFFSET_FIELD)
        entry_epoch, entry_id = offset.split(":")
        assert entry_epoch == epoch
        published = orjson.loads(entries[entry_id])
        assert body == published and list(body) == list(published)  # fields and order
        assert request.headers["idempotency-key"] == published["id"]
        t = int(request.headers["x-qs-timestamp"])
        assert request.headers["x-qs-signature"] == sign(SECRET.encode(), t, request.body)
        positions.append(tuple(int(p) for p in entry_id.split("-")))
        if published["id"] != extra["id"]:  # the monitor's: version 2, complete
            Signal.model_validate(body)
            assert {"timeframe", "params", "indicators", "reason"} <= body.keys()
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    delivered = {r.headers["idempotency-key"]: r.json() for r in hook_receiver.requests}
    assert {k: v for k, v in delivered[extra["id"]].items() if k != OFFSET_FIELD} == extra
