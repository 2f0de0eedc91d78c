"""Direct WebSocket writes: a signal goes from the fan-out loop straight to each socket.

Why: python-engineio hands every outgoing packet to a per-socket writer task through an
``asyncio.Queue``. With one signal at a time per client that is a task wake-up, an
``asyncio.wait_for`` (a new Task and timer on Python 3.11) and a ``websockets`` frame build
per delivery, which was most of the gateway's CPU per delivery (docs/performance.md).
Node's socket.io writes to the socket synchronously inside the emit loop; this does the
same, through extension points rather than a fork:

- ``DirectSendProtocol``: uvicorn's ``ws=`` option takes a protocol class. This one
  publishes a synchronous ``write_frame`` in the ASGI scope's ``extensions`` that writes a
  ready-made frame, or declines when it cannot keep the order (the transport is paused,
  or an ordinary ASGI send is still in progress). With ``now`` it sends on the socket
  itself when the transport's buffer is empty: uvloop's ``transport.write`` only buffers
  until the loop turn ends, which held every client's frame until the whole fan-out loop
  had run. Without ``now`` (the fan-out is behind, ``FanoutManager`` decides) it leaves
  the frame to that buffer, so the signals of a backlog leave in one system call per
  client per loop turn.
- ``DirectQueue`` (gateway/wire/queue.py): engine.io creates each socket's queue with the
  server's public ``create_queue()``. This queue writes a text MESSAGE or PING packet
  directly when nothing is queued or in a writer's hands, and queues it otherwise; close
  and noop packets always take the writer.
- ``DirectEngineIOServer``: binds each queue to its WebSocket when the WebSocket transport
  starts. A WebSocket-only client gets ``serve_websocket`` (gateway/wire/session.py): no
  writer or reader task, and the ASGI task itself ends (gateway/wire/detach.py), so an
  idle connection has no task at all; a client upgrading from long-polling keeps
  engine.io's handler. Pings come from one ``PingWheel`` instead of a task per socket.
- ``FramedPacket``: the frame is built once per signal, not once per recipient (no
  per-message deflate, so the server's frame is the same bytes for every client).

Long-polling clients, two fixes to stock engine.io:

- ``DirectQueue`` hands engine.io's ``poll()`` at most ``POLL_BATCH_MAX`` packets at a
  time: the official Python client drops a long-polling connection whose payload holds
  more than 16 packets (``engineio.payload.Payload.max_decode_packets``), and a burst
  queues more than that between two polls. The rest goes out in the next response.
- ``DirectSocketIOServer`` answers a closing client's held GET at once (``release_poll``).

Order: a packet is written directly only when the socket's queue is empty and the writer
holds nothing (every queued item is counted until the writer's ``task_done``) and no ASGI
send is pending; otherwise it is queued behind what is already there. A client that stops
reading pauses its transport, so its packets queue, and ``FanoutManager`` bounds that queue.

The library internals this relies on are listed, one named check each, in
``gateway/wire/compat.py`` (run at start-up; docs/compatibility.md has the table).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from typing import Any

import engineio
import socketio
from engineio import async_socket as eio_socket
from engineio.async_drivers import asgi as eio_asgi
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import Protocol, State

from gateway.wire.detach import DetachableProtocol
from gateway.wire.lazy import Inbox, LazyEvent
from gateway.wire.queue import POLL_BATCH_MAX, DirectQueue, FramedPacket, WriteFrame, text_frame
from gateway.wire.session import PingWheel, serve_websocket

__all__ = [
    "CLOSE_INVALID_DATA",
    "DIRECT_SEND",
    "FRAME_REFUSED",
    "POLL_BATCH_MAX",
    "DirectEngineIOServer",
    "DirectQueue",
    "DirectSendProtocol",
    "DirectSocketIOServer",
    "FramedPacket",
    "WriteFrame",
    "release_poll",
    "text_frame",
]

DIRECT_SEND = "quantum_signals.direct_send"  # ASGI scope extension key
# ASGI scope extension the app may set: called with the close code when the protocol
# refuses a client frame itself (too large, invalid UTF-8, broken framing).
FRAME_REFUSED = "quantum_signals.frame_refused"
CLOSE_INVALID_DATA = 1007  # RFC 6455: a text message that is not UTF-8


#: uvicorn's per-connection attributes (set in its protocol's __init__), held in slots: with
#: more than 30 attributes an instance's __dict__ stops sharing its keys with the other
#: instances and costs ~1.6 KB per connection; in slots they cost 8 bytes each.
PROTOCOL_SLOTS = (
    "config", "app", "loop", "logger", "root_path", "asgi_version", "app_state",
    "connections", "tasks", "default_headers", "transport", "server", "client", "scheme",
    "queue", "handshake_initiated", "handshake_complete", "close_sent", "disconnected",
    "close_timer", "close_timeout", "initial_response", "conn", "read_paused", "writable",
    "ping_interval", "ping_timeout", "ping_timer", "pong_timer", "pending_ping_payload",
    "ping_sent_at", "last_ping_rtt", "frames", "curr_msg_data_type",
)  # fmt: skip


class DirectSendProtocol(DetachableProtocol, WebSocketsSansIOProtocol):
    """uvicorn's websockets (sans-I/O) protocol plus a synchronous, order-keeping write.

    Also quiet where uvicorn logs at ERROR for something any client can cause: a text
    message that is not UTF-8 (a traceback each) and a handshake the app refused with an
    HTTP response (``returned without completing handshake``); and it reports the client
    frames it refuses itself to the app (``FRAME_REFUSED``).
    """

    __slots__ = (*PROTOCOL_SLOTS, "_sends_pending", "_fd")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The same interfaces without empty deques (~3 KB per connection; gateway.wire.lazy).
        self.queue = Inbox()
        self.writable = LazyEvent()  # type: ignore[assignment]
        self.writable.set()
        self._sends_pending = 0
        self._detached = False
        self._fd = -1  # the socket, for a write now rather than at the end of the loop turn

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # absent when the upgrade request was refused
        if scope is not None:
            scope["extensions"][DIRECT_SEND] = self.write_frame
            self.offer_detach()
            sock = self.transport.get_extra_info("socket")
            if scope["scheme"] == "ws" and sock is not None:  # never under TLS: raw bytes
                self._fd = sock.fileno()

    async def send(self, message: Any) -> None:
        self._sends_pending += 1
        try:
            await super().send(message)
        finally:
            self._sends_pending -= 1
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # uvicorn reads its parsed handshake request and 101 response only until the
            # 101 is written, but keeps them for the connection's lifetime (~2 KB together).
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]
            self._drop_handshake_parser()
        elif message["type"] == "websocket.http.response.body" and self.close_sent:
            # The refusal is written: the handshake is over. uvicorn leaves the flag unset
            # and then logs an ERROR for every refused handshake (the guard's 503).
            self.handshake_complete = True

    def _drop_handshake_parser(self) -> None:
        """websockets' ServerProtocol parses with a generator whose frame keeps the parsed
        handshake request (~2 KB of headers) for the connection's lifetime. Once the
        handshake is over it only runs the frame parser it inherits: start that one alone
        (websockets swaps its parser generator the same way when closing). Only at a frame
        boundary: nothing unparsed in the reader."""
        conn = self.conn
        if conn.state is State.OPEN and not conn.reader.buffer and conn.parser_exc is None:
            conn.parser = Protocol.parse(conn)
            next(conn.parser)

    def send_receive_event_to_app(self) -> None:
        if self.curr_msg_data_type == "text" and not self.close_sent:
            try:
                b"".join(self.frames).decode()
            except UnicodeDecodeError:
                # uvicorn would log a traceback at ERROR; a client chose these bytes.
                self.frames = []
                self.conn.send_close(CLOSE_INVALID_DATA)
                self.handle_parser_exception()
                return
        super().send_receive_event_to_app()

    def handle_parser_exception(self) -> None:
        closing = self.conn.close_sent
        super().handle_parser_exception()
        scope = getattr(self, "scope", None)
        report = scope["extensions"].get(FRAME_REFUSED) if scope is not None else None
        if report is not None and closing is not None:
            report(closing.code)

    def write_frame(self, frame: bytes, now: bool = True) -> bool:
        """Write ``frame`` (``now``: onto the socket during this call), or return False
        when it has to wait its turn."""
        if (
            self._sends_pending
            or not self.writable.is_set()
            or self.close_sent
            or self.disconnected
            or self.conn.state is not State.OPEN
            or self.conn.extensions  # a compressed connection needs frames of its own
            or self.transport.is_closing()  # also: the fd may be closed and reused
        ):
            return False
        if now and self._fd >= 0 and not self.transport.get_write_buffer_size():
            # uvloop's transport.write only buffers; the send() happens once the whole
            # fan-out loop has run, so with 1,000 clients the first one waited ~6 ms.
            # Writing to the socket here sends each frame as the loop reaches its client.
            try:
                sent = os.write(self._fd, frame)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                return False  # the connection broke: the ordinary path reports it
            if sent == len(frame):
                return True
            frame = frame[sent:]  # the rest goes behind it, through the transport
        self.transport.write(frame)
        return True


class _BindingWebSocket(eio_asgi.WebSocket):  # type: ignore[misc]
    """engine.io's ASGI WebSocket driver, binding the socket's queue to the transport.

    A WebSocket-only client (its socket not yet connected: no long-polling before) gets
    ``serve_websocket``, a session without tasks of its own; an upgrade from long-polling
    keeps engine.io's handler, with direct writes."""

    def __call__(self, environ: dict[str, Any]) -> Awaitable[Any]:
        # Not a coroutine itself: engine.io awaits what this returns, one frame fewer kept
        # for the connection's lifetime.
        write = environ["asgi.scope"].get("extensions", {}).get(DIRECT_SEND)
        sock = getattr(self.handler, "__self__", None)  # the handler is the socket's method
        if write is not None and sock is not None and isinstance(sock.queue, DirectQueue):
            if not sock.connected:
                return serve_websocket(sock, environ, write)
            sock.queue.bind(sock, write)
        called: Awaitable[Any] = super().__call__(environ)
        return called


