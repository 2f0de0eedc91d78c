"""A WebSocket Engine.IO session without tasks of its own, and one ping timer for all.

Why: python-engineio runs each WebSocket session as five asyncio tasks: uvicorn's ASGI
task, a reader task per received message, a writer task, the Task ``asyncio.wait_for``
makes for the writer's ``Queue.get()`` (Python 3.11), and a ping task asleep for the ping
interval. Each is a Task, a Context, a few coroutine frames and a timer: with the deques
of its queues, two thirds of the 33 KB an idle connection cost (docs/performance.md).

- ``serve_websocket`` replaces engine.io's ``_websocket_handler`` for a WebSocket-only
  client (no long-polling upgrade): it reads inside uvicorn's ASGI task, the one task the
  connection keeps, and hands each packet to the socket's own ``receive()``. Writing needs
  no task: ``DirectQueue`` writes to the WebSocket directly, and only when it cannot (the
  client is not reading, or an ASGI send is in progress) drains what is queued in a task
  that exists until the queue is empty (``DirectQueue.bind(..., send)``). A client that
  upgrades from long-polling keeps engine.io's own handler.
- ``PingWheel``: engine.io's ``schedule_ping()`` starts ``_send_ping`` through
  ``server.start_background_task``; ``DirectEngineIOServer`` hands that to the wheel,
  which keeps sockets in 100 ms slots with one loop timer per slot and does what
  ``_send_ping`` does when their turn comes (set ``last_ping``, send PING). Silent
  clients are still closed by engine.io's service task (``check_ping_timeout``).

Every library detail used here is checked by name in ``gateway/wire/compat.py``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet

from common.logging import get_logger
from gateway.wire.detach import DETACH

log = get_logger(__name__)

#: Ping timer granularity: a ping goes out up to this much after its interval.
PING_SLOT_S = 0.1


async def serve_websocket(sock: Any, environ: dict[str, Any], write: Any) -> str:
    """Start a WebSocket-only Engine.IO session and, where the server lets it, return.

    What engine.io's ``_websocket_handler`` does for such a client, in the same order:
    accept, mark the socket connected and upgraded, send what is queued (OPEN), hand each
    received packet to ``sock.receive()`` until the WebSocket ends, then end the writer
    (the WebSocket's close follows what is queued) and close the session. With
    ``DETACH`` (gateway/wire/detach.py) the reading happens in a task started only when
    a message waits, and this returns at once; without it, it reads here until the end.
    """
    scope = environ["asgi.scope"]
    receive, send = environ["asgi.receive"], environ["asgi.send"]
    # engine.io built its environ from the scope's headers; nothing reads them again, and
    # the ASGI scope lives as long as the connection (~800 B of header tuples).
    scope["headers"] = []
    await send({"type": "websocket.accept"})
    sock.connected = True
    sock.upgraded = True
    sock.queue.bind(sock, write, send)
    detach = scope.get("extensions", {}).get(DETACH)
    if detach is not None:
        reader = Reader(sock, receive)
        reader.pending, reader.end = detach(reader.wake)
        return ""
    try:
        while (data := await _next_packet(sock, receive)) is not None:
            if await _received(sock, data):
                break
            await asyncio.sleep(0)  # one message per loop turn (Reader.run says why)
    finally:
        await _end_session(sock)
    return ""


class Reader:
    """Reads a detached session's messages in a task that exists while some wait."""

    __slots__ = ("end", "pending", "receive", "sock", "task")

    def __init__(self, sock: Any, receive: Callable[[], Any]) -> None:
        self.sock, self.receive = sock, receive
        self.task: asyncio.Task[None] | None = None
        self.pending: Callable[[], bool] = lambda: True  # "empty?": set by detach()
        self.end: Callable[[], None] = lambda: None

    def wake(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self.run())

    async def run(self) -> None:
        try:
            while not self.pending():
                try:
                    data = await _next_packet(self.sock, self.receive)
                except Exception:  # the app's receive failed: end this session, not others
                    log.exception("websocket_receive_failed")
                    data = None
                if data is None or await _received(self.sock, data):
                    await self.finish()
                    return
                # One message per loop turn, as engine.io's reader (a task per message)
                # did: the handlers of what this client sent run before its next message
                # is read, and a client sending a burst cannot hold the loop.
                await asyncio.sleep(0)
        finally:
            self.task = None

    async def finish(self) -> None:
        try:
            await _end_session(self.sock)
        finally:
            self.end()  # the transport closes even if engine.io's close failed


async def _next_packet(sock: Any, receive: Callable[[], Any]) -> str | bytes | None:
    """The next client packet, or None when the session must end."""
    event = await receive()
    if event["type"] != "websocket.receive":
        return None
    data: str | bytes | None = event.get("text")
    if data is None:
        data = event.get("bytes")
    if data is None or len(data) > sock.server.max_http_buffer_size:
        return None  # engine.io's handler ends the session on both
    return data


async def _end_session(sock: Any) -> None:
    """What engine.io does once a WebSocket-only session's WebSocket ended."""
    sock.queue.put_nowait(None)  # the WebSocket closes once what is queued is out
    await sock.close(wait=False, abort=True, reason=sock.server.reason.TRANSPORT_CLOSE)
    await sock.queue.drained()
    sockets = sock.server.sockets
    if sock.closed and sockets.get(sock.sid) is sock:
        del sockets[sock.sid]  # _handle_connect's own clean-up, which ran at detach time


async def _received(sock: Any, data: str | bytes) -> bool:
    """Hand one packet to engine.io's socket; True when the session must end."""
    try:
        await sock.receive(eio_packet.Packet(encoded_packet=data))
    except eio_exceptions.UnknownPacketError:
        pass
    except eio_exceptions.SocketIsClosedError:
        return True
    except Exception:  # a handler's error must not end the client's session
        log.exception("engineio_receive_failed")
    return False


class PingWheel:
    """Every socket's next ping, in slots of PING_SLOT_S with one loop timer per slot."""

    __slots__ = ("_interval_s", "_slots")

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._slots: dict[int, list[Any]] = {}

    def __len__(self) -> int:
        return sum(len(s) for s in self._slots.values())

    def schedule(self, sock: Any) -> None:
        """Ping ``sock`` one ping interval from now (engine.io's ``_send_ping``)."""
        loop = asyncio.get_running_loop()
        slot = math.ceil((loop.time() + self._interval_s) / PING_SLOT_S)
        sockets = self._slots.get(slot)
        if sockets is None:
            sockets = self._slots[slot] = []
            loop.call_at(slot * PING_SLOT_S, self._fire, slot)
        sockets.append(sock)

    def _fire(self, slot: int) -> None:
        for sock in self._slots.pop(slot, ()):
            try:
                ping(sock)
            except Exception:  # one socket's failure must not skip the others' pings
                log.exception("engineio_ping_failed")


def ping(sock: Any) -> None:
    """What engine.io's ``_send_ping`` does once its sleep is over."""
    if sock.closing or sock.closed:
        return
    sock.last_ping = time.time()
    sock.queue.put_nowait(eio_packet.Packet(eio_packet.PING))
