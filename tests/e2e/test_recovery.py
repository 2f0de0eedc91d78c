"""Client resume: missed signals in order, exactly once, honouring symbols, and a clear
answer when the gap is older than the retained history, when Redis lost the history (a new
epoch: FLUSHALL, a restart without persistence) or when the offset predates epochs."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
import socketio

from common.constants import DEFAULT_CHANNEL, history_key
from common.publish import SignalPublisher
from common.schema import make_signal
from tests.conftest import ClientFactory, ServiceFactory
from tests.integration.redis_security.test_acl_tls import MONITOR_ENV
from tests.support.clients import RecordingClient
from tests.support.redis_server import ProcessRedis, RedisServer
from tests.support.services import ServiceProcess

pytestmark = pytest.mark.e2e


async def publish_series(client: aioredis.Redis, symbols: list[str], start: int) -> list[str]:
    publisher = SignalPublisher(client, DEFAULT_CHANNEL)
    offsets = []
    for i, symbol in enumerate(symbols, start):
        signal = make_signal(
            signal_id=f"{symbol}:t:{i}",
            signal_type="BUY",
            price=float(i),
            symbol=symbol,
            strategy="t",
        )
        offset = await publisher.publish(signal)
        assert offset is not None
        offsets.append(offset)
    return offsets


async def test_resume_sends_the_gap_in_order_then_live(
    service_factory: ServiceFactory, client_factory: ClientFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    live = await client_factory(gateway.base_url)
    first = await publish_series(redis_client, ["AAA", "BBB"], 0)
    await live.wait_for(2)

    # A client that saw only the first signal comes back, wanting AAA only.
    missed = await publish_series(redis_client, ["AAA", "BBB", "AAA"], 2)
    await live.wait_for(5)
    resumer = RecordingClient(gateway.base_url)
    await resumer.sio.connect(
        gateway.base_url, transports=["websocket"], auth={"offset": first[0], "symbols": ["AAA"]}
    )
    try:
        await resumer.wait_for(1, attr="recoveries")
        await publish_series(redis_client, ["AAA", "BBB"], 5)
        await resumer.wait_for(3)
        await asyncio.sleep(0.3)
        assert [s["id"] for s in resumer.signals] == ["AAA:t:2", "AAA:t:4", "AAA:t:5"]
        assert [s["offset"] for s in resumer.signals[:2]] == [missed[0], missed[2]]
        epoch = first[0].split(":")[0]
        assert resumer.recoveries == [
            {"complete": True, "recovered": 2, "since": first[0], "reason": None, "epoch": epoch}
        ]
        assert gateway.metric("qs_gateway_recovered_signals_total") == 2
        # A recovered signal looks exactly like the live one did.
        assert resumer.signals[0] == live.signals[2]
    finally:
        await resumer.disconnect()


async def test_resume_older_than_retention_says_incomplete(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    offsets = await publish_series(redis_client, ["AAA"] * 5, 0)
    await redis_client.xtrim(history_key(DEFAULT_CHANNEL), maxlen=2, approximate=False)
    resumer = RecordingClient(gateway.base_url)
    await resumer.sio.connect(
        gateway.base_url, transports=["websocket"], auth={"offset": offsets[0]}
    )
    try:
        await resumer.wait_for(1, attr="recoveries")
        assert resumer.recoveries[0]["complete"] is False
        assert resumer.recoveries[0]["reason"] == "trimmed"
        assert [s["id"] for s in resumer.signals] == ["AAA:t:3", "AAA:t:4"]
        assert gateway.metric("qs_gateway_recovery_incomplete_total") == 1
    finally:
        await resumer.disconnect()


async def test_malformed_resume_offset_is_refused_with_a_reason(
    service_factory: ServiceFactory,
) -> None:
    gateway = service_factory("gateway")
    client = socketio.AsyncClient(reconnection=False)
    errors: list[object] = []
    client.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            gateway.base_url, transports=["websocket"], auth={"offset": "yesterday"}, wait_timeout=5
        )
    assert errors and "offset" in str(errors[0])


@pytest.mark.parametrize("offset", ["²-0", "1-¹", "\uff11-0", "abcdefgh:٣-0", "0-0\n"])
async def test_hostile_offset_is_answered_with_connect_error_and_no_traceback(
    service_factory: ServiceFactory, offset: str
) -> None:
    gateway = service_factory("gateway")
    client = socketio.AsyncClient(reconnection=False)
    errors: list[object] = []
    client.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            gateway.base_url, transports=["websocket"], auth={"offset": offset}, wait_timeout=5
        )
    assert errors and "offset" in str(errors[0])
    await asyncio.sleep(0.2)
    assert "Traceback" not in gateway.log_path.read_text()
    assert not [e for e in gateway.log_events() if e.get("level") in ("error", "critical")]


async def resume(url: str, offset: str, symbols: list[str] | None = None) -> RecordingClient:
    client = RecordingClient(url)
    auth: dict[str, object] = {"offset": offset, **({"symbols": symbols} if symbols else {})}
    await client.sio.connect(url, transports=["websocket"], auth=auth, wait_timeout=10)
    await client.wait_for(1, attr="recoveries")
    return client


async def test_bare_offset_from_before_epochs_is_replayed_but_not_called_complete(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    offsets = await publish_series(redis_client, ["AAA"] * 3, 0)
    bare = offsets[0].split(":", 1)[1]
    resumer = await resume(gateway.base_url, bare)
    try:
        await resumer.wait_for(2)
        assert [s["id"] for s in resumer.signals] == ["AAA:t:1", "AAA:t:2"]
        answer = resumer.recoveries[0]
        assert (answer["complete"], answer["reason"]) == (False, "epoch_unknown")
        assert answer["epoch"] == offsets[0].split(":")[0]
    finally:
        await resumer.disconnect()


async def assert_new_epoch_resume(
    gateway: ServiceProcess, publisher: SignalPublisher, old: str, old_epoch: str
) -> None:
    """After the loss: the new epoch's signals once, in order, then live; told why."""
    new = [await publisher.publish(sig("AAA", i)) for i in (100, 101)]
    assert all(o is not None and not o.startswith(old_epoch) for o in new)
    resumer = await resume(gateway.base_url, old, ["AAA"])
    try:
        await publisher.publish(sig("AAA", 102))
        await resumer.wait_for(3)
        await asyncio.sleep(0.3)
        assert [s["id"] for s in resumer.signals] == ["AAA:t:100", "AAA:t:101", "AAA:t:102"]
        answer = resumer.recoveries[0]
        assert (answer["complete"], answer["reason"], answer["recovered"]) == (
            False,
            "epoch_changed",
            2,
        )
        assert answer["epoch"] == str(new[0]).split(":")[0]
        assert [s["offset"] for s in resumer.signals[:2]] == new
        assert gateway.metric("qs_gateway_history_epoch_changes_total") == 1
    finally:
        await resumer.disconnect()


