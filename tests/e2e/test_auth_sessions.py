"""JWT on real connections: refused reasons, symbol claims, expiry and refresh."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt
import pytest
import redis.asyncio as aioredis
import socketio

from common.constants import DEFAULT_CHANNEL
from tests.conftest import ServiceFactory
from tests.support.clients import RecordingClient

pytestmark = pytest.mark.e2e

SECRET = "an-hs256-secret-that-is-long-enough-0123456789"
AUTH = {"auth_required": "true", "jwt_secret": SECRET, "jwt_audience": "qs"}


def token(ttl_s: float = 300, **claims: Any) -> str:
    return jwt.encode(
        {"sub": "alice", "aud": "qs", "exp": time.time() + ttl_s, **claims},
        SECRET,
        algorithm="HS256",
    )


async def refusal(url: str, auth: dict[str, Any] | None) -> str:
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(url, transports=["websocket"], auth=auth, wait_timeout=5)
    return str(errors[0])


async def test_bad_tokens_are_refused_with_their_reason(service_factory: ServiceFactory) -> None:
    gateway = service_factory("gateway", **AUTH)
    assert "missing_token" in await refusal(gateway.base_url, None)
    assert "token_expired" in await refusal(gateway.base_url, {"token": token(ttl_s=-60)})
    assert "wrong_audience" in await refusal(gateway.base_url, {"token": token(aud="someone-else")})
    assert "bad_signature" in await refusal(gateway.base_url, {"token": token() + "x"})
    assert gateway.metric("qs_gateway_auth_refused_total") == 4


async def test_symbol_claims_limit_what_a_client_sees(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway", **AUTH)
    client = RecordingClient(gateway.base_url)
    await client.sio.connect(
        gateway.base_url,
        transports=["websocket"],
        auth={"token": token(symbols=["BTC-USD"])},
        wait_timeout=5,
    )
    try:
        refused = await client.sio.call("subscribe", ["ETH-USD"], timeout=5)
        assert refused["ok"] is False and "ETH-USD" in refused["error"]
        assert gateway.metric("qs_gateway_subscribe_refused_total") == 1
        for symbol in ["ETH-USD", "BTC-USD"]:
            await redis_client.publish(
                DEFAULT_CHANNEL, f'{{"type":"BUY","price":1,"symbol":"{symbol}"}}'
            )
        await client.wait_for(1)
        await asyncio.sleep(0.3)
        assert [s["symbol"] for s in client.signals] == ["BTC-USD"]
    finally:
        await client.disconnect()


async def test_expiring_token_is_announced_then_ends_the_session_unless_refreshed(
    service_factory: ServiceFactory,
) -> None:
    gateway = service_factory("gateway", **AUTH, auth_warn_before_s=1, jwt_leeway_s=0)
    events: dict[str, list[Any]] = {"expiring": [], "expired": [], "disconnect": []}

    async def connect(name: str) -> socketio.AsyncClient:
        client = socketio.AsyncClient(reconnection=False)
        client.on("auth_expiring", lambda data: events["expiring"].append((name, data)))
        client.on("auth_expired", lambda data: events["expired"].append(name))
        client.on("disconnect", lambda *_: events["disconnect"].append(name))
        await client.connect(
            gateway.base_url,
            transports=["websocket"],
            auth={"token": token(ttl_s=2.5)},
            wait_timeout=5,
        )
        return client

    lapsing, refreshing = await connect("lapsing"), await connect("refreshing")
    try:
        while not any(name == "refreshing" for name, _ in events["expiring"]):
            await asyncio.sleep(0.05)
        ack = await refreshing.call("auth_refresh", {"token": token(ttl_s=60)}, timeout=5)
        assert ack["ok"] is True
        await asyncio.sleep(3)
        assert events["expired"] == ["lapsing"]
        assert events["disconnect"] == ["lapsing"]
        assert refreshing.connected and not lapsing.connected
        assert gateway.metric("qs_gateway_auth_expired_total") == 1
    finally:
        await refreshing.disconnect()