class DirectEngineIOServer(engineio.AsyncServer):  # type: ignore[misc]
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        drivers: dict[str, Any] = getattr(self, "_async")  # noqa: B009 - untyped in engineio
        self._async = {**drivers, "websocket": _BindingWebSocket}
        self.pings = PingWheel(self.ping_interval)

    def create_queue(self, *args: Any, **kwargs: Any) -> DirectQueue:
        return DirectQueue(*args, **kwargs)

    def start_background_task(self, target: Any, *args: Any, **kwargs: Any) -> Any:
        # schedule_ping() starts a task per socket that sleeps a ping interval, then
        # pings: the wheel does the same with one timer per 100 ms for every socket.
        if getattr(target, "__func__", None) is eio_socket.AsyncSocket._send_ping:
            self.pings.schedule(target.__self__)
            return None  # schedule_ping() does not keep what this returns
        return super().start_background_task(target, *args, **kwargs)


class DirectSocketIOServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server on top of ``DirectEngineIOServer``."""

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return DirectEngineIOServer

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        sock = self.eio.sockets.get(eio_sid)
        release_poll(sock)
        end_websocket(sock)
        await super()._handle_eio_disconnect(eio_sid, reason)


def end_websocket(sock: Any) -> None:
    """Close the WebSocket of a ``serve_websocket`` session engine.io is closing.

    engine.io's own handler ended such a WebSocket when its reader timed out (ping
    interval + ping timeout after the last message); this session's reader has no
    timeout, so the WebSocket closes once engine.io's close() has queued what it sends
    (a CLOSE packet, when it sends one): hence on the next loop turn.
    """
    if sock is not None and isinstance(sock.queue, DirectQueue) and sock.queue.drains:
        asyncio.get_running_loop().call_soon(sock.queue.put_nowait, None)


def release_poll(sock: Any) -> None:
    """Answer the long-polling GET of a socket engine.io is closing, now.

    Stock engine.io leaves it waiting for ping interval + ping timeout (45 s by default):
    an HTTP request held per departed client, an official Python client whose
    ``disconnect()`` blocks that long, and a shutdown that outlasts uvicorn's grace period.
    """
    if sock is not None and not sock.upgraded:
        sock.queue.put_nowait(None)  # poll() then returns an empty payload