def sig(symbol: str, i: int) -> dict[str, object]:
    return make_signal(
        signal_id=f"{symbol}:t:{i}", signal_type="BUY", price=float(i), symbol=symbol, strategy="t"
    )


async def test_flushall_starts_a_new_epoch_and_resumes_say_so(
    service_factory: ServiceFactory, client_factory: ClientFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    live = await client_factory(gateway.base_url)
    publisher = SignalPublisher(redis_client, DEFAULT_CHANNEL)
    old = [await publisher.publish(sig("AAA", i)) for i in range(3)]
    await live.wait_for(3)
    await redis_client.flushall()
    await assert_new_epoch_resume(gateway, publisher, str(old[0]), str(old[0]).split(":")[0])
    # The connected client saw the new epoch's signals live, once each.
    await live.wait_for(6)
    assert [s["id"] for s in live.signals][3:] == ["AAA:t:100", "AAA:t:101", "AAA:t:102"]


async def test_redis_restart_without_persistence_starts_a_new_epoch(
    service_factory: ServiceFactory, redis_server: RedisServer, redis_url: str
) -> None:
    if not isinstance(redis_server, ProcessRedis):
        pytest.skip("needs a redis-server process without persistence")
    gateway = service_factory("gateway", redis_backoff_max_s=0.3)
    monitor = service_factory("monitor", redis_backoff_max_s=0.3, **MONITOR_ENV)
    monitor.wait_for(
        lambda: monitor.metric("qs_monitor_signals_published_total") >= 2, 20, "publishing"
    )
    client = aioredis.Redis.from_url(redis_url)
    try:
        publisher = SignalPublisher(client, DEFAULT_CHANNEL)
        old = await publisher.publish(sig("AAA", 1))
        redis_server.stop()
        redis_server.start()
        await asyncio.to_thread(gateway.wait_ready, 15)
        await client.connection_pool.disconnect()
        await assert_new_epoch_resume(gateway, publisher, str(old), str(old).split(":")[0])
        monitor.wait_for(
            lambda: monitor.metric("qs_monitor_history_epoch_changes_total") == 1,
            20,
            "epoch change counted",
        )
    finally:
        await client.aclose()
