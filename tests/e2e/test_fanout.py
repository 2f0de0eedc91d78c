"""Whole-pipeline tests: real Redis, real gateway processes, official clients."""

from __future__ import annotations

import asyncio
import json
import time

import orjson
import pytest
import redis.asyncio as aioredis

from common.constants import DEFAULT_CHANNEL, SCHEMA_VERSION
from tests.conftest import ClientFactory, ServiceFactory
from tests.support.clients import JsClient

pytestmark = pytest.mark.e2e

ADMIN_TOKEN = "test-admin-token-0123456789"


async def publish_all(client: aioredis.Redis, messages: list[dict[str, object]]) -> None:
    for message in messages:
        await client.publish(DEFAULT_CHANNEL, json.dumps(message))


async def test_every_client_gets_every_signal_once_in_order(
    service_factory: ServiceFactory, client_factory: ClientFactory, redis_client: aioredis.Redis
) -> None:
    # A short ping interval bounds how long the long-polling client takes to disconnect.
    gateways = [service_factory("gateway", ping_interval_s=2) for _ in range(2)]
    clients = [
        await client_factory(gateways[i % 2].base_url, transports=transports)
        for i, transports in enumerate([["websocket"], ["websocket"], ["polling"], ["websocket"]])
    ]
    js = JsClient(gateways[1].base_url)
    try:
        js.wait_connected()
        # The design's own publisher, plus the full form with an extra field.
        messages: list[dict[str, object]] = [{"type": "BUY", "price": 60000}]
        messages += [
            {
                "v": 1,
                "id": f"BTC-USD:x:{i}",
                "type": "SELL" if i % 2 else "BUY",
                "symbol": "BTC-USD",
                "strategy": "x",
                "price": 100.5 + i,
                "ts": time.time(),
                "extra": {"note": f"n{i}", "tags": ["a", i]},
            }
            for i in range(29)
        ]
        await publish_all(redis_client, messages)
        for client in clients:
            await client.wait_for(len(messages))
        js_got = js.signals(len(messages))
        await asyncio.sleep(0.3)  # a duplicate would arrive right behind the last signal
    finally:
        js.close()
    for client in clients:
        assert client.signals == messages
    assert js_got == messages


async def test_a_long_polling_python_client_takes_a_burst_without_reconnecting(
    service_factory: ServiceFactory, client_factory: ClientFactory, redis_client: aioredis.Redis
) -> None:
    # The official Python client refuses a long-polling payload of more than 16 packets
    # (engineio Payload.max_decode_packets) by dropping the connection; a burst piles up
    # more than that between two polls, so the gateway must split it across responses.
    gateway = service_factory("gateway")
    client = await client_factory(gateway.base_url, transports=["polling"])
    messages: list[dict[str, object]] = [{"type": "BUY", "price": i} for i in range(200)]
    async with redis_client.pipeline(transaction=False) as pipe:
        for message in messages:
            pipe.publish(DEFAULT_CHANNEL, json.dumps(message))
        await pipe.execute()
    await client.wait_for(len(messages))
    assert client.signals == messages
    assert client.connects == 1 and client.disconnect_reasons == []
    # Leaving: the client waits for its held GET, which stock engine.io answers only after
    # ping interval + ping timeout (45 s here); the gateway answers it at once.
    started = time.monotonic()
    await client.disconnect()
    assert time.monotonic() - started < 5


async def test_admin_broadcast_reaches_clients_on_other_replica(
    service_factory: ServiceFactory, client_factory: ClientFactory
) -> None:
    env = {"admin_token": ADMIN_TOKEN}
    one, two = service_factory("gateway", **env), service_factory("gateway", **env)
    on_two = await client_factory(two.base_url)
    on_one = await client_factory(one.base_url)

    status = await _post(
        f"{one.base_url}/api/broadcast", {"message": "maintenance at 18:00"}, token=ADMIN_TOKEN
    )
    assert status == 202
    await on_two.wait_for(1, attr="system")
    await on_one.wait_for(1, attr="system")
    await asyncio.sleep(0.3)
    assert [m["message"] for m in on_two.system] == ["maintenance at 18:00"]
    assert len(on_one.system) == 1
    assert await _post(f"{one.base_url}/api/broadcast", {"message": "x"}, token="wrong") == 401
    assert await _post(f"{one.base_url}/api/broadcast", {"message": "x"}, token=None) == 401


