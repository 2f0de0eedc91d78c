"""Hostile clients: event floods, oversized packets, malformed frames. The gateway refuses
them, counts them, never logs a traceback, and keeps serving a normal client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
import redis.asyncio as aioredis
import websockets

from common.constants import DEFAULT_CHANNEL, SUBSCRIBE_EVENT
from tests.conftest import ClientFactory
from tests.integration.hardening.raw import polling_sid, send_raw, ws_url
from tests.support.redis_server import remove_redis, start_redis
from tests.support.services import ServiceProcess

P = "qs_gateway"
PACKET_LIMIT = 4096

# Each is sent on its own connection after a valid Socket.IO connect.
MALFORMED_FRAMES: list[str | bytes] = [
    "",
    "x",
    "9",
    "0",
    "99999999999999999999",
    "4",
    "42",
    "42[",
    "42{}",
    "42[1]",
    '42["subscribe"',
    '42["subscribe",' + "1" * 4000 + "]",
    "44",
    "451-",
    '451-["a",{"_placeholder":true,"num":99}]',
    "4" + "[" * 2000 + "]" * 2000,
    "42[1e999999]",
    "42[NaN]",
    "4-1",
    "4a",
    "\x00",
    b"\x00\xff\xfe",
    b"",
]
# Engine.IO long-polling bodies (Socket.IO connected first).
MALFORMED_BODIES = [b"", b"x", b"9", b"42[", b"42{}", b"4\x1ex", b"bAAAA", b"\xff\xfe"]


def assert_clean_log(gateway: ServiceProcess) -> None:
    text = gateway.log_path.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
    errors = [e for e in gateway.log_events() if e.get("level") in ("error", "critical")]
    assert not errors, errors


async def assert_serves(
    gateway: ServiceProcess, client_factory: ClientFactory, redis_url: str
) -> None:
    """A normal client can still subscribe and receive a published signal."""
    client = await client_factory(gateway.base_url)
    ack = await client.sio.call(SUBSCRIBE_EVENT, ["BTC-USD"], timeout=5)
    assert ack["ok"], ack
    r = aioredis.Redis.from_url(redis_url)
    try:
        signal = {"symbol": "BTC-USD", "type": "BUY", "price": 1.0}
        await r.publish(DEFAULT_CHANNEL, json.dumps(signal))
    finally:
        await r.aclose()
    await client.wait_for(1, timeout_s=5)
    await client.disconnect()


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    # One Redis and one gateway for the module: each test uses fresh connections and
    # compares counters before and after, so they do not depend on each other.
    server = start_redis()
    try:
        yield server.url
    finally:
        remove_redis(server)


@pytest.fixture(scope="module")
def gateway(redis_url: str) -> Iterator[ServiceProcess]:
    env = {
        "REDIS_URL": redis_url,
        "CLIENT_EVENTS_PER_S": "2",
        "CLIENT_EVENTS_BURST": "3",
        "CLIENT_FLOOD_DISCONNECT_AFTER": "10",
        "MAX_CLIENT_PACKET_BYTES": str(PACKET_LIMIT),
    }
    proc = ServiceProcess("gateway", env).start()
    try:
        yield proc
    finally:
        proc.stop()


async def test_event_flood_is_refused_counted_then_disconnected(
    gateway: ServiceProcess, client_factory: ClientFactory, redis_url: str
) -> None:
    refused = gateway.metric(f"{P}_client_events_refused_total", {"reason": "rate_limited"})
    kicked = gateway.metric(f"{P}_flood_disconnects_total")
    polite = await client_factory(gateway.base_url)
    acks = [await polite.sio.call(SUBSCRIBE_EVENT, ["ETH-USD"], timeout=5) for _ in range(4)]
    assert [a["ok"] for a in acks] == [True, True, True, False]
    assert acks[-1]["error"] == "rate_limited"
    rate_limited = gateway.metric(f"{P}_client_events_refused_total", {"reason": "rate_limited"})
    assert rate_limited == refused + 1
    await asyncio.sleep(0.6)  # one token back: a polite client is served again
    assert (await polite.sio.call(SUBSCRIBE_EVENT, ["ETH-USD"], timeout=5))["ok"]
    assert polite.sio.connected

    flooder = await client_factory(gateway.base_url)
    for _ in range(40):
        await flooder.sio.emit(SUBSCRIBE_EVENT, ["BTC-USD"])
    for _ in range(100):
        if not flooder.sio.connected:
            break
        await asyncio.sleep(0.05)
    assert not flooder.sio.connected
    assert gateway.metric(f"{P}_flood_disconnects_total") == kicked + 1
    assert any(e["event"] == "client_flood_disconnected" for e in gateway.log_events())
    assert polite.sio.connected  # the flood cost only the flooder
    await polite.disconnect()
    await assert_serves(gateway, client_factory, redis_url)
    assert_clean_log(gateway)


async def test_unknown_events_are_refused_and_cost_tokens(
    gateway: ServiceProcess, client_factory: ClientFactory
) -> None:
    unknown = gateway.metric(f"{P}_client_events_refused_total", {"reason": "unknown_event"})
    client = await client_factory(gateway.base_url)
    acks = [await client.sio.call("no_such_event", {"x": 1}, timeout=5) for _ in range(4)]
    assert [a["error"] for a in acks] == ["unknown_event"] * 3 + ["rate_limited"]
    after = gateway.metric(f"{P}_client_events_refused_total", {"reason": "unknown_event"})
    assert after == unknown + 3
    # The client chose the event name: it must not become a label.
    async with httpx.AsyncClient() as http:
        assert "no_such_event" not in (await http.get(f"{gateway.base_url}/metrics")).text


async def test_oversized_packets_are_refused(
    gateway: ServiceProcess, client_factory: ClientFactory, redis_url: str
) -> None:
    too_large = {"reason": "too_large"}
    before = gateway.metric(f"{P}_client_frames_refused_total", too_large)
    big = '42["subscribe",["' + "A" * PACKET_LIMIT + '"]]'
    assert (await send_raw(gateway.base_url, big)).startswith("closed")
    # Counted, although uvicorn refuses it before the app sees it.
    gateway.wait_for(
        lambda: gateway.metric(f"{P}_client_frames_refused_total", too_large) == before + 1,
        5,
        "counting the oversized WebSocket message",
    )
    # Just under the limit is an ordinary (refused by validation, not by size) request.
    fits = '420["subscribe",["' + "A" * (PACKET_LIMIT - 40) + '"]]'
    assert (await send_raw(gateway.base_url, fits)).startswith("reply:430")
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        url = f"/socket.io/?EIO=4&transport=polling&sid={await polling_sid(http)}"
        post = await http.post(url, content=big)
        assert post.status_code in (400, 413)
    await assert_serves(gateway, client_factory, redis_url)
    assert_clean_log(gateway)


async def test_malformed_frames_never_raise(
    gateway: ServiceProcess, client_factory: ClientFactory, redis_url: str
) -> None:
    before = gateway.metric(f"{P}_client_frames_refused_total")
    outcomes = await asyncio.gather(*(send_raw(gateway.base_url, f) for f in MALFORMED_FRAMES))
    # A huge ack id is legal Socket.IO: answered, not an error.
    huge_id = await send_raw(gateway.base_url, '42999999999999999999999["subscribe"]')
    assert huge_id.startswith("reply:43999999999999999999999"), huge_id
    bad = [(f, o) for f, o in zip(MALFORMED_FRAMES, outcomes, strict=True) if "closed" not in o]
    assert not bad, bad
    # WebSocket sessions ended at once, not left behind until the ping timeout.
    gateway.wait_for(lambda: gateway.metric(f"{P}_connected_clients") == 0, 5, "idle")
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        for body in MALFORMED_BODIES:
            url = f"/socket.io/?EIO=4&transport=polling&sid={await polling_sid(http)}"
            assert (await http.post(url, content=b"40")).status_code == 200
            assert (await http.post(url, content=body)).status_code == 400
        # Garbage handshakes: unknown version, transport, session.
        bad_queries = (
            "EIO=9&transport=polling",
            "EIO=4&transport=bogus",
            "transport=polling&sid=x",
        )
        for query in bad_queries:
            assert (await http.get(f"/socket.io/?{query}")).status_code == 400
        ws_bad = ws_url(gateway.base_url).replace("EIO=4", "EIO=3")
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(ws_bad)
    refused = gateway.metric(f"{P}_client_frames_refused_total") - before
    # The unknown version and transport (and the WebSocket one) and the unknown session
    # are answered by the guard: engine.io would log each kind at ERROR level.
    bad_handshakes, unknown_sessions = 3, 1
    expected = len(MALFORMED_FRAMES) + len(MALFORMED_BODIES) + bad_handshakes + unknown_sessions
    assert refused == expected
    handshakes = gateway.metric(f"{P}_client_frames_refused_total", {"reason": "bad_handshake"})
    assert handshakes == bad_handshakes
    stale = gateway.metric(f"{P}_client_frames_refused_total", {"reason": "unknown_session"})
    assert stale == unknown_sessions
    async with websockets.connect(ws_url(gateway.base_url)) as ws:  # and not left half-open
        assert str(await ws.recv()).startswith("0")
    await assert_serves(gateway, client_factory, redis_url)
    assert_clean_log(gateway)
