"""The published contract holds for what a running system really sends.

Real Redis, a monitor and a gateway process; signals published by the monitor and through
POST /api/signals. What a python-socketio client receives for every server->client event
(signals, recovery after a reconnect with an offset, system_message, the acks of
subscribe/unsubscribe/auth_refresh, auth_expiring/auth_expired, connect_error), what the SSE
stream sends, what the Redis channel carries (a raw redis-py subscriber) and what every HTTP
endpoint answers is validated with jsonschema against the schemas of the AsyncAPI and
OpenAPI documents the gateway serves, which must equal the committed docs/ copies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import jwt
import orjson
import pytest
import redis.asyncio as aioredis
import socketio
from referencing import Registry
from referencing.jsonschema import DRAFT7, DRAFT202012

from common.constants import DEFAULT_CHANNEL, SUBSCRIBE_EVENT, UNSUBSCRIBE_EVENT
from tests.conftest import ServiceFactory
from tests.e2e.test_sse import sse

pytestmark = pytest.mark.e2e

DOCS = Path(__file__).resolve().parents[2] / "docs"
CI = "ci-publisher-secret-0123456789"
FLOOD = "flood-publisher-secret-012345"
ADMIN = "admin-token-0123456789abcdef"
JWT_SECRET = "an-hs256-secret-that-is-long-enough-0123456789"
GATEWAY = {
    "api_docs": "on",
    "publish_tokens": f"ci:{CI},flood:{FLOOD}",
    "publish_burst": 10,
    "publish_rate_per_s": 0.5,
    "admin_token": ADMIN,
    "jwt_secret": JWT_SECRET,
}
MONITOR = {
    "tick_interval_s": 0.05,
    "symbols": "AAA,BBB",
    "strategies": "sma_cross,rsi,macd_cross,bollinger",
    "sim_volatility": 0.01,
}


def token(ttl_s: float, **claims: Any) -> str:
    return jwt.encode({"sub": "c", "exp": time.time() + ttl_s, **claims}, JWT_SECRET, "HS256")


def pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class Contract:
    """Validates instances against parts of one document (its refs resolved in it)."""

    def __init__(self, document: dict[str, Any], uri: str, spec: Any, validator: Any) -> None:
        self.document = document
        self.uri = uri
        self.registry: Registry[Any] = Registry().with_resource(uri, spec.create_resource(document))
        self.validator = validator
        self.checked: dict[str, int] = {}

    def check(self, where: str, instance: Any) -> None:
        schema = {"$ref": f"{self.uri}#/{where}"}
        errors = [
            e.message for e in self.validator(schema, registry=self.registry).iter_errors(instance)
        ]
        assert errors == [], f"{where}: {instance!r}: {errors[:3]}"
        self.checked[where] = self.checked.get(where, 0) + 1


class AsyncApi(Contract):
    def message(self, key: str, payload: Any) -> None:
        assert key in self.document["components"]["messages"], key
        self.check(pointer("components", "messages", key, "payload"), payload)


class OpenApi(Contract):
    def response(self, method: str, path: str, response: httpx.Response) -> None:
        where = pointer("paths", path, method, "responses", str(response.status_code))
        assert str(response.status_code) in self.document["paths"][path][method]["responses"], (
            f"{method} {path} answered an undeclared {response.status_code}: {response.text}"
        )
        self.check(where + "/" + pointer("content", "application/json", "schema"), response.json())

    def stream(self, path: str, response: httpx.Response) -> None:
        """A 200 that is not JSON: its declared media type is what came."""
        where = pointer("paths", path, "get", "responses", "200")
        declared = self.document["paths"][path]["get"]["responses"]["200"]["content"]
        assert response.headers["content-type"].split(";")[0] in declared
        self.checked[where] = self.checked.get(where, 0) + 1


@contextlib.asynccontextmanager
async def channel_recorder(url: str, into: list[Any]) -> AsyncIterator[None]:
    """A raw redis-py subscriber to the signal channel."""
    client = aioredis.Redis.from_url(url)
    pubsub = client.pubsub()
    await pubsub.subscribe(DEFAULT_CHANNEL)

    async def read() -> None:
        async for message in pubsub.listen():
            if message["type"] == "message":
                into.append(orjson.loads(message["data"]))

    task = asyncio.create_task(read())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await pubsub.aclose()
        await client.aclose()


class Recorder:
    """A python-socketio client that keeps every event it gets, by name."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("*", self._any)
        self.sio.on("connect_error", self._refused)

    async def _any(self, event: str, data: Any = None) -> None:
        self.events.append((event, data))

    async def _refused(self, data: Any = None) -> None:
        self.events.append(("connect_error", data))

    def of(self, event: str) -> list[Any]:
        return [data for name, data in self.events if name == event]

    async def wait(self, event: str, count: int = 1, timeout_s: float = 15.0) -> list[Any]:
        deadline = time.monotonic() + timeout_s
        while len(self.of(event)) < count:
            assert time.monotonic() < deadline, f"{count} {event} expected, got {self.events}"
            await asyncio.sleep(0.02)
        return self.of(event)


