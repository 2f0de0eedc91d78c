"""``python -m notifier`` processes on a real Redis and a real webhook receiver: SIGTERM,
a Redis restart, and two replicas of which one is SIGKILLed mid-stream."""

from __future__ import annotations

import asyncio
import collections
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from common.constants import (
    DEFAULT_CHANNEL,
    dead_letters_key,
    notifier_group,
    notifier_lease_key,
)
from common.publish import SignalPublisher
from common.redis import create_redis
from tests.integration.notifier.conftest import (
    NotifierFactory,
    pending,
    signal,
    wait_for_group,
    write_config,
    write_two,
)
from tests.support.receivers import HttpReceiver, Recorded, Reply
from tests.support.redis_server import free_port, own_redis
from tests.support.services import ServiceProcess, http_get


async def test_sigterm_finishes_the_delivery_in_flight_and_acks_nothing_else(
    redis_client: aioredis.Redis,
    publisher: SignalPublisher,
    hook_receiver: HttpReceiver,
    notifier_factory: NotifierFactory,
) -> None:
    hook_receiver.default = Reply(200, delay_s=2.0)  # each answer takes 2 s
    first = notifier_factory("n1", shutdown_grace_s=10)
    await wait_for_group(redis_client)
    for i in range(5):
        await publisher.publish(signal(i))
    await hook_receiver.wait_for_async(1, timeout_s=10)
    started = time.monotonic()
    assert first.proc is not None
    first.proc.terminate()
    code = await asyncio.to_thread(first.proc.wait, 15)
    took = time.monotonic() - started
    assert code == 0, first.logs()
    assert took < 10
    # The request in flight was answered and acknowledged; nothing else was sent or acked.
    assert [(r.json()["n"], reply.status) for r, reply in hook_receiver.answered] == [(0, 200)]
    events = [e["event"] for e in first.log_events()]
    assert events[-1] == "notifier_stopped"
    assert "leases_released" in events
    info = {
        g["name"].decode(): g for g in await redis_client.xinfo_groups("quantum_signals:history")
    }
    group = info[notifier_group("ops-webhook")]
    assert int(group["pending"]) + int(group["lag"]) == 4

    hook_receiver.default = Reply(200)
    notifier_factory("n2")
    received = await hook_receiver.wait_for_async(5, timeout_s=20)
    assert [r.json()["n"] for r in received] == [0, 1, 2, 3, 4]
    await asyncio.sleep(0.3)
    assert await pending(redis_client) == 0


async def test_a_redis_restart_is_survived(
    hook_receiver: HttpReceiver,
    config_path: Path,
    notifier_factory: NotifierFactory,
) -> None:
    with own_redis() as server:
        client = create_redis(server.url)  # retries a command whose connection dropped
        try:
            proc = notifier_factory("n1", redis_url=server.url, redis_backoff_max_s=1)
            await wait_for_group(client)
            publisher = SignalPublisher(client, DEFAULT_CHANNEL)
            for i in range(3):
                await publisher.publish(signal(i))
            await hook_receiver.wait_for_async(3, timeout_s=10)
            server.stop()  # nothing persisted: the stream, the group and the lease are gone
            await asyncio.sleep(2)
            server.start()
            # Published at once, before the notifier has noticed: not missed.
            publisher = SignalPublisher(client, DEFAULT_CHANNEL)
            for i in range(3, 6):
                await publisher.publish(signal(i))
            received = await hook_receiver.wait_for_async(6, timeout_s=30)
            assert [r.json()["n"] for r in received] == list(range(6))
            assert proc.metric("qs_redis_reconnects_total", {"loop": "delivery"}) >= 1
            assert proc.metric("qs_redis_connected", {"loop": "delivery"}) == 1
            await asyncio.to_thread(proc.wait_ready, 10)
        finally:
            await client.aclose()


def complete(receiver: HttpReceiver) -> list[Recorded]:
    """The requests that arrived whole: a replica killed while sending leaves one with a
    short body, which a real receiver refuses (its signature cannot match)."""
    return [r for r in receiver.requests if len(r.body) == int(r.headers["content-length"])]


async def publish_paced(publisher: SignalPublisher, count: int, per_s: float) -> None:
    for i in range(count):
        await publisher.publish(signal(i))
        await asyncio.sleep(1 / per_s)


