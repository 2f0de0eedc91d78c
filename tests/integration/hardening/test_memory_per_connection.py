"""Idle memory per WebSocket connection stays low, and idle clients still get every signal.

A real gateway process, 1,500 Socket.IO clients over raw WebSockets (a minimal
Engine.IO v4 handshake, no client library: the test process must stay light), and the
gateway's RSS before and after. Before gateway/wire/session.py and detach.py an idle
connection cost 33-35 KB here (five asyncio tasks each); now about 8 KB
(bench/memory_per_conn.py measures it side by side with Node's socket.io). The bound
leaves room for allocator noise on a shared machine. Then a signal published to Redis
reaches every idle client exactly once, and the pings of an official client keep working.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as redis_asyncio
import socketio

from common.constants import DEFAULT_CHANNEL, SIGNAL_EVENT
from tests.conftest import ServiceFactory

CLIENTS = 1500
MAX_KB_PER_CONNECTION = 16.0  # measured ~8 KB; 33-35 KB with engine.io's tasks
PAGE_KB = 4
UPGRADE = (
    "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}\r\n"
    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def masked(text: str) -> bytes:
    """A client's text frame (zero mask key), payload under 126 bytes."""
    data = text.encode()
    return bytes((0x81, 0x80 | len(data))) + b"\x00\x00\x00\x00" + data


class RawClient(asyncio.Protocol):
    """Engine.IO v4 over WebSocket by hand: OPEN -> "40", PING -> PONG, events recorded."""

    def __init__(self, connected: asyncio.Future[None]) -> None:
        self.connected = connected
        self.buf = b""
        self.upgraded = False
        self.events: list[Any] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if not sep:
                return
            assert b" 101 " in head.split(b"\r\n")[0], head[:40]
            self.upgraded, self.buf = True, rest
        while len(self.buf) >= 2:
            size, start = self.buf[1] & 0x7F, 2
            if size == 126:
                size, start = int.from_bytes(self.buf[2:4], "big"), 4
            if len(self.buf) < start + size:
                return
            self.text(self.buf[start : start + size].decode())
            self.buf = self.buf[start + size :]

    def text(self, text: str) -> None:
        assert self.transport is not None
        if text == "2":
            self.transport.write(masked("3"))
        elif text.startswith("0"):
            self.transport.write(masked("40"))
        elif text.startswith("40") and not self.connected.done():
            self.connected.set_result(None)
        elif text.startswith("42"):
            self.events.append(orjson.loads(text[2:]))


async def open_clients(host: str, port: int, count: int) -> list[RawClient]:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(100)

    async def one() -> RawClient:
        async with gate:
            connected: asyncio.Future[None] = loop.create_future()
            transport, client = await loop.create_connection(
                lambda: RawClient(connected), host, port
            )
            transport.write(UPGRADE.format(host=f"{host}:{port}").encode())
            await asyncio.wait_for(connected, 20)
            return client

    return list(await asyncio.gather(*(one() for _ in range(count))))


def rss_kb(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB


def settled_rss_kb(pid: int, seconds: float = 2.0) -> int:
    time.sleep(seconds)
    return rss_kb(pid)


@pytest.mark.timeout(120)
async def test_idle_connections_cost_little_and_still_get_every_signal(
    service_factory: ServiceFactory, redis_url: str
) -> None:
    gateway = service_factory(
        "gateway", transports="websocket", max_connections=CLIENTS + 100, log_level="warning"
    )
    assert gateway.proc is not None
    pid = gateway.proc.pid
    host, port = gateway.base_url.removeprefix("http://").split(":")
    before = await asyncio.to_thread(settled_rss_kb, pid)
    clients = await open_clients(host, int(port), CLIENTS)
    official = socketio.AsyncClient(reconnection=False)
    got: list[Any] = []
    official.on(SIGNAL_EVENT, got.append)
    try:
        after = await asyncio.to_thread(settled_rss_kb, pid)
        per_connection = (after - before) / CLIENTS
        assert per_connection < MAX_KB_PER_CONNECTION, f"{per_connection:.1f} KB per connection"
        await official.connect(gateway.base_url, transports=["websocket"])
        publisher = redis_asyncio.Redis.from_url(redis_url)
        signal = {
            "v": 1,
            "id": "memory:1",
            "type": "BUY",
            "symbol": "BTC/USDT",
            "strategy": "memory",
            "price": 60000.0,
            "ts": time.time(),
        }
        await publisher.publish(DEFAULT_CHANNEL, orjson.dumps(signal))
        await publisher.aclose()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (got and all(c.events for c in clients)):
            await asyncio.sleep(0.1)
        counts = [len(c.events) for c in clients]
        assert counts == [1] * CLIENTS, f"{sum(counts)} deliveries to {CLIENTS} clients"
        assert all(c.events[0][0] == SIGNAL_EVENT for c in clients)
        assert len(got) == 1 and got[0]["price"] == 60000.0
    finally:
        for client in clients:
            if client.transport is not None:
                client.transport.close()
        if official.connected:
            await official.disconnect()
