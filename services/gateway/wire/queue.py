"""An Engine.IO socket's send queue that writes to the WebSocket itself when it can.

engine.io creates each socket's queue with the server's public ``create_queue()``
(``DirectEngineIOServer``). ``DirectQueue`` writes a text MESSAGE or PING packet directly
(``WriteFrame``, from ``DirectSendProtocol``) when nothing is queued or in a writer's
hands, and queues it otherwise (docs in ``gateway/wire/direct.py``).

Two writers take what is queued:
- engine.io's own writer task (long-polling clients that upgraded), through ``poll()``;
- for a WebSocket-only session (``gateway.wire.session.serve_websocket``), a drain task
  that exists only while something is queued, sending through the ASGI ``send``. An
  idle connection then has no writer task at all. A None ends it: the WebSocket closes.

Its asyncio.Queue deques are made only when needed (``gateway.wire.lazy``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from engineio import packet as eio_packet
from engineio import payload as eio_payload
from websockets.frames import Frame, Opcode

from gateway.wire.lazy import LazyDeques

# Packets per long-polling response: the most the official Python client decodes.
POLL_BATCH_MAX: int = eio_payload.Payload.max_decode_packets
#: Packet types written directly: text ones the order rules allow (pings: from our wheel).
DIRECT_TYPES = frozenset({eio_packet.MESSAGE, eio_packet.PING})

WriteFrame = Callable[[bytes, bool], bool]  # (frame, send now) -> written
Send = Callable[[dict[str, Any]], Awaitable[None]]


def text_frame(text: str) -> bytes:
    """An unmasked, uncompressed WebSocket text frame: what a server sends."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


PING_FRAME = text_frame(eio_packet.Packet(eio_packet.PING).encode())


class FramedPacket(eio_packet.Packet):  # type: ignore[misc]
    """An Engine.IO MESSAGE whose WebSocket frame is built once for every recipient."""

    @functools.cached_property
    def ws_frame(self) -> bytes:
        return text_frame(self.encode())


class DirectQueue(LazyDeques, asyncio.Queue[Any]):
    """An Engine.IO socket queue that skips the writer task when it safely can."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy_init()
        self._held = 0  # put and not yet task_done: queued, or taken by a writer
        self._taken = 0  # items handed out since engine.io's poll() last called get()
        self._socket: Any = None
        self._write: WriteFrame | None = None
        self._send: Send | None = None  # a WebSocket-only session: our drain writes
        self._drainer: asyncio.Task[None] | None = None
        self._ended = False  # the drain closed the WebSocket: nothing more goes out

    def bind(self, socket: Any, write: WriteFrame, send: Send | None = None) -> None:
        """Write directly to ``socket``'s WebSocket; with ``send``, also drain what is
        queued through it (no engine.io writer runs for this socket)."""
        self._socket, self._write, self._send = socket, write, send
        if send is not None and not self.empty():
            self._start_drain()

    @property
    def drains(self) -> bool:
        """Whether this queue's own drain writes for it (a ``serve_websocket`` session)."""
        return self._send is not None

    def offer(self, item: Any, now: bool = True) -> bool:
        """Write ``item`` if that keeps the order, else queue it; True when written.

        ``now``: onto the socket during this call, rather than into the transport's buffer.
        """
        if self._ended:
            return False  # the WebSocket is closed: what is left has nowhere to go
        if self._held == 0 and self._write is not None and self._wrote(item, now):
            return True
        self._held += 1
        super().put_nowait(item)
        if self._send is not None and self._drainer is None:
            self._start_drain()
        return False

    def offer_many(self, packets: list[Any], frames: bytes) -> bool:
        """Several packets at once (an overload batch): written as one, ``frames`` being
        their WebSocket frames back to back, into the transport's buffer, when that keeps the
        order; else each is offered in turn. True when written as one."""
        if self._ended:
            return False
        if (
            self._held == 0
            and self._write is not None
            and self._writable_now()
            and self._write(frames, False)
        ):
            return True
        for packet in packets:
            self.offer(packet, False)
        return False

    def put_nowait(self, item: Any) -> None:
        self.offer(item)

    def task_done(self) -> None:
        super().task_done()
        self._held -= 1

    def get(self) -> Coroutine[Any, Any, Any]:
        # engine.io's poll() takes one item with get(), then get_nowait() until QueueEmpty.
        # Not a coroutine itself: a wrapping frame would cost ~200 B per idle connection.
        self._taken = 0
        self._own_getters()  # get() may wait: it needs a getters deque of its own
        return super().get()  # takes its item through get_nowait(), counted there

    async def put(self, item: Any) -> None:
        # engine.io's queues are unbounded: put() never waits, and needs no putters deque.
        if self.maxsize > 0:
            self._own_putters()
            await super().put(item)
        else:
            self.put_nowait(item)

    def get_nowait(self) -> Any:
        if self._taken >= POLL_BATCH_MAX:
            raise asyncio.QueueEmpty  # ends this poll; the next one takes the rest
        item = super().get_nowait()
        self._taken += 1
        return item

    def discard(self) -> int:
        """Drop everything queued (a client being disconnected); returns how many."""
        dropped = 0
        while not self.empty():
            asyncio.Queue.get_nowait(self)
            self.task_done()
            dropped += 1
        return dropped

    async def drained(self) -> None:
        """Until the drain task (if any) has sent what is queued, or the WebSocket ended."""
        if self._drainer is not None:
            await asyncio.shield(self._drainer)

    def _start_drain(self) -> None:
        self._drainer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        send = self._send
        assert send is not None
        try:
            while not self._ended and not self.empty():
                item = asyncio.Queue.get_nowait(self)
                try:
                    await send(_asgi_message(item))
                except Exception:  # the connection is gone: its reader sees it end
                    self._ended = True
                finally:
                    self.task_done()
                if item is None:
                    self._ended = True
            if self._ended:
                self.discard()
        finally:
            self._drainer = None

    def _writable_now(self) -> bool:
        """The socket is a WebSocket past its upgrade, not closing."""
        sock = self._socket
        return bool(sock.upgraded and not (sock.upgrading or sock.closing or sock.closed))

    def _wrote(self, item: Any, now: bool) -> bool:
        if (
            not isinstance(item, eio_packet.Packet)
            or item.packet_type not in DIRECT_TYPES
            or item.binary
            or not self._writable_now()
        ):
            return False
        if isinstance(item, FramedPacket):
            frame = item.ws_frame
        elif item.packet_type == eio_packet.PING:
            frame = PING_FRAME
        else:
            frame = text_frame(item.encode())
        assert self._write is not None
        return self._write(frame, now)


def _asgi_message(item: Any) -> dict[str, Any]:
    """What engine.io's writer sends for a queued item (None: close the WebSocket)."""
    if item is None:
        return {"type": "websocket.close"}
    encoded = item.encode()
    if isinstance(encoded, bytes):
        return {"type": "websocket.send", "bytes": encoded}
    return {"type": "websocket.send", "text": encoded}
