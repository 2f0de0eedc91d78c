"""Subscribe by symbol, strategy and side: real gateways, real Socket.IO clients, real Redis.

Each client's signals are compared with a reference filter written out plainly here (not
the gateway's model): the right signals, in order, each exactly once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt
import pytest
import redis.asyncio as aioredis
import socketio

from common.constants import DEFAULT_CHANNEL
from common.publish import SignalPublisher
from tests.conftest import ClientFactory, ServiceFactory
from tests.support.clients import RecordingClient

pytestmark = pytest.mark.e2e

SECRET = "an-hs256-secret-that-is-long-enough-0123456789"
NONE = {"symbols": [], "strategies": [], "types": []}


def series(tag: str) -> list[dict[str, Any]]:
    """Every combination of AAA/BBB/no symbol, sma/rsi/no strategy, BUY/SELL."""
    signals = []
    for symbol in ("AAA", "BBB", None):
        for strategy in ("sma", "rsi", None):
            for side in ("BUY", "SELL"):
                signal: dict[str, Any] = {"id": f"{tag}-{symbol}-{strategy}-{side}"}
                signal |= {"type": side, "price": 1.0}
                if symbol is not None:
                    signal["symbol"] = symbol
                if strategy is not None:
                    signal["strategy"] = strategy
                signals.append(signal)
    return signals


def expected(
    signals: list[dict[str, Any]],
    symbols: tuple[str, ...] = (),
    strategies: tuple[str, ...] = (),
    types: tuple[str, ...] = (),
) -> list[str]:
    """The documented rule: no symbol passes any symbol filter; no strategy passes none."""
    return [
        s["id"]
        for s in signals
        if (not symbols or "symbol" not in s or s["symbol"] in symbols)
        and (not strategies or s.get("strategy") in strategies)
        and (not types or s["type"] in types)
    ]


async def publish(client: aioredis.Redis, signals: list[dict[str, Any]]) -> list[str]:
    publisher = SignalPublisher(client, DEFAULT_CHANNEL)
    offsets = []
    for signal in signals:
        offset = await publisher.publish(signal)
        assert offset is not None
        offsets.append(offset)
    return offsets


async def received(client: RecordingClient, ids: list[str]) -> list[str]:
    """What ``client`` got, once it has had time for ``ids`` and anything extra."""
    await client.wait_for(len(ids))
    await asyncio.sleep(0.3)  # a duplicate or an unwanted signal would arrive meanwhile
    return [s["id"] for s in client.signals]


async def test_subscribe_by_strategy_by_side_and_by_symbol_and_side(
    service_factory: ServiceFactory, client_factory: ClientFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    url = gateway.base_url
    everyone, by_strategy, by_side, by_both, old_form = [
        await client_factory(url) for _ in range(5)
    ]
    acks = [
        await by_strategy.sio.call("subscribe", {"strategies": ["sma"]}, timeout=5),
        await by_side.sio.call("subscribe", {"types": "sell"}, timeout=5),
        await by_both.sio.call("subscribe", {"symbols": ["AAA"], "types": ["BUY"]}, timeout=5),
        await old_form.sio.call("subscribe", ["BBB"], timeout=5),
    ]
    assert acks == [
        {"ok": True, **NONE, "strategies": ["sma"]},
        {"ok": True, **NONE, "types": ["SELL"]},
        {"ok": True, **NONE, "symbols": ["AAA"], "types": ["BUY"]},
        {"ok": True, **NONE, "symbols": ["BBB"]},
    ]
    # Adding to a filter: the old list form still adds symbols to what is in force.
    assert await old_form.sio.call("subscribe", "AAA", timeout=5) == {
        "ok": True,
        **NONE,
        "symbols": ["AAA", "BBB"],
    }
    signals = series("a")
    await publish(redis_client, signals)
    assert await received(everyone, expected(signals)) == expected(signals)
    assert await received(by_strategy, expected(signals, strategies=("sma",))) == expected(
        signals, strategies=("sma",)
    )
    assert await received(by_side, expected(signals, types=("SELL",))) == expected(
        signals, types=("SELL",)
    )
    both = expected(signals, symbols=("AAA",), types=("BUY",))
    assert await received(by_both, both) == both
    assert await received(old_form, expected(signals)) == expected(signals)  # AAA+BBB: all


async def test_unsubscribe_and_a_filter_too_wide_is_refused(
    service_factory: ServiceFactory, client_factory: ClientFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    client = await client_factory(gateway.base_url)
    call = client.sio.call
    wanted = {"symbols": ["AAA"], "strategies": ["rsi", "sma"], "types": ["BUY"]}
    assert await call("subscribe", wanted, timeout=5) == {"ok": True, **wanted}
    # Added to what is in force: 31 symbols x 7 strategies = 217 > 200, refused; unchanged.
    wide = {"symbols": [f"S{n}" for n in range(30)], "strategies": [f"x{n}" for n in range(5)]}
    refused = await call("subscribe", wide, timeout=5)
    assert refused == {
        "ok": False,
        "error": "filter too wide: symbols x strategies x types = 217 rooms, at most 200",
    }
    bad = await call("subscribe", {"types": ["HOLD"]}, timeout=5)
    assert bad == {"ok": False, "error": "types must be BUY or SELL"}

    assert await call("unsubscribe", {"strategies": ["rsi"]}, timeout=5) == {
        "ok": True,
        **wanted,
        "strategies": ["sma"],
    }
    first = series("a")
    await publish(redis_client, first)
    part = expected(first, ("AAA",), ("sma",), ("BUY",))
    assert await received(client, part) == part

    # Unsubscribe with nothing: every signal again.
    assert await call("unsubscribe", timeout=5) == {"ok": True, **NONE}
    second = series("b")
    await publish(redis_client, second)
    assert await received(client, part + expected(second)) == part + expected(second)


async def test_resume_with_a_filter_in_auth_gets_only_the_matching_gap(
    service_factory: ServiceFactory, client_factory: ClientFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    live = await client_factory(gateway.base_url)
    (start,) = await publish(redis_client, [{"id": "start", "type": "BUY", "price": 1}])
    gap = series("gap")
    await publish(redis_client, gap)
    await live.wait_for(1 + len(gap))

    resumer = RecordingClient(gateway.base_url)
    auth = {"offset": start, "strategies": ["sma"], "types": ["SELL"]}
    await resumer.sio.connect(gateway.base_url, transports=["websocket"], auth=auth)
    try:
        await resumer.wait_for(1, attr="recoveries")
        assert resumer.recoveries[0]["complete"] is True
        assert await resumer.sio.call("subscribe", {"symbols": ["BBB"]}, timeout=5) == {
            "ok": True,
            **NONE,
            "symbols": ["BBB"],
            "strategies": ["sma"],
            "types": ["SELL"],
        }
        after = series("live")
        await publish(redis_client, after)
        want = expected(gap, (), ("sma",), ("SELL",)) + expected(
            after, ("BBB",), ("sma",), ("SELL",)
        )
        assert await received(resumer, want) == want
        assert resumer.recoveries[0]["recovered"] == len(expected(gap, (), ("sma",), ("SELL",)))
    finally:
        await resumer.disconnect()


def token(**claims: Any) -> str:
    payload = {"sub": "alice", "aud": "qs", "exp": time.time() + 300, **claims}
    return jwt.encode(payload, SECRET, algorithm="HS256")


async def test_a_symbols_claim_still_limits_symbols(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway", auth_required="true", jwt_secret=SECRET, jwt_audience="qs")
    refused = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    refused.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        auth = {"token": token(symbols=["AAA"]), "symbols": ["BBB"], "types": ["BUY"]}
        await refused.connect(gateway.base_url, transports=["websocket"], auth=auth)
    assert "not allowed" in str(errors[0]) and "BBB" in str(errors[0])

    client = RecordingClient(gateway.base_url)
    auth = {"token": token(symbols=["AAA"]), "types": ["BUY"]}
    await client.sio.connect(gateway.base_url, transports=["websocket"], auth=auth)
    try:
        other = await client.sio.call("subscribe", {"symbols": ["BBB"], "types": ["SELL"]})
        assert other == {"ok": False, "error": "not allowed: BBB"}
        # No symbol asked: the token's symbols are the ones in force.
        ack = await client.sio.call("subscribe", {"strategies": ["sma"]}, timeout=5)
        assert ack == {"ok": True, "symbols": ["AAA"], "strategies": ["sma"], "types": ["BUY"]}
        signals = series("a")
        await publish(redis_client, signals)
        want = expected(signals, ("AAA",), ("sma",), ("BUY",))
        assert await received(client, want) == want
    finally:
        await client.disconnect()
