"""``new_bar`` reaches every client whose filter includes the bar's symbol, whatever the
filter says about strategies and sides (a bar has neither): a real gateway, real
python-socketio clients, bars published on the monitor's Redis channel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import orjson
import pytest
import redis.asyncio as aioredis
import socketio

from common.constants import BAR_EVENT, DEFAULT_CHANNEL, bars_channel
from tests.conftest import ServiceFactory

pytestmark = pytest.mark.e2e

SECRET = "an-hs256-secret-that-is-long-enough-0123456789"
SYMBOLS = ("AAA", "BBB", "C:D")  # C:D: a symbol the room names must escape


class Client:
    def __init__(self) -> None:
        self.bars: list[str] = []
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on(BAR_EVENT, self._on_bar)

    async def _on_bar(self, bar: dict[str, Any]) -> None:
        self.bars.append(bar["symbol"])


@pytest.fixture
async def clients() -> AsyncIterator[list[Client]]:
    made: list[Client] = []
    yield made
    await asyncio.gather(*(c.sio.disconnect() for c in made if c.sio.connected))


async def connect(
    made: list[Client], url: str, filt: dict[str, list[str]] | None, auth: Any = None
) -> Client:
    client = Client()
    made.append(client)
    await client.sio.connect(url, transports=["websocket"], auth=auth, wait_timeout=10)
    if filt is not None:
        ack = await client.sio.call("subscribe", filt, timeout=5)
        assert ack["ok"], ack
    return client


async def publish_bars(redis_client: aioredis.Redis, until: list[Client]) -> None:
    """One bar per symbol, then a marker bar, until every client has the marker: what came
    before it has been delivered (one relay, one socket, in order)."""
    for symbol in (*SYMBOLS, "ZZZ"):
        bar = {"symbol": symbol, "t": 1.0, "o": 1, "h": 1, "l": 1, "c": 1, "v": 1}
        await redis_client.publish(bars_channel(DEFAULT_CHANNEL), orjson.dumps(bar))
    deadline = time.monotonic() + 10
    while not all("ZZZ" in c.bars for c in until):
        assert time.monotonic() < deadline, [c.bars for c in until]
        await asyncio.sleep(0.02)


async def test_strategy_and_side_filters_do_not_hide_the_market(
    service_factory: ServiceFactory, redis_client: aioredis.Redis, clients: list[Client]
) -> None:
    gateway = service_factory("gateway")
    url = gateway.base_url
    cases = {
        "no filter": (None, {*SYMBOLS}),
        "symbol": ({"symbols": ["AAA"]}, {"AAA"}),
        "symbol+strategy+side": (
            {"symbols": ["AAA", "C:D"], "strategies": ["sma_cross", "rsi"], "types": ["BUY"]},
            {"AAA", "C:D"},
        ),
        "strategy only": ({"strategies": ["macd_cross"]}, {*SYMBOLS}),
        "side only": ({"types": ["SELL"]}, {*SYMBOLS}),
    }
    made = {name: await connect(clients, url, filt) for name, (filt, _) in cases.items()}
    # The marker must reach everyone: a last symbol-filtered client subscribes to it too.
    for name, (filt, _) in cases.items():
        if filt is not None and "symbols" in filt:
            ack = await made[name].sio.call("subscribe", {"symbols": ["ZZZ"]}, timeout=5)
            assert ack["ok"], ack
    await publish_bars(redis_client, list(made.values()))
    for name, (_, expected) in cases.items():
        got = made[name].bars
        assert set(got) - {"ZZZ"} == expected, name
        assert len(got) == len(set(got)), f"{name}: a bar twice: {got}"  # one per client


async def test_a_tokens_symbols_claim_still_limits_bars(
    service_factory: ServiceFactory, redis_client: aioredis.Redis, clients: list[Client]
) -> None:
    gateway = service_factory("gateway", auth_required="true", jwt_secret=SECRET)
    claims = {"sub": "alice", "exp": time.time() + 300, "symbols": ["AAA", "ZZZ"]}
    auth = {"token": jwt.encode(claims, SECRET, "HS256")}
    limited = await connect(clients, gateway.base_url, {"strategies": ["rsi"]}, auth)
    await publish_bars(redis_client, [limited])
    assert sorted(limited.bars) == ["AAA", "ZZZ"]
