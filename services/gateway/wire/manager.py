"""The Socket.IO client manager: python-socketio's Redis manager with a faster local emit.

Why a subclass (python-socketio's public ``client_manager=`` extension point): the stock
``AsyncManager.emit`` creates one asyncio task per recipient, which was the largest cost
per delivery in the benchmark (docs/performance.md). Here a local, callback-free emit
encodes the packet and its WebSocket frame once and offers it to each recipient's
Engine.IO queue (``gateway.wire.direct.DirectQueue``), which writes it to the WebSocket at once
when that keeps the order, or queues it for the socket's writer task. It also bounds each
queue: a client that stops reading is dropped instead of growing the gateway's memory.
Cross-replica emits, callbacks and binary packets take python-socketio's normal path.
In overload, ``emit_batch`` fans out several signals at once, one write per client
(gateway/delivery/overload.py).

It reads python-engineio's socket internals (``sockets``, ``queue``, ``last_ping``,
``closed``); the versions are pinned in the lock files and the e2e tests exercise them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from common.constants import NAMESPACE
from common.logging import get_logger
from gateway.wire.direct import FramedPacket

log = get_logger(__name__)

# A fan-out starting within this long of the previous one's end is behind a backlog.
BACKLOG_GAP_S = 0.002

#: One signal of an overload batch: (data, target rooms, what latest_only keeps the newest of).
BatchItem = tuple[Any, Any, Hashable]


class FanoutManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    def __init__(
        self,
        *args: Any,
        queue_max: int,
        on_slow_client: Callable[[], None],
        on_delivered: Callable[[int, int], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._queue_max = queue_max
        self._on_slow_client = on_slow_client
        self._on_delivered = on_delivered  # (written directly, queued), once per emit
        self._fanout_ended = 0.0  # monotonic time the last local fan-out loop ended

    async def emit(  # noqa: PLR0917 - python-socketio's signature
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        namespace = namespace or NAMESPACE
        packet = None
        if kwargs.get("ignore_queue") and callback is None and namespace in self.rooms:
            packet = self._encode(event, data, namespace)
        if packet is None:
            await super().emit(
                event,
                data,
                namespace=namespace,
                room=room,
                skip_sid=skip_sid,
                callback=callback,
                to=to,
                **kwargs,
            )
            return
        self._deliver(packet, namespace, to or room, skip_sid)

    def _encode(self, event: str, data: Any, namespace: str) -> FramedPacket | None:
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        encoded = self.server.packet_class(
            sio_packet.EVENT, namespace=namespace, data=[event, *args]
        ).encode()
        if isinstance(encoded, list):  # binary attachments: the stock path handles them
            return None
        return FramedPacket(eio_packet.MESSAGE, encoded)

    def _deliver(self, packet: FramedPacket, namespace: str, room: Any, skip: Any) -> None:
        skipped = set(skip) if isinstance(skip, list) else {skip}
        eio = self.server.eio
        now = time.time()
        # Behind (this fan-out starts right after the last one): leave frames to the
        # transports' buffers, so a backlog goes out in one send() per client per loop turn.
        send_now = time.monotonic() - self._fanout_ended > BACKLOG_GAP_S
        direct = queued = 0
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skipped:
                continue
            sock = eio.sockets.get(eio_sid)
            if sock is None or sock.closed:
                continue
            if sock.last_ping and now - sock.last_ping > eio.ping_timeout:
                # A silent client: let engine.io close it exactly as its own send would.
                self.server.start_background_task(sock.send, packet)
            elif sock.queue.qsize() >= self._queue_max:
                self._drop(sock)
            elif sock.queue.offer(packet, send_now):
                direct += 1
            else:
                queued += 1
        self._fanout_ended = time.monotonic()
        self._on_delivered(direct, queued)

    def emit_batch(
        self, event: str, items: list[BatchItem], latest_only_room: str | None = None
    ) -> tuple[int, int] | None:
        """Fan out several signals at once, in order, to this replica's clients only (an
        overload batch): each client's frames go out in one write. Clients in
        ``latest_only_room`` get only the last item of each key among theirs. Returns
        (deliveries, left out for latest_only), or None when a packet is binary (then the
        caller emits one by one)."""
        namespace = NAMESPACE
        if namespace not in self.rooms:
            return 0, 0
        packets = [self._encode(event, data, namespace) for data, _, _ in items]
        if any(p is None for p in packets):
            return None
        wanted = self._recipients(namespace, [rooms for _, rooms, _ in items])
        latest = self.rooms[namespace].get(latest_only_room) if latest_only_room else None
        latest_eio = set(latest.values()) if latest else set()
        frames: dict[tuple[int, ...], bytes] = {}
        dropped = direct = queued = 0
        sockets, now = self.server.eio.sockets, time.time()
        for eio_sid, theirs in wanted.items():
            indices = theirs
            if eio_sid in latest_eio:
                newest = {items[i][2]: i for i in theirs}  # the last index of each key
                dropped += len(theirs) - len(newest)
                indices = sorted(newest.values())
            sock = sockets.get(eio_sid)
            if not self._takes_batch(sock, packets[indices[0]], now):
                continue
            key = tuple(indices)
            if key not in frames:
                frames[key] = b"".join(packets[i].ws_frame for i in key)  # type: ignore[union-attr]
            if sock.queue.offer_many([packets[i] for i in key], frames[key]):
                direct += len(key)
            else:
                queued += len(key)
        self._fanout_ended = time.monotonic()  # what follows at once is behind it too
        self._on_delivered(direct, queued)
        return direct + queued, dropped

    def _takes_batch(self, sock: Any, first: Any, now: float) -> bool:
        """Whether ``sock`` is sent a batch: the per-client rules of ``_deliver``."""
        if sock is None or sock.closed:
            return False
        if sock.last_ping and now - sock.last_ping > self.server.eio.ping_timeout:
            # A silent client: let engine.io close it exactly as its own send would.
            self.server.start_background_task(sock.send, first)
            return False
        if sock.queue.qsize() >= self._queue_max:
            self._drop(sock)
            return False
        return True

    def _recipients(self, namespace: str, targets: list[Any]) -> dict[str, list[int]]:
        """eio_sid -> indices of the signals it gets, in order; participants are listed once
        per distinct target rooms."""
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, rooms in enumerate(targets):
            key = tuple(rooms) if isinstance(rooms, list | tuple) else (rooms,)
            groups.setdefault(key, []).append(i)
        wanted: dict[str, list[int]] = {}
        for rooms_key, indices in groups.items():
            for _sid, eio_sid in self.get_participants(namespace, list(rooms_key)):
                wanted.setdefault(eio_sid, []).extend(indices)
        if len(groups) > 1:  # one client's indices came from several groups
            for indices in wanted.values():
                indices.sort()
        return wanted

    def _drop(self, sock: Any) -> None:
        """Disconnect a client that stopped reading and free what was queued for it."""
        self._on_slow_client()
        dropped = sock.queue.discard()
        log.warning("slow_client_dropped", queued=dropped, max=self._queue_max)
        sock.queue.put_nowait(None)  # ends the writer once the transport lets it go
        self.server.start_background_task(
            sock.close, wait=False, abort=True, reason=sock.server.reason.TRANSPORT_ERROR
        )
