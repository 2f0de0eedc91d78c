"""POST /api/signals on a real gateway process with real Redis and a real Socket.IO client."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt
import pytest
import redis.asyncio as aioredis

from common.constants import DEFAULT_CHANNEL, history_key
from common.offsets import parse_position
from tests.conftest import ClientFactory, ServiceFactory
from tests.support.redis_server import AOF_ALWAYS, own_redis

pytestmark = pytest.mark.e2e

CI_SECRET = "ci-publisher-secret-0123456789"
TV_SECRET = "tradingview-hook-secret-987654"
JWT_SECRET = "an-hs256-secret-that-is-long-enough-0123456789"
PUBLISH = {
    "publish_tokens": f"ci:{CI_SECRET},tv:{TV_SECRET}",
    "jwt_secret": JWT_SECRET,
    "publish_rate_per_s": 1000,
    "publish_burst": 1000,
}
BEARER = {"Authorization": f"Bearer {CI_SECRET}"}


def signal(n: int, **extra: Any) -> dict[str, Any]:
    return {"type": "BUY" if n % 2 else "SELL", "price": 100.0 + n, "symbol": "BTC-USD", **extra}


def token(**claims: Any) -> str:
    return jwt.encode({"sub": "bot", "exp": time.time() + 300, **claims}, JWT_SECRET, "HS256")


async def post(base: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=15) as http:
        return await http.post(
            "/api/signals", json=body, headers=BEARER if headers is None else headers
        )


async def test_one_and_a_batch_reach_a_socketio_client_with_their_offsets(
    service_factory: ServiceFactory, client_factory: ClientFactory
) -> None:
    gateway = service_factory("gateway", **PUBLISH)
    client = await client_factory(gateway.base_url)
    one = await post(gateway.base_url, signal(0, id="first"))
    assert one.status_code == 200, one.text
    batch = await post(gateway.base_url, [signal(n) for n in range(1, 4)])
    assert batch.status_code == 200, batch.text
    results = one.json()["results"] + batch.json()["results"]
    assert results[0]["id"] == "first" and not any(r["duplicate"] for r in results)
    assert all(len(r["id"]) == 32 for r in results[1:])  # made by the gateway (uuid4 hex)
    positions = [parse_position(r["offset"]) for r in results]
    assert all(p is not None and p.epoch for p in positions)
    assert [p.offset for p in positions if p] == sorted(p.offset for p in positions if p)
    await client.wait_for(4)
    got = [(s["id"], s["offset"], s["price"]) for s in client.signals]
    assert got == [(r["id"], r["offset"], 100.0 + n) for n, r in enumerate(results)]
    assert gateway.metric("qs_gateway_api_published_total", {"outcome": "published"}) == 4


async def test_a_repeated_id_answers_the_original_offset_and_is_delivered_once(
    service_factory: ServiceFactory, client_factory: ClientFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway", **PUBLISH)
    client = await client_factory(gateway.base_url)
    first = (await post(gateway.base_url, signal(1, id="dup-1"))).json()["results"][0]
    again = await post(gateway.base_url, [signal(1, id="dup-1"), signal(2, id="new-2")])
    repeat, fresh = again.json()["results"]
    assert repeat == {"id": "dup-1", "offset": first["offset"], "duplicate": True}
    assert fresh["duplicate"] is False and fresh["offset"] != first["offset"]
    await client.wait_for(2)
    await asyncio.sleep(0.3)  # a second delivery of dup-1 would arrive by now
    assert [s["id"] for s in client.signals] == ["dup-1", "new-2"]
    assert await redis_client.xlen(history_key(DEFAULT_CHANNEL)) == 2
    assert gateway.metric("qs_gateway_api_published_total", {"outcome": "duplicate"}) == 1


async def test_an_invalid_item_names_index_and_field_and_nothing_is_published(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway", **PUBLISH, publish_batch_max=5)
    cases: list[tuple[Any, int, dict[str, Any]]] = [
        ([signal(0), {"type": "HOLD", "price": 1}], 422, {"index": 1, "field": "type"}),
        ([signal(0), signal(1), signal(2, price="60000")], 422, {"index": 2, "field": "price"}),
        ([signal(0, offset="abcdefgh:1-0")], 422, {"index": 0, "field": "offset"}),
        ([signal(0), 7], 422, {"index": 1, "field": None}),
        ([signal(n) for n in range(6)], 422, {"error": "invalid_body"}),
        ([], 422, {"error": "invalid_body"}),
    ]
    for body, status, expected in cases:
        response = await post(gateway.base_url, body)
        assert response.status_code == status, response.text
        assert expected.items() <= response.json().items(), response.text
        if "index" in expected:
            assert response.json()["error"] == "invalid_signal"
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        not_json = await http.post("/api/signals", content=b"{nope", headers=BEARER)
        assert not_json.status_code == 400 and not_json.json()["error"] == "invalid_json"
        huge = await http.post("/api/signals", content=b" " * (64 * 1024 * 5 + 1), headers=BEARER)
        assert huge.status_code == 413
    assert await redis_client.exists(history_key(DEFAULT_CHANNEL)) == 0
    assert gateway.metric("qs_gateway_api_published_total", {"outcome": "invalid"}) == 8


async def test_every_auth_failure_and_the_webhook_path(service_factory: ServiceFactory) -> None:
    closed = service_factory("gateway")
    refused = await post(closed.base_url, signal(0))
    assert refused.status_code == 403 and refused.json()["error"] == "publishing_disabled"

    gateway = service_factory("gateway", **PUBLISH)
    base = gateway.base_url
    expectations = [
        ({}, 401),
        ({"Authorization": "Bearer wrong-secret-0123456789"}, 401),
        ({"Authorization": f"Basic {CI_SECRET}"}, 401),
        ({"Authorization": f"Bearer {token()}"}, 403),  # a valid JWT without the role
        ({"Authorization": f"Bearer {token(role='reader')}"}, 403),
        ({"Authorization": f"Bearer {token(role='publisher')[:-2]}xx"}, 401),  # bad signature
        ({"Authorization": f"Bearer {token(role='publisher')}"}, 200),
        ({"Authorization": f"Bearer {token(roles=['x', 'publisher'])}"}, 200),
        ({"Authorization": f"Bearer {TV_SECRET}"}, 200),
    ]
    for headers, status in expectations:
        response = await post(base, signal(0), headers)
        assert response.status_code == status, (headers, response.text)
        if status == 401:
            assert response.headers["www-authenticate"] == "Bearer"
    async with httpx.AsyncClient(base_url=base) as http:
        hook = await http.post(
            f"/api/signals/hook/{TV_SECRET}", content=b'{"type":"BUY","price":1}'
        )
        assert hook.status_code == 200, hook.text
        wrong = await http.post("/api/signals/hook/not-the-secret-0123", json=signal(0))
        assert wrong.status_code == 401
    assert gateway.metric("qs_gateway_api_published_total", {"outcome": "unauthorized"}) == 7
    assert TV_SECRET not in gateway.log_path.read_text()  # the path's secret is never logged


async def test_a_token_over_its_rate_gets_429_with_retry_after(
    service_factory: ServiceFactory,
) -> None:
    limits = {"publish_rate_per_s": 0.2, "publish_burst": 2}
    gateway = service_factory("gateway", **{**PUBLISH, **limits})
    statuses = [(await post(gateway.base_url, signal(n))).status_code for n in range(2)]
    limited = await post(gateway.base_url, signal(3))
    assert statuses == [200, 200] and limited.status_code == 429
    assert limited.json()["error"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 5
    other = await post(gateway.base_url, signal(4), {"Authorization": f"Bearer {TV_SECRET}"})
    assert other.status_code == 200  # buckets are per token
    assert gateway.metric("qs_gateway_api_published_total", {"outcome": "rate_limited"}) == 1


async def test_redis_stopped_answers_503_and_publishes_nothing(
    service_factory: ServiceFactory,
) -> None:
    with own_redis(*AOF_ALWAYS) as server:
        gateway = service_factory("gateway", **PUBLISH, redis_url=server.url)
        assert (await post(gateway.base_url, signal(0, id="before"))).status_code == 200
        server.stop()
        down = await post(gateway.base_url, [signal(n, id=f"down-{n}") for n in range(5)])
        assert down.status_code == 503 and down.json() == {"error": "redis_unavailable"}
        server.start()
        client = aioredis.Redis.from_url(server.url)
        try:
            # Only "before": none of the batch.
            assert await client.xlen(history_key(DEFAULT_CHANNEL)) == 1
            assert await client.exists(f"{DEFAULT_CHANNEL}:seen:down-0") == 0
        finally:
            await client.aclose()
        retried = await post(gateway.base_url, [signal(n, id=f"down-{n}") for n in range(5)])
        assert retried.status_code == 200, retried.text
        assert not any(r["duplicate"] for r in retried.json()["results"])
    assert gateway.metric("qs_gateway_api_published_total", {"outcome": "unavailable"}) == 1
