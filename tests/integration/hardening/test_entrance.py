"""One entrance: every path spelling python-engineio answers goes through the guard.

python-engineio answers ``/socket.io`` as well as ``/socket.io/`` (and anything below it,
and a percent-encoded spelling once the server has decoded the path). For each, against
a real gateway with raw HTTP and raw WebSocket clients: the connection limit, the frame
guard (malformed and binary frames) and the packet-size limit all apply.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.conftest import ServiceFactory
from tests.integration.hardening.logs import assert_clean_log
from tests.support.redis_server import remove_redis, start_redis
from tests.support.services import ServiceProcess

P = "qs_gateway"
PACKET_LIMIT = 4096
SPELLINGS = ["/socket.io/", "/socket.io", "/socket.io/anything", "/socket%2Eio", "/socket%2eio/"]
WS = "EIO=4&transport=websocket"
POLLING = "EIO=4&transport=polling"
CLOSE_WITHIN_S = 5.0


def refused(gateway: ServiceProcess, reason: str) -> float:
    return gateway.metric(f"{P}_client_frames_refused_total", {"reason": reason})


async def ws_session_then(gateway: ServiceProcess, path: str, frame: str | bytes) -> int | None:
    """Open Engine.IO + Socket.IO over a WebSocket at ``path``, send ``frame``; close code."""
    url = gateway.base_url.replace("http://", "ws://") + f"{path}?{WS}"
    async with websockets.connect(url, open_timeout=5, max_size=None) as ws:
        assert str(await ws.recv()).startswith("0")
        await ws.send("40")
        assert str(await ws.recv()).startswith("40")
        await ws.send(frame)
        try:
            async with asyncio.timeout(CLOSE_WITHIN_S):  # pings go unanswered meanwhile
                while True:
                    await ws.recv()
        except websockets.ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None


async def polling_session(http: httpx.AsyncClient, path: str) -> str:
    opened = await http.get(f"{path}?{POLLING}")
    assert opened.status_code == 200, opened.text
    sid: str = json.loads(opened.text[1:])["sid"]
    assert (await http.post(f"{path}?{POLLING}&sid={sid}", content=b"40")).status_code == 200
    return sid


@pytest.fixture(scope="module")
def gateway() -> Iterator[ServiceProcess]:
    redis = start_redis()
    env = {"REDIS_URL": redis.url, "MAX_CLIENT_PACKET_BYTES": str(PACKET_LIMIT)}
    proc = ServiceProcess("gateway", env).start()
    try:
        yield proc
    finally:
        proc.stop()
        remove_redis(redis)


@pytest.mark.parametrize("path", SPELLINGS)
async def test_frames_are_guarded_on_every_spelling(gateway: ServiceProcess, path: str) -> None:
    malformed, binary, too_large = (
        refused(gateway, r) for r in ("malformed", "binary", "too_large")
    )
    # The guard ends the session; Engine.IO then closes its WebSocket normally.
    assert await ws_session_then(gateway, path, "42[") == 1000
    assert refused(gateway, "malformed") == malformed + 1
    assert await ws_session_then(gateway, path, b"\x00\x01") == 1000
    assert refused(gateway, "binary") == binary + 1
    big = '42["subscribe",["' + "A" * PACKET_LIMIT + '"]]'
    assert await ws_session_then(gateway, path, big) == 1009
    gateway.wait_for(lambda: refused(gateway, "too_large") == too_large + 1, 5, "counting")
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        sid = await polling_session(http, path)
        url = f"{path}?{POLLING}&sid={sid}"
        assert (await http.post(url, content=b"42[")).status_code == 400
        sid = await polling_session(http, path)
        url = f"{path}?{POLLING}&sid={sid}"
        assert (await http.post(url, content=big.encode())).status_code == 413
    assert refused(gateway, "malformed") == malformed + 2
    assert refused(gateway, "too_large") == too_large + 2
    assert_clean_log(gateway)


async def test_the_connection_limit_holds_on_every_spelling(
    service_factory: ServiceFactory,
) -> None:
    gateway = service_factory("gateway", max_connections=2)
    ws_base = gateway.base_url.replace("http://", "ws://")
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        for path in SPELLINGS[:2]:  # fill it, one session per spelling
            await polling_session(http, path)
        for path in SPELLINGS:
            full = await http.get(f"{path}?{POLLING}")
            assert full.status_code == 503, (path, full.text)
            assert full.json()["error"] == "server_full"
            with pytest.raises(websockets.InvalidStatus) as refusal:
                async with websockets.connect(f"{ws_base}{path}?{WS}", open_timeout=5):
                    pass
            assert refusal.value.response.status_code == 503, path
    refusals = 2 * len(SPELLINGS)
    limit = {"reason": "max_connections"}
    assert gateway.metric(f"{P}_connections_refused_total", limit) == refusals
    assert_clean_log(gateway)


async def test_only_engineio_paths_reach_engineio(gateway: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        for path in ("/socket.iox", "/socket", "/api/socket.io/", "//socket.io/"):
            reply = await http.get(f"{path}?{POLLING}")
            assert not reply.text.startswith("0{"), path  # no Engine.IO OPEN packet
