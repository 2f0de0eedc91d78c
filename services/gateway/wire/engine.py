"""Engine.IO sessions seen from outside: how many are open, and ending one's transport."""

from __future__ import annotations

import socketio
from engineio import packet as eio_packet

from common.constants import NAMESPACE


def held_sessions(sio: socketio.AsyncServer) -> int:
    """Engine.IO sessions the server holds (``eio.sockets``), closed ones included: an
    upper bound on ``open_sessions`` that costs nothing to read."""
    return len(sio.eio.sockets)


def open_sessions(sio: socketio.AsyncServer) -> int:
    """Engine.IO sessions that still hold a connection: open ones, and WebSocket ones
    whose WebSocket has not ended yet.

    python-engineio keeps a closed long-polling session in ``eio.sockets`` until its next
    request or its service task reaches it (one session per ``ping_timeout /
    len(sockets)`` seconds: a whole ping timeout to sweep them all), so ``len`` overcounts
    for that long after clients leave. A WebSocket session leaves ``eio.sockets`` the
    moment its WebSocket handler returns, so while it is there its connection is open,
    even after the session closed (a client that sends CLOSE and keeps its WebSocket
    must still count). This walks every session: call it when ``held_sessions`` is not
    enough.
    """
    return sum(1 for s in sio.eio.sockets.values() if s.upgraded or not (s.closed or s.closing))


async def close_transport(sio: socketio.AsyncServer, sid: str) -> None:
    """Drop the client's connection so that it reconnects (to another replica) by itself.

    A Socket.IO disconnect, or Engine.IO's CLOSE packet (``eio.disconnect``), tells the
    Python client the server ended the session and it does not reconnect. Ending the
    WebSocket without a CLOSE packet looks like a lost connection to every official
    client, so they all reconnect. python-engineio has no public call for that: a None
    in the socket's send queue makes its writer close the WebSocket.
    """
    eio_sid = sio.manager.eio_sid_from_sid(sid, NAMESPACE)
    socket = sio.eio.sockets.get(eio_sid) if eio_sid is not None else None
    if socket is None:
        return
    if socket.upgraded:
        await socket.queue.put(None)
    else:
        # Long-polling: the JS client reconnects after CLOSE; no better handle exists.
        await sio.eio.disconnect(eio_sid)


class EngineSessions:
    """The two session counts of one server that the connection limit reads.

    A handshake is in neither until python-engineio has its first ASGI message: it reads
    that message (``translate_request``) and creates the session in ``eio.sockets``
    (``_handle_connect``) with no await in between, so once that first ``receive`` has
    returned, the handshake's session, if it gets one, is counted here
    (tests/unit/gateway/test_guard_inprocess.py checks this on the real library).
    """

    __slots__ = ("_sio",)

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio

    def held(self) -> int:
        return held_sessions(self._sio)

    def open(self) -> int:
        return open_sessions(self._sio)

    def knows(self, sid: str) -> bool:
        # engine.io logs an unknown or closed session at ERROR: the guard answers it first.
        socket = self._sio.eio.sockets.get(sid)
        return socket is not None and not socket.closed


async def end_connection(sio: socketio.AsyncServer, sid: str) -> None:
    """End the client's connection for good (a flood kick): its transport, not only its session.

    ``sio.disconnect`` ends the Socket.IO session only: the WebSocket stays open and a
    CONNECT on it starts a new session. So: the Socket.IO DISCONNECT first (official
    clients then know the server ended it and do not reconnect), then Engine.IO's CLOSE
    and, for a WebSocket, a None behind it that makes the writer close the WebSocket once
    CLOSE is out, without waiting for a client that may not be reading (``eio.disconnect``
    waits for the queue to drain). The session stays in python-engineio until its reader
    sees the WebSocket end, so a CONNECT already in flight gets an ordinary session that
    ends with it, rather than one on a closed session (python-socketio fails that one).
    """
    eio_sid = sio.manager.eio_sid_from_sid(sid, NAMESPACE)
    await sio.disconnect(sid, ignore_queue=True)
    socket = sio.eio.sockets.get(eio_sid) if eio_sid is not None else None
    if socket is None or socket.closing or socket.closed:
        return
    if socket.upgraded:
        await socket.send(eio_packet.Packet(eio_packet.CLOSE))
        await socket.queue.put(None)
    else:
        # Long-polling: a request on a closed session is refused (400), so close it now.
        await socket.close(wait=False)


class EngineConnections:
    """The Engine.IO connection each Socket.IO session runs on (per-connection limits)."""

    __slots__ = ("_sio",)

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio

    def of(self, sid: str) -> str | None:
        eio_sid: str | None = self._sio.manager.eio_sid_from_sid(sid, NAMESPACE)
        return eio_sid

    def is_open(self, connection: str) -> bool:
        socket = self._sio.eio.sockets.get(connection)
        return socket is not None and not (socket.closing or socket.closed)
