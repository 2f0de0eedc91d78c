"""Official Socket.IO clients that record what they receive."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import socketio
from websockets.asyncio.client import ClientConnection, connect

from common.constants import OFFSET_FIELD, RECOVERY_EVENT, SIGNAL_EVENT, SYSTEM_EVENT

JS_DIR = Path(__file__).resolve().parents[1] / "js"


async def raw_socketio_websocket(port: int, subscribe: list[str] | None = None) -> ClientConnection:
    """Socket.IO over a bare WebSocket with tiny buffers, connected to the default namespace.

    It reads nothing until the test calls ``recv``: the socket's 4 KB receive buffer and a
    one-frame client queue make the gateway see backpressure almost at once.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    ws = await connect(
        f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket",
        sock=sock,
        max_queue=1,
        compression=None,
    )
    assert str(await ws.recv()).startswith("0")  # Engine.IO open
    await ws.send("40")
    assert str(await ws.recv()).startswith("40")  # Socket.IO connected
    if subscribe:
        await ws.send(f"42{json.dumps(['subscribe', subscribe])}")
    return ws


class RecordingClient:
    """python-socketio AsyncClient keeping every ``new_signal`` and ``system_message``."""

    def __init__(self, url: str, transports: list[str] | None = None, resume: bool = False) -> None:
        self.url = url
        self.transports = transports or ["websocket"]
        self.resume = resume
        self.signals: list[dict[str, Any]] = []
        self.system: list[dict[str, Any]] = []
        self.recoveries: list[dict[str, Any]] = []
        self.disconnect_reasons: list[str] = []
        self.connects = 0
        self.sio = socketio.AsyncClient(reconnection_delay=0.1, reconnection_delay_max=0.5)
        self.sio.on(SIGNAL_EVENT, self._on_signal)
        self.sio.on(SYSTEM_EVENT, self._on_system)
        self.sio.on("connect", self._on_connect)
        self.sio.on(RECOVERY_EVENT, self._on_recovery)
        self.sio.on("disconnect", self._on_disconnect)

    def _auth(self) -> dict[str, Any]:
        # Called on every (re)connect: present the last offset seen, as a real client would.
        offsets = [s[OFFSET_FIELD] for s in self.signals if OFFSET_FIELD in s]
        return {OFFSET_FIELD: offsets[-1]} if self.resume and offsets else {}

    async def _on_disconnect(self, reason: str = "") -> None:
        self.disconnect_reasons.append(reason)

    async def _on_recovery(self, data: dict[str, Any]) -> None:
        self.recoveries.append(data)

    async def _on_signal(self, data: dict[str, Any]) -> None:
        self.signals.append(data)

    async def _on_system(self, data: dict[str, Any]) -> None:
        self.system.append(data)

    async def _on_connect(self) -> None:
        self.connects += 1

    async def connect(self) -> RecordingClient:
        await self.sio.connect(
            self.url, transports=self.transports, wait_timeout=10, auth=self._auth
        )
        return self

    async def disconnect(self) -> None:
        await self.sio.disconnect()

    async def wait_for(self, count: int, timeout_s: float = 10.0, attr: str = "signals") -> None:
        deadline = time.monotonic() + timeout_s
        while len(getattr(self, attr)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.url}: got {len(getattr(self, attr))} {attr}, expected {count}"
                )
            await asyncio.sleep(0.02)


class JsClient:
    """The official socket.io-client under Node, printing each event as a JSON line."""

    def __init__(self, url: str, transports: str = "websocket") -> None:
        self.proc = subprocess.Popen(
            ["node", str(JS_DIR / "collect.mjs"), url, transports],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=JS_DIR,
            text=True,
        )
        self.events: list[dict[str, Any]] = []

    def wait_connected(self, timeout_s: float = 15.0) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            event = json.loads(line)
            if event["event"] == "connect":
                return
        stderr = self.proc.stderr.read() if self.proc.stderr else ""
        raise AssertionError(f"JS client did not connect: {stderr}")

    def signals(self, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """Read until ``count`` signals arrived (or time out), then return them all."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        got = [e["data"] for e in self.events if e["event"] == SIGNAL_EVENT]
        while len(got) < count and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            event = json.loads(line)
            self.events.append(event)
            if event["event"] == SIGNAL_EVENT:
                got.append(event["data"])
        return got

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(5)