async def test_symbol_subscription_narrows_delivery(
    service_factory: ServiceFactory, client_factory: ClientFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    btc = await client_factory(gateway.base_url)
    everyone = await client_factory(gateway.base_url)
    ack = await btc.sio.call("subscribe", ["BTC-USD"], timeout=5)
    assert ack == {"ok": True, "symbols": ["BTC-USD"], "strategies": [], "types": []}

    messages = [
        {"type": "BUY", "price": 1, "symbol": "ETH-USD"},
        {"type": "BUY", "price": 2, "symbol": "BTC-USD"},
        {"type": "SELL", "price": 3},  # no symbol: everyone
        {"type": "SELL", "price": 4, "symbol": "BTC-USD"},
    ]
    await publish_all(redis_client, messages)
    await everyone.wait_for(4)
    await btc.wait_for(3)
    await asyncio.sleep(0.2)
    assert [m["price"] for m in btc.signals] == [2, 3, 4]

    ack = await btc.sio.call("unsubscribe", ["BTC-USD"], timeout=5)
    assert ack == {"ok": True, "symbols": [], "strategies": [], "types": []}
    await publish_all(redis_client, [{"type": "BUY", "price": 5, "symbol": "ETH-USD"}])
    await btc.wait_for(4)
    assert btc.signals[-1]["price"] == 5
    bad = await btc.sio.call("subscribe", {"symbols": 42}, timeout=5)
    assert bad["ok"] is False


BAD_MESSAGES = {
    "not_json": b"{not json",
    "not_object": b"[1, 2, 3]",
    "invalid": b'{"price": 60000}',
    "too_large": orjson.dumps({"type": "BUY", "price": 1, "pad": "x" * 70_000}),
}
MORE_INVALID = [
    b'{"type": "BUY", "price": "60000"}',
    b'{"type": "BUY", "price": 1e999}',
    b'{"type": "BUY", "price": NaN}',
    b'{"type": "HOLD", "price": 1}',
]


async def test_bad_input_is_counted_and_the_next_signal_still_arrives(
    service_factory: ServiceFactory, client_factory: ClientFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    client = await client_factory(gateway.base_url)
    for raw in [*BAD_MESSAGES.values(), *MORE_INVALID]:
        await redis_client.publish(DEFAULT_CHANNEL, raw)
    await redis_client.publish(DEFAULT_CHANNEL, b'{"type": "SELL", "price": 1.5}')
    await client.wait_for(1)
    await asyncio.sleep(0.2)
    assert client.signals == [{"type": "SELL", "price": 1.5}]

    def rejected(reason: str) -> float:
        return gateway.metric("qs_gateway_signals_rejected_total", {"reason": reason})

    # "1e999" and NaN are not valid JSON numbers for a strict parser: not_json.
    assert rejected("not_json") == 3
    assert rejected("not_object") == 1
    assert rejected("too_large") == 1
    assert rejected("invalid") == 3
    logged = [e for e in gateway.log_events() if e.get("event") == "signal_rejected"]
    assert sorted({str(e["reason"]) for e in logged}) == sorted(BAD_MESSAGES)


async def test_gateway_survives_redis_restart(
    service_factory: ServiceFactory,
    client_factory: ClientFactory,
    redis_server: object,
    redis_url: str,
) -> None:
    gateway = service_factory("gateway")
    client = await client_factory(gateway.base_url)
    before = gateway.metric("qs_redis_reconnects_total", {"loop": "relay"})

    redis_server.stop()  # type: ignore[attr-defined]
    gateway.wait_for(lambda: gateway.readyz() == 503, 10, "unready after Redis stopped")
    assert gateway.metric("qs_gateway_relay_up") == 0
    redis_server.start()  # type: ignore[attr-defined]
    gateway.wait_ready(15)

    assert gateway.metric("qs_redis_reconnects_total", {"loop": "relay"}) == before + 1
    publisher = aioredis.Redis.from_url(redis_url)
    try:
        await publisher.publish(DEFAULT_CHANNEL, b'{"type": "BUY", "price": 7}')
    finally:
        await publisher.aclose()
    await client.wait_for(1, timeout_s=15)
    assert client.signals == [{"type": "BUY", "price": 7}]


async def test_monitor_signals_reach_a_client_and_the_latest_api(
    service_factory: ServiceFactory, client_factory: ClientFactory
) -> None:
    gateway = service_factory("gateway")
    client = await client_factory(gateway.base_url)
    monitor = service_factory("monitor", tick_interval_s=0.02, symbols="AAA,BBB,CCC")
    await client.wait_for(3, timeout_s=20)
    signal = client.signals[0]
    assert signal["v"] == SCHEMA_VERSION and signal["symbol"] in {"AAA", "BBB", "CCC"}
    assert signal["type"] in {"BUY", "SELL"} and signal["strategy"] == "sma_cross"
    assert monitor.metric("qs_monitor_signals_published_total") >= 3

    status, body = await asyncio.to_thread(_get, f"{gateway.base_url}/api/signals/latest?limit=2")
    assert status == 200
    latest = json.loads(body)["signals"]
    assert len(latest) == 2
    ids = [s["id"] for s in client.signals]
    # Newest first, and the same signals the client saw.
    assert ids.index(latest[0]["id"]) > ids.index(latest[1]["id"])


async def test_sigterm_drains_clients_and_exits_zero(
    service_factory: ServiceFactory, client_factory: ClientFactory
) -> None:
    gateway = service_factory("gateway", shutdown_grace_s=6)
    clients = [await client_factory(gateway.base_url) for _ in range(3)]
    started = time.monotonic()
    assert gateway.proc is not None
    gateway.proc.send_signal(15)
    code = await asyncio.to_thread(gateway.proc.wait, 10)
    elapsed = time.monotonic() - started
    assert code == 0
    assert elapsed < 6
    events = [e["event"] for e in gateway.log_events()]
    assert (
        events.index("drain_started")
        < events.index("drain_finished")
        < events.index("gateway_stopped")
    )
    drained = next(e for e in gateway.log_events() if e["event"] == "drain_started")
    assert drained["clients"] == 3
    for client in clients:
        # A lost connection, not a server kick: official clients then reconnect by themselves.
        assert client.connects == 1
        assert not client.sio.connected
        assert client.disconnect_reasons
        assert client.disconnect_reasons[0] != client.sio.reason.SERVER_DISCONNECT


def _get(url: str) -> tuple[int, bytes]:
    from tests.support.services import http_get

    return http_get(url)


async def _post(url: str, body: dict[str, object], token: str | None) -> int:
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)

    def send() -> int:
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as err:
            return err.code

    return await asyncio.to_thread(send)
