"""Bars end to end: a real monitor publishes closed bars, real gateways serve and relay them.

GET /api/bars answers the monitor's stored bars oldest first with their timeframe; a
python-socketio client gets ``new_bar`` only for the symbols it subscribed to; a token's
symbols claim limits /api/bars; /api/info says the market is simulated; the bars relay
reconnects after a Redis restart.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
import socketio

from common.constants import BAR_EVENT
from tests.conftest import ServiceFactory
from tests.support.redis_server import ProcessRedis, RedisServer

pytestmark = pytest.mark.e2e

SECRET = "an-hs256-secret-that-is-long-enough-0123456789"
TICK = 0.05
MONITOR = {"symbols": "AAA,BBB", "tick_interval_s": TICK, "bars_keep": 200, "lease_ttl_s": 1.5}


class BarClient:
    """A python-socketio client keeping every ``new_bar``."""

    def __init__(self) -> None:
        self.bars: list[dict[str, Any]] = []
        self.sio = socketio.AsyncClient(reconnection_delay=0.1, reconnection_delay_max=0.5)
        self.sio.on(BAR_EVENT, self._on_bar)

    async def _on_bar(self, bar: dict[str, Any]) -> None:
        self.bars.append(bar)

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.bars) < count:
            assert time.monotonic() < deadline, f"got {len(self.bars)} bars, expected {count}"
            await asyncio.sleep(0.02)


@pytest.fixture
async def bar_clients() -> AsyncIterator[list[BarClient]]:
    clients: list[BarClient] = []
    yield clients
    await asyncio.gather(*(c.sio.disconnect() for c in clients if c.sio.connected))


async def connect(clients: list[BarClient], url: str) -> BarClient:
    client = BarClient()
    clients.append(client)
    await client.sio.connect(url, transports=["websocket"], wait_timeout=10)
    return client


def token(symbols: list[str]) -> dict[str, str]:
    claims = {"sub": "alice", "exp": time.time() + 300, "symbols": symbols}
    return {"Authorization": f"Bearer {jwt.encode(claims, SECRET, 'HS256')}"}


async def test_bars_api_live_bars_by_symbol_and_market_info(
    service_factory: ServiceFactory, bar_clients: list[BarClient]
) -> None:
    gateway = service_factory("gateway")
    service_factory("monitor", **MONITOR)
    only_aaa = await connect(bar_clients, gateway.base_url)
    everything = await connect(bar_clients, gateway.base_url)
    assert (await only_aaa.sio.call("subscribe", {"symbols": ["AAA"]}, timeout=5))["ok"]
    # Bars heard before the subscription took effect are everyone's (the ack comes after).
    only_aaa.bars.clear()
    await everything.wait_for(20)
    await only_aaa.wait_for(10)
    assert {b["symbol"] for b in only_aaa.bars} == {"AAA"}
    assert {b["symbol"] for b in everything.bars} == {"AAA", "BBB"}
    live = only_aaa.bars[-1]
    assert set(live) == {"symbol", "t", "o", "h", "l", "c", "v", "timeframe"}
    assert live["timeframe"] == "50ms"
    assert live["l"] <= min(live["o"], live["c"]) <= max(live["o"], live["c"]) <= live["h"]

    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        body = (await http.get("/api/bars", params={"symbol": "AAA"})).json()
        assert body["symbol"] == "AAA" and body["timeframe"] == "50ms"
        times = [b["t"] for b in body["bars"]]
        assert 20 <= len(times) <= 200  # BARS_KEEP bounds the list
        # Oldest first, on the bar grid (a monitor that falls behind skips to the current bar).
        steps = [(b - a) / TICK for a, b in itertools.pairwise(times)]
        assert all(step > 0.999 and abs(step - round(step)) < 1e-3 for step in steps), steps
        assert live["t"] in times and live == body["bars"][times.index(live["t"])]
        last5 = (await http.get("/api/bars", params={"symbol": "AAA", "limit": 5})).json()
        newest = [b["t"] for b in last5["bars"]]
        assert len(newest) == 5 and newest == sorted(newest) and newest[0] >= times[-5]
        assert (
            await http.get("/api/bars", params={"symbol": "AAA", "limit": 501})
        ).status_code == 422
        unknown = (await http.get("/api/bars", params={"symbol": "ZZZ"})).json()
        assert unknown == {"symbol": "ZZZ", "timeframe": "50ms", "bars": []}
        market = (await http.get("/api/info")).json()["market"]
    assert market == {
        "source": "sim",
        "simulated": True,
        "timeframe": "50ms",
        "symbols": ["AAA", "BBB"],
        "strategies": ["sma_cross"],
    }


async def test_token_symbols_claim_limits_bars(service_factory: ServiceFactory) -> None:
    gateway = service_factory("gateway", auth_required="true", jwt_secret=SECRET)
    monitor = service_factory("monitor", **MONITOR)
    monitor.wait_for(lambda: monitor.metric("qs_monitor_ticks_total") >= 20, 10, "ticking")
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        missing = await http.get("/api/bars", params={"symbol": "AAA"})
        assert missing.status_code == 401 and missing.json()["message"] == "missing_token"
        allowed = await http.get("/api/bars", params={"symbol": "AAA"}, headers=token(["AAA"]))
        assert allowed.status_code == 200 and allowed.json()["bars"]
        refused = await http.get("/api/bars", params={"symbol": "BBB"}, headers=token(["AAA"]))
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
        wildcard = await http.get("/api/bars", params={"symbol": "BBB"}, headers=token(["*"]))
        assert wildcard.status_code == 200 and wildcard.json()["bars"]


async def test_bars_relay_reconnects_after_a_redis_restart(
    service_factory: ServiceFactory, redis_server: RedisServer, bar_clients: list[BarClient]
) -> None:
    if not isinstance(redis_server, ProcessRedis):
        pytest.skip("needs a redis-server process it can restart")
    gateway = service_factory("gateway", redis_backoff_max_s=0.3)
    service_factory("monitor", redis_backoff_max_s=0.3, **MONITOR)
    client = await connect(bar_clients, gateway.base_url)
    await client.wait_for(5)
    bars = {"loop": "bars"}
    assert gateway.metric("qs_redis_reconnects_total", bars) == 0
    redis_server.stop()
    redis_server.start()
    await asyncio.to_thread(
        gateway.wait_for,
        lambda: (
            gateway.metric("qs_redis_reconnects_total", bars) >= 1
            and gateway.metric("qs_redis_connected", bars) == 1
        ),
        15,
        "bars relay back",
    )
    seen = len(client.bars)
    await client.wait_for(seen + 10, 15)  # live bars flow again through the new subscription
