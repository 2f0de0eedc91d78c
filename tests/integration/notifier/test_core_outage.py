"""A webhook receiver that fails for 60 s: after it returns, everything is delivered in
order and nothing went to the dead letters (the example file's retry budget is about
5 minutes). Prints the retry timeline. About 75 s: ``pytest -m notifier_outage -s``."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import redis.asyncio as aioredis

from common.constants import DEFAULT_CHANNEL, dead_letters_key
from common.publish import SignalPublisher
from tests.integration.notifier.conftest import NotifierFactory, pending, signal, wait_for_group
from tests.support.receivers import HttpReceiver, Recorded, Reply

OUTAGE_S = 60.0
SIGNALS = 10


@pytest.mark.notifier_outage
@pytest.mark.timeout(240)
async def test_a_60_s_outage_then_everything_in_order_and_no_dead_letters(
    redis_client: aioredis.Redis,
    publisher: SignalPublisher,
    hook_receiver: HttpReceiver,
    notifier_factory: NotifierFactory,
) -> None:
    outage: dict[str, float] = {}
    lock = threading.Lock()

    def answer(request: Recorded) -> Reply:
        with lock:
            start = outage.setdefault("start", request.received_at)
        if request.received_at - start < OUTAGE_S:
            return Reply(503, b"down for maintenance")
        return Reply(200)

    hook_receiver.respond_with(answer)
    proc = notifier_factory("n1")
    await wait_for_group(redis_client)
    peaks = {"circuit": 0.0, "lag_entries": 0.0, "lag_seconds": 0.0}

    async def watch() -> None:
        while True:
            for key, name in (
                ("circuit", "qs_notifier_circuit_state"),
                ("lag_entries", "qs_notifier_lag_entries"),
                ("lag_seconds", "qs_notifier_lag_seconds"),
            ):
                value = await asyncio.to_thread(proc.metric, name, {"destination": "ops-webhook"})
                peaks[key] = max(peaks[key], value)
            await asyncio.sleep(1)

    watcher = asyncio.create_task(watch())
    try:
        for i in range(SIGNALS):  # over the first 20 s of the outage
            await publisher.publish(signal(i))
            await asyncio.sleep(2)
        deadline = time.monotonic() + OUTAGE_S + 90
        while sum(1 for _, reply in hook_receiver.answered if reply.status == 200) < SIGNALS:
            assert time.monotonic() < deadline, "not delivered after the receiver came back"
            await asyncio.sleep(0.5)
        await asyncio.sleep(6)  # a stats cycle after the last delivery
        lag_after = proc.metric("qs_notifier_lag_entries", {"destination": "ops-webhook"})
    finally:
        watcher.cancel()

    delivered = [r.json()["n"] for r, reply in hook_receiver.answered if reply.status == 200]
    assert delivered == list(range(SIGNALS))
    assert await redis_client.xlen(dead_letters_key(DEFAULT_CHANNEL)) == 0
    assert await pending(redis_client) == 0
    assert proc.metric("qs_notifier_dead_letters_total") == 0
    assert peaks["circuit"] == 2  # it opened
    assert peaks["lag_entries"] >= SIGNALS - 1 and peaks["lag_seconds"] > 20
    assert lag_after == 0

    start = outage["start"]
    print(f"\nretry timeline (s from the first failure; outage {OUTAGE_S:.0f} s):")
    for request, reply in hook_receiver.answered:
        print(
            f"  +{request.received_at - start:6.2f}  signal {request.json()['n']}  "
            f"attempt {request.headers['x-qs-attempt']:>2}  HTTP {reply.status}"
        )
    first_ok = next(r for r, reply in hook_receiver.answered if reply.status == 200)
    print(
        f"first delivery +{first_ok.received_at - start:.2f} s, all {SIGNALS} delivered by "
        f"+{hook_receiver.answered[-1][0].received_at - start:.2f} s; failed attempts "
        f"{proc.metric('qs_notifier_deliveries_total', {'outcome': 'failed'}):.0f}, "
        f"peaks: circuit {peaks['circuit']:.0f}, lag {peaks['lag_entries']:.0f} entries / "
        f"{peaks['lag_seconds']:.1f} s"
    )
