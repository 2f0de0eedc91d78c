"""A text frame that is not UTF-8: closed with 1007, counted, and no traceback in the log.

uvicorn's WebSocket protocol logs a full traceback at ERROR for each one (any client can
send them), which docs/security.md promises hostile clients cannot do.
"""

from __future__ import annotations

import asyncio

import websockets

from tests.conftest import ClientFactory, ServiceFactory
from tests.integration.hardening.logs import assert_clean_log

P = "qs_gateway"
INVALID = [b"\xff\xfe", b'42["subscribe",["\xc3\x28"]]', b"4\xed\xa0\x80", b"\x80"]


async def send_invalid_text(base_url: str, payload: bytes) -> int | None:
    url = base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with websockets.connect(url, open_timeout=5) as ws:
        assert str(await ws.recv()).startswith("0")
        await ws.send("40")
        assert str(await ws.recv()).startswith("40")
        await ws.send(payload, text=True)  # a text frame with these exact bytes
        try:
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()
        except websockets.ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None


async def test_invalid_utf8_text_closes_1007_without_a_traceback(
    service_factory: ServiceFactory, client_factory: ClientFactory
) -> None:
    gateway = service_factory("gateway")
    codes = await asyncio.gather(*(send_invalid_text(gateway.base_url, p) for p in INVALID))
    assert codes == [1007] * len(INVALID)
    reason = {"reason": "invalid_utf8"}
    gateway.wait_for(
        lambda: gateway.metric(f"{P}_client_frames_refused_total", reason) == len(INVALID),
        5,
        "counting the refused frames",
    )
    gateway.wait_for(lambda: gateway.metric(f"{P}_connected_clients") == 0, 5, "sessions ended")
    client = await client_factory(gateway.base_url)  # and it still serves
    assert client.sio.connected
    assert_clean_log(gateway)