async def served(http: httpx.AsyncClient, path: str) -> dict[str, Any]:
    answer = (await http.get(path)).json()
    assert answer == json.loads((DOCS / path.lstrip("/")).read_text()), f"{path} != docs/"
    return answer  # type: ignore[no-any-return]


async def test_real_payloads_match_the_published_documents(
    service_factory: ServiceFactory, redis_url: str
) -> None:
    gateway = service_factory("gateway", **GATEWAY)
    base = gateway.base_url
    on_redis: list[Any] = []
    async with (
        httpx.AsyncClient(base_url=base, timeout=15) as http,
        channel_recorder(redis_url, on_redis),
    ):
        asyncapi = AsyncApi(
            await served(http, "/asyncapi.json"), "urn:asyncapi", DRAFT7, jsonschema.Draft7Validator
        )
        openapi = OpenApi(
            await served(http, "/openapi.json"),
            "urn:openapi",
            DRAFT202012,
            jsonschema.Draft202012Validator,
        )
        live = Recorder()
        await socket_session(live, asyncapi, base)
        offsets = await http_calls(http, openapi)
        service_factory("monitor", **MONITOR)
        await live.wait("new_signal", 6, timeout_s=30)
        await live.wait("system_message")
        await resumed_session(asyncapi, base, offsets[0])
        await expiring_session(asyncapi, base)
        await refused_session(asyncapi, base)
        await stream(asyncapi, openapi, base, offsets[0])
        for name, key in (("new_signal", "new_signal"), ("system_message", "system_message")):
            for data in live.of(name):
                asyncapi.message(key, data)
        assert any("indicators" in s for s in live.of("new_signal")), "no monitor signal seen"
        await live.sio.disconnect()
    assert on_redis, "the raw subscriber got nothing"
    for data in on_redis:
        asyncapi.message("new_signal", data)  # the channel's message: a Signal
    assert set(asyncapi.document["components"]["messages"]) == {
        where.split("/")[2] for where in asyncapi.checked
    }, "a documented message was never captured"
    for path, methods in openapi.document["paths"].items():
        for method in methods:
            codes = [w for w in openapi.checked if w.startswith(pointer("paths", path, method))]
            assert any("/responses/2" in w for w in codes), f"{method} {path} never answered 2xx"


async def socket_session(live: Recorder, asyncapi: AsyncApi, base: str) -> None:
    """Acks of subscribe/unsubscribe/auth_refresh, both kinds, with what the client sent."""
    auth = {"token": token(300)}
    asyncapi.message("connect", auth)
    await live.sio.connect(base, transports=["websocket"], auth=auth, wait_timeout=10)
    requests: list[tuple[str, str, Any]] = [
        (SUBSCRIBE_EVENT, "subscribe", {"symbols": ["AAA", "BBB", "CCC"], "types": "BUY"}),
        (SUBSCRIBE_EVENT, "subscribe", {"types": ["SELL"]}),
        (SUBSCRIBE_EVENT, "subscribe", ["DDD"]),
        (UNSUBSCRIBE_EVENT, "unsubscribe", "DDD"),
        (UNSUBSCRIBE_EVENT, "unsubscribe", {"symbols": ["CCC"]}),
        ("auth_refresh", "auth_refresh", {"token": token(600)}),
        ("auth_refresh", "auth_refresh", {"token": "not-a-jwt"}),
        (SUBSCRIBE_EVENT, "subscribe", {"colour": ["red"]}),
        (UNSUBSCRIBE_EVENT, "unsubscribe", 42),
    ]
    acks = []
    for event, key, data in requests:
        if len(acks) < 7:  # the last two are refused requests, outside the schema
            asyncapi.message(key, data)  # what a client may send, as documented
        ack = await live.sio.call(event, data, timeout=5)
        asyncapi.message(f"{key}_ack", ack)
        acks.append(ack)
    assert [a["ok"] for a in acks] == [True] * 6 + [False] * 3, acks
    assert acks[4] == {
        "ok": True,
        "symbols": ["AAA", "BBB"],
        "strategies": [],
        "types": ["BUY", "SELL"],
    }


