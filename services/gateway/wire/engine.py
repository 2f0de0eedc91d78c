"""Engine.IO sessions seen from outside: how many are open, and ending one's transport."""

from __future__ import annotations

from typing import Any

import socketio

from common.constants import NAMESPACE


def open_sessions(sio: socketio.AsyncServer) -> int:
    """Engine.IO sessions the server holds (python-engineio keeps them in ``eio.sockets``)."""
    return len(sio.eio.sockets)


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


def engine_entry(sio: socketio.AsyncServer) -> Any:
    """Engine.IO's own ASGI entry point (``eio.handle_request``): the guard calls it
    directly, two fewer pass-through coroutine frames per open WebSocket."""
    return sio.eio.handle_request
