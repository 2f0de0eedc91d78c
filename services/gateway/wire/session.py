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

log = get_logger(__name__)

#: Ping timer granularity: a ping goes out up to this much after its interval.
PING_SLOT_S = 0.1


async def serve_websocket(sock: Any, environ: dict[str, Any], write: Any) -> str:
    """Run a WebSocket-only Engine.IO session in the caller's task (uvicorn's ASGI task).

    What engine.io's ``_websocket_handler`` does for such a client, in the same order:
    accept, mark the socket connected and upgraded, send what is queued (OPEN), hand each
    received packet to ``sock.receive()`` until the WebSocket ends, then end the writer
    (the WebSocket's close follows what is queued) and close the session.
    """
    receive, send = environ["asgi.receive"], environ["asgi.send"]
    await send({"type": "websocket.accept"})
    sock.connected = True
    sock.upgraded = True
    queue = sock.queue
    queue.bind(sock, write, send)
    try:
        await _read(sock, receive)
    finally:
        queue.put_nowait(None)  # the WebSocket closes once what is queued is out
        await sock.close(wait=False, abort=True, reason=sock.server.reason.TRANSPORT_CLOSE)
        await queue.drained()
    return ""


async def _read(sock: Any, receive: Callable[[], Any]) -> None:
    limit = sock.server.max_http_buffer_size
    while True:
        event = await receive()
        if event["type"] != "websocket.receive":
            return
        data = event.get("text")
        if data is None:
            data = event.get("bytes")
        if data is None or len(data) > limit:
            return  # engine.io's handler ends the session on both
        try:
            await sock.receive(eio_packet.Packet(encoded_packet=data))
        except eio_exceptions.UnknownPacketError:
            continue
        except eio_exceptions.SocketIsClosedError:
            return
        except Exception:  # a handler's error must not end the client's session
            log.exception("engineio_receive_failed")
        # One message per loop turn, as engine.io's reader (a task per message) did: the
        # handlers of what this client sent run before its next message is read, and a
        # client sending a burst cannot hold the loop.
        await asyncio.sleep(0)


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