async def http_calls(http: httpx.AsyncClient, openapi: OpenApi) -> list[str]:
    """Every endpoint, answering and refusing; returns the offsets published."""
    bearer = {"Authorization": f"Bearer {CI}"}
    one = {"type": "BUY", "price": 1.5, "symbol": "AAA", "id": "contract-1", "reason": "test"}
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("post", "/api/signals", {"json": one, "headers": bearer}),
        (
            "post",
            "/api/signals",
            {"json": [one, {"type": "SELL", "price": 2, "symbol": "BBB"}], "headers": bearer},
        ),
        ("post", "/api/signals", {"content": b"{nope", "headers": bearer}),
        ("post", "/api/signals", {"json": [one, {"type": "HOLD", "price": 1}], "headers": bearer}),
        ("post", "/api/signals", {"json": [], "headers": bearer}),
        ("post", "/api/signals", {"json": one, "headers": {"Authorization": "Bearer wrong"}}),
        (
            "post",
            "/api/signals",
            {"json": one, "headers": {"Authorization": f"Bearer {token(60)}"}},
        ),
        ("post", "/api/signals", {"content": b"x" * (65536 * 100 + 1), "headers": bearer}),
        (
            "post",
            "/api/signals/hook/{secret}",
            {"json": {"type": "SELL", "price": 3, "symbol": "AAA"}},
        ),
        ("post", "/api/signals/hook/{secret}", {"json": one, "wrong": True}),
        ("get", "/api/signals", {"params": {"symbol": "AAA", "limit": 2}}),
        ("get", "/api/signals", {"params": {"since": "yesterday-ish"}}),
        ("get", "/api/signals", {"params": {"limit": 0}}),
        ("get", "/api/signals", {"headers": {"Authorization": "Bearer bad"}}),
        ("get", "/api/signals/latest", {"params": {"limit": 3}}),
        ("get", "/api/bars", {"params": {"symbol": "AAA", "limit": 2}}),
        ("get", "/api/bars", {"params": {"symbol": "AAA", "limit": 501}}),
        ("get", "/api/bars", {"params": {"symbol": "AAA"}, "headers": {"Authorization": "x y"}}),
        ("get", "/api/scores", {"params": {"symbol": "AAA"}}),
        ("get", "/api/scores", {"headers": {"Authorization": "Bearer bad"}}),
        (
            "post",
            "/api/broadcast",
            {
                "json": {"message": "maintenance", "level": "warning"},
                "headers": {"Authorization": f"Bearer {ADMIN}"},
            },
        ),
        (
            "post",
            "/api/broadcast",
            {"json": {"message": "x"}, "headers": {"Authorization": "Bearer wrong"}},
        ),
        (
            "post",
            "/api/broadcast",
            {
                "json": {"message": "x", "level": "loud"},
                "headers": {"Authorization": f"Bearer {ADMIN}"},
            },
        ),
        ("get", "/api/signals/stream", {"params": {"type": "HOLD"}}),
        ("get", "/api/signals/stream", {"params": {"token": "bad"}}),
        (
            "get",
            "/api/signals/stream",
            {"params": {"symbol": "ZZZ", "token": token(60, symbols=["AAA"])}},
        ),
    ]
    offsets: list[str] = []
    for method, path, kwargs in calls:
        url = path.replace("{secret}", "nope" if kwargs.pop("wrong", False) else CI)
        response = await http.request(method.upper(), url, **kwargs)
        openapi.response(method, path, response)
        if path == "/api/signals" and method == "post" and response.status_code == 200:
            offsets += [r["offset"] for r in response.json()["results"]]
    for _ in range(11):  # the flood token's bucket (PUBLISH_BURST) runs dry: 429
        response = await http.post(
            "/api/signals", json=one, headers={"Authorization": f"Bearer {FLOOD}"}
        )
    openapi.response("post", "/api/signals", response)
    assert response.status_code == 429
    statuses = {w.split("/responses/")[1].split("/")[0] for w in openapi.checked}
    assert statuses >= {"200", "202", "400", "401", "403", "413", "422", "429"}, statuses
    return offsets


async def resumed_session(asyncapi: AsyncApi, base: str, offset: str) -> None:
    """Reconnecting with an offset: the gap as new_signal, then recovery."""
    client = Recorder()
    await client.sio.connect(base, transports=["websocket"], auth={"offset": offset})
    (answer,) = await client.wait("recovery")
    assert answer["complete"] and answer["recovered"] >= 2, answer
    asyncapi.message("recovery", answer)
    for data in client.of("new_signal"):
        asyncapi.message("new_signal", data)
    # Unfiltered (room ``all``), so the monitor's closed bars reach it too.
    for data in await client.wait("new_bar"):
        asyncapi.message("new_bar", data)
    await client.sio.disconnect()


async def expiring_session(asyncapi: AsyncApi, base: str) -> None:
    """A token about to expire: auth_expiring at once (AUTH_WARN_BEFORE_S), then auth_expired."""
    client = Recorder()
    await client.sio.connect(base, transports=["websocket"], auth={"token": token(2)})
    asyncapi.message("auth_expiring", (await client.wait("auth_expiring"))[0])
    asyncapi.message("auth_expired", (await client.wait("auth_expired", timeout_s=10))[0])
    with contextlib.suppress(Exception):
        await client.sio.disconnect()


async def refused_session(asyncapi: AsyncApi, base: str) -> None:
    client = Recorder()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.sio.connect(base, transports=["websocket"], auth={"offset": "not-an-offset"})
    (refusal,) = await client.wait("connect_error")
    asyncapi.message("connect_error", refusal)


async def stream(asyncapi: AsyncApi, openapi: OpenApi, base: str, offset: str) -> None:
    """The SSE stream resumed from an offset: signal events, then recovery."""
    async with sse(base, params={"offset": offset}) as reader:
        openapi.stream("/api/signals/stream", reader.response)
        await reader.wait_for(1, "recovery")
        await reader.wait_for(2)
        for event in reader.of("signal"):
            asyncapi.message("sse_signal", event["data"])
            assert event["id"] == event["data"]["offset"]
        asyncapi.message("sse_recovery", reader.of("recovery")[0]["data"])
