"""Raw WebSocket / long-polling Engine.IO clients that send exactly the bytes a test gives."""

from __future__ import annotations

import asyncio
import json

import httpx
import websockets


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"


async def send_raw(base_url: str, frame: str | bytes, timeout_s: float = 2.0) -> str:
    """Open a Socket.IO session by hand, send ``frame``; return how the server answered."""
    async with websockets.connect(ws_url(base_url), open_timeout=5, max_size=None) as ws:
        json.loads(str(await ws.recv())[1:])  # Engine.IO OPEN
        await ws.send("40")
        await ws.recv()  # Socket.IO CONNECT ack
        await ws.send(frame)
        try:
            while True:  # skip whatever the server pushes until it answers or closes
                reply = await asyncio.wait_for(ws.recv(), timeout_s)
                if not str(reply).startswith("2"):
                    return f"reply:{str(reply)[:80]}"
                await ws.send("3")
        except websockets.ConnectionClosed as exc:
            return f"closed:{exc.rcvd.code if exc.rcvd else None}"
        except TimeoutError:
            return "open"


async def polling_sid(http: httpx.AsyncClient) -> str:
    """Open a long-polling Engine.IO session; its sid."""
    opened = await http.get("/socket.io/?EIO=4&transport=polling")
    sid: str = json.loads(opened.text[1:])["sid"]
    return sid
