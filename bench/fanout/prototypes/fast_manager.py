"""A Redis manager whose local emit costs one queue append per recipient.

Prototype for the gateway (benchmark only until the lead wires it): python-socketio's
``AsyncManager.emit`` creates one asyncio task per recipient, each running four
coroutines (``_send_eio_packet`` -> ``eio.send_packet`` -> ``socket.send`` ->
``check_ping_timeout`` + ``queue.put``), then ``asyncio.wait`` on all of them. The packet
is already encoded once per emit (engine.io caches ``Packet.encode``), so the task
machinery is the per-recipient cost. Here the local, callback-free emit puts the one
shared engine.io packet straight into each socket's send queue; the socket's own writer
task sends it, exactly as before. Everything else (callbacks, emits through Redis to
other replicas, binary attachments) goes through python-socketio unchanged.
"""

from __future__ import annotations

import time
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet


class FastEmitRedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    async def emit(  # noqa: PLR0917 (python-socketio's signature)
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
        if not kwargs.get("ignore_queue") or callback is not None:
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
        namespace = namespace or "/"
        if namespace not in self.rooms:
            return
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        encoded = self.server.packet_class(
            sio_packet.EVENT, namespace=namespace, data=[event, *args]
        ).encode()
        if isinstance(encoded, list):  # binary attachments: rare, keep the stock path
            await super().emit(
                event, data, namespace=namespace, room=room, skip_sid=skip_sid, to=to, **kwargs
            )
            return
        pkt = eio_packet.Packet(eio_packet.MESSAGE, encoded)
        pkt.encode()  # fills the packet's encode cache once for every recipient
        self._deliver(pkt, namespace, to or room, skip_sid)

    def _deliver(self, pkt: Any, namespace: str, room: Any, skip_sid: Any) -> None:
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        eio = self.server.eio
        sockets = eio.sockets
        timeout_s = eio.ping_timeout
        now = time.time()
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skip:
                continue
            sock = sockets.get(eio_sid)
            if sock is None or sock.closed:
                continue
            last_ping = sock.last_ping
            if last_ping and now - last_ping > timeout_s:
                # Let engine.io close the dead client exactly as it would have.
                self.server.start_background_task(sock.send, pkt)
                continue
            sock.queue.put_nowait(pkt)