@pytest.mark.timeout(180)
async def test_two_replicas_one_sigkilled_every_signal_delivered_duplicates_counted(
    redis_client: aioredis.Redis,
    publisher: SignalPublisher,
    hook_receiver: HttpReceiver,
    config_path: Path,
    notifier_factory: NotifierFactory,
) -> None:
    write_two(config_path, hook_receiver.url)
    hook_receiver.default = Reply(200, delay_s=0.005)  # usually one in flight
    replicas = {c: notifier_factory(c) for c in ("n1", "n2")}
    for name in ("hook-a", "hook-b"):
        await wait_for_group(redis_client, notifier_group(name))
    total = 500
    publishing = asyncio.create_task(publish_paced(publisher, total, per_s=100))
    await hook_receiver.wait_for_async(300, timeout_s=30)  # mid-stream
    owner = await redis_client.get(notifier_lease_key(DEFAULT_CHANNEL, "hook-a"))
    assert isinstance(owner, bytes)
    victim = replicas[owner.decode().split(":")[0]]
    victim.kill()
    killed_at = time.time()
    await publishing
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen = {(r.path, r.headers["idempotency-key"]) for r in complete(hook_receiver)}
        if len(seen) >= 2 * total:
            break
        await asyncio.sleep(0.2)

    for path in ("/a", "/b"):
        got = [r for r in complete(hook_receiver) if r.path == path]
        cut = len([r for r in hook_receiver.requests if r.path == path]) - len(got)
        keys = [r.headers["idempotency-key"] for r in got]
        counts = collections.Counter(keys)
        assert set(counts) == {f"BTC-USD:test:{i}" for i in range(total)}, path
        duplicates = {k: n for k, n in counts.items() if n > 1}
        # A duplicate is the same message again: same key, same body.
        for key in duplicates:
            bodies = {r.body for r in got if r.headers["idempotency-key"] == key}
            assert len(bodies) == 1, key
        firsts = list(dict.fromkeys(r.json()["n"] for r in got))
        assert firsts == list(range(total)), f"{path}: first deliveries out of order"
        late = [r.received_at - killed_at for r in got if r.received_at > killed_at]
        print(
            f"\n{path}: {len(got)} requests, {len(counts)} signals, "
            f"{sum(duplicates.values()) - len(duplicates)} duplicate deliveries of "
            f"{len(duplicates)} signals, {cut} request cut off by the kill; first request "
            f"after the kill at "
            f"+{min(late) if late else 0:.2f} s"
        )


CONTRACT_METRICS = (
    "qs_notifier_deliveries_total",
    "qs_notifier_retries_total",
    "qs_notifier_dead_letters_total",
    "qs_notifier_dead_letter_entries",
    "qs_notifier_lag_entries",
    "qs_notifier_lag_seconds",
    "qs_notifier_circuit_state",
    "qs_notifier_delivery_seconds_bucket",
    "qs_notifier_destinations_owned",
    "qs_redis_connected",
    "qs_redis_reconnects_total",
    "qs_build_info",
    "process_cpu_seconds_total",
)


async def test_probes_and_the_contract_metrics_on_the_metrics_port(
    redis_client: aioredis.Redis,
    publisher: SignalPublisher,
    hook_receiver: HttpReceiver,
    notifier_factory: NotifierFactory,
) -> None:
    metrics_port = free_port()
    # With METRICS_PORT set, the notifier (nothing public to serve) listens only there.
    proc = notifier_factory("n1", wait_ready=False, metrics_port=metrics_port)
    internal = f"http://127.0.0.1:{metrics_port}"

    def ready() -> bool:
        try:
            return http_get(f"{internal}/readyz", 1.0)[0] == 200
        except OSError:
            return False

    await asyncio.to_thread(proc.wait_for, ready, 20, "ready on METRICS_PORT")
    await wait_for_group(redis_client)
    await publisher.publish(signal(0))
    await hook_receiver.wait_for_async(1, timeout_s=10)
    status, body = await asyncio.to_thread(http_get, f"{internal}/readyz")
    assert status == 200 and b'"config_loaded":true' in body
    assert (await asyncio.to_thread(http_get, f"{internal}/livez"))[0] == 200
    assert proc.readyz() == 0  # PORT is not listened on
    text = (await asyncio.to_thread(http_get, f"{internal}/metrics"))[1].decode()
    missing = [name for name in CONTRACT_METRICS if f"\n{name}" not in text]
    assert not missing
    assert 'qs_notifier_deliveries_total{destination="ops-webhook",outcome="delivered"} 1.0' in text
    assert "qs_notifier_destinations_owned 1.0" in text


async def test_two_replicas_with_one_consumer_name_are_told_so(
    redis_client: aioredis.Redis, notifier_factory: NotifierFactory
) -> None:
    first = notifier_factory("same")
    second = notifier_factory("same")

    def told(proc: ServiceProcess) -> bool:
        return any(e["event"] == "consumer_name_shared" for e in proc.log_events())

    await asyncio.to_thread(first.wait_for, lambda: told(first) and told(second), 20, "told")
    (event,) = [e for e in first.log_events() if e["event"] == "consumer_name_shared"]
    assert event["level"] == "error" and event["consumer"] == "same"


async def test_sigterm_during_a_retry_wait_exits_at_once_and_keeps_the_message(
    redis_client: aioredis.Redis,
    publisher: SignalPublisher,
    hook_receiver: HttpReceiver,
    config_path: Path,
    notifier_factory: NotifierFactory,
) -> None:
    write_config(config_path, f"{hook_receiver.url}/hook", backoff_initial_s=20)
    hook_receiver.default = Reply(503)
    proc = notifier_factory("n1")
    await wait_for_group(redis_client)
    await publisher.publish(signal(0))
    await hook_receiver.wait_for_async(1, timeout_s=10)
    await asyncio.sleep(0.3)  # now waiting 10-20 s before the second attempt
    started = time.monotonic()
    code = await asyncio.to_thread(proc.terminate, 15)
    assert code == 0 and time.monotonic() - started < 5
    assert len(hook_receiver.requests) == 1
    assert await pending(redis_client) == 1  # not acknowledged: the next holder retries it
    assert await redis_client.xlen(dead_letters_key(DEFAULT_CHANNEL)) == 0
