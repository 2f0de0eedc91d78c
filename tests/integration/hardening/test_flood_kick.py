"""The event limit belongs to the connection: a flood kick ends the WebSocket, and a new
Socket.IO session on the same WebSocket does not start with a full bucket.

Found by probing with a raw client: the kick used to send only a Socket.IO DISCONNECT, so
the flooder sent CONNECT (``40``) on the same WebSocket and had 80 more events accepted
within a second against a limit of 5/s with a burst of 20.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.integration.hardening.raw import ws_url
from tests.support.redis_server import remove_redis, start_redis
from tests.support.services import ServiceProcess

P = "qs_gateway"
RATE_PER_S = 5
BURST = 20
KICK_AFTER = 10  # refusals without a pause


@pytest.fixture(scope="module")
def gateway() -> Iterator[ServiceProcess]:
    server = start_redis()
    env = {
        "REDIS_URL": server.url,
        "CLIENT_EVENTS_PER_S": str(RATE_PER_S),
        "CLIENT_EVENTS_BURST": str(BURST),
        "CLIENT_FLOOD_DISCONNECT_AFTER": str(KICK_AFTER),
    }
    proc = ServiceProcess("gateway", env).start()
    try:
        yield proc
    finally:
        proc.stop()
        remove_redis(server)


class RawSession:
    """One WebSocket speaking Socket.IO by hand; records every ack and what closed it."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.acks: dict[int, Any] = {}
        self.received: list[str] = []
        self.closed_by_server = False
        self._next_id = 0

    async def connect_namespace(self) -> None:
        await self.ws.send("40")
        while not any(r.startswith("40") for r in self.received):
            await self.read(2.0)

    async def events(self, count: int) -> list[int]:
        ids = list(range(self._next_id, self._next_id + count))
        self._next_id += count
        for ack_id in ids:
            await self.ws.send(f'42{ack_id}["subscribe",["BTC-USD"]]')
        return ids

    async def read(self, timeout_s: float) -> None:
        """Read one frame (answering pings), or note that the server closed."""
        try:
            frame = str(await asyncio.wait_for(self.ws.recv(), timeout_s))
        except websockets.ConnectionClosed:
            self.closed_by_server = True
            return
        self.received.append(frame)
        if frame == "2":
            await self.ws.send("3")
        elif frame.startswith("43"):
            digits = frame[2:].split("[", 1)[0]
            self.acks[int(digits)] = json.loads(frame[2 + len(digits) :])[0]

    async def settle(self, ids: list[int], timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.closed_by_server and not all(i in self.acks for i in ids):
            assert time.monotonic() < deadline, (len(self.acks), self.received[-5:])
            await self.read(deadline - time.monotonic())

    def accepted(self, ids: list[int]) -> int:
        return sum(1 for i in ids if self.acks.get(i, {}).get("ok"))


async def open_session(gateway: ServiceProcess) -> RawSession:
    ws = await websockets.connect(ws_url(gateway.base_url), open_timeout=5)
    session = RawSession(ws)
    await session.read(2.0)  # Engine.IO OPEN
    await session.connect_namespace()
    return session


async def test_a_flood_kick_closes_the_websocket(gateway: ServiceProcess) -> None:
    kicked = gateway.metric(f"{P}_flood_disconnects_total")
    session = await open_session(gateway)
    ids = await session.events(BURST + KICK_AFTER + 20)
    deadline = time.monotonic() + 5
    while not session.closed_by_server:
        assert time.monotonic() < deadline, f"still open after the kick: {session.received[-3:]}"
        await session.read(deadline - time.monotonic())
    assert session.accepted(ids) == BURST  # nothing after the burst ran (same second)
    # Official clients learn they were disconnected (and do not reconnect), then Engine.IO's
    # CLOSE, then the WebSocket ends. (The kicking event's own ack may still follow CLOSE.)
    assert session.received.index("41") < session.received.index("1")
    assert gateway.metric(f"{P}_flood_disconnects_total") == kicked + 1
    # A CONNECT now has nowhere to go.
    with pytest.raises(websockets.ConnectionClosed):
        await session.ws.send("40")
        await session.ws.recv()


async def test_a_new_session_on_the_same_websocket_shares_the_bucket(
    gateway: ServiceProcess,
) -> None:
    session = await open_session(gateway)
    try:
        first = await session.events(BURST)
        await session.settle(first)
        assert session.accepted(first) == BURST
        # Leave the namespace and join again on the same WebSocket: same connection.
        await session.ws.send("41")
        await session.connect_namespace()
        started = time.monotonic()
        second = await session.events(KICK_AFTER - 2)
        await session.settle(second)
        refilled = RATE_PER_S * (time.monotonic() - started) + 1
        assert session.accepted(second) <= refilled, session.accepted(second)
        assert not session.closed_by_server  # under the kick threshold: refused, not kicked
    finally:
        await session.ws.close()


async def test_connect_again_after_a_kick_gets_no_fresh_bucket(gateway: ServiceProcess) -> None:
    """The probe that found it: flood, then CONNECT again at once and keep sending."""
    session = await open_session(gateway)
    flood = await session.events(BURST + KICK_AFTER)
    deadline = time.monotonic() + 5
    while "41" not in session.received and not session.closed_by_server:
        assert time.monotonic() < deadline
        await session.read(deadline - time.monotonic())
    accepted_after = 0
    try:
        await session.ws.send("40")
        again = await session.events(4 * BURST)
        await session.settle(again, timeout_s=3)
        accepted_after = session.accepted(again)
    except websockets.ConnectionClosed:
        session.closed_by_server = True
    while not session.closed_by_server:
        assert time.monotonic() < deadline, "the kicked WebSocket stayed open"
        await session.read(deadline - time.monotonic())
    assert session.accepted(flood) == BURST
    assert accepted_after == 0
    # Nothing left behind: no session on the closed connection, no traceback.
    gateway.wait_for(lambda: gateway.metric(f"{P}_connected_clients") == 0, 5, "no sessions")
    assert "Traceback" not in gateway.log_path.read_text()
