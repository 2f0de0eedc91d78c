"""The monitor's publisher sends what one bar close queues as one batch, and loses none."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from redis.exceptions import ConnectionError as RedisConnectionError

from common.publish import Published
from common.redis import Backoff
from monitor.metrics import MonitorMetrics
from monitor.publisher import BufferedPublisher


class HeldPublisher:
    """Publishes every batch, but only once ``release`` is set; records the batches."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.release.set()
        self.batches: list[list[str]] = []

    async def publish_batch(
        self, signals: Sequence[dict[str, Any]], companions: Sequence[Any] = ()
    ) -> list[Published]:
        await self.release.wait()
        self.batches.append([s["id"] for s in signals])
        return [
            Published(f"e:{len(self.batches)}-{i}", duplicate=False) for i in range(len(signals))
        ]


def sig(n: int) -> dict[str, Any]:
    return {"id": f"s{n}", "type": "BUY", "strategy": "sma_cross", "symbol": "A", "price": 1.0}


def buffered(fake: Any, max_len: int = 100, batch_max: int = 500) -> BufferedPublisher:
    metrics = MonitorMetrics(CollectorRegistry(), strategies=("sma_cross",))
    return BufferedPublisher(
        fake,  # type: ignore[arg-type]
        metrics,
        Backoff(initial_s=0.01, max_s=0.02),
        max_len,
        batch_max=batch_max,
    )


async def test_signals_of_one_loop_turn_go_in_one_batch_in_order() -> None:
    fake = HeldPublisher()
    publisher = buffered(fake, batch_max=4)
    task = asyncio.create_task(publisher.run())
    try:
        for n in range(6):  # as six symbols closing the same bar do, in one turn
            publisher.submit(sig(n))
        assert await publisher.drained(2.0)
        assert fake.batches == [["s0", "s1", "s2", "s3"], ["s4", "s5"]]
    finally:
        task.cancel()


async def test_a_full_buffer_dropping_an_in_flight_signal_loses_no_other() -> None:
    fake = HeldPublisher()
    publisher = buffered(fake, max_len=3)
    task = asyncio.create_task(publisher.run())
    try:
        fake.release.clear()
        publisher.submit(sig(0))
        publisher.submit(sig(1))
        await asyncio.sleep(0.05)  # s0, s1 in flight
        for n in (2, 3, 4):  # the buffer is full: s0 and s1 are dropped from it
            publisher.submit(sig(n))
        fake.release.set()
        assert await publisher.drained(2.0)
        # s0 and s1 went out (the batch was sent); none of s2..s4 was popped in their place.
        assert fake.batches == [["s0", "s1"], ["s2", "s3", "s4"]]
    finally:
        task.cancel()


class CancelSwallowingPublisher:
    """As redis-py can: a cancel arriving mid-command comes out as a connection error."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def publish_batch(
        self, signals: Sequence[dict[str, Any]], companions: Sequence[Any] = ()
    ) -> list[Published]:
        self.started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            raise RedisConnectionError("Connection closed by server.") from None
        return []


async def test_a_cancel_turned_into_a_connection_error_still_ends_the_loop() -> None:
    fake = CancelSwallowingPublisher()
    publisher = buffered(fake)
    task = asyncio.create_task(publisher.run())
    publisher.submit(sig(1))
    await fake.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2.0)  # not a TimeoutError: the loop did not carry on
