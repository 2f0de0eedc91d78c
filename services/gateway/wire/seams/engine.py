"""python-engineio/socketio as wire/engine.py and wire/routes.py use them: when a
handshake's session exists, how sessions are counted and ended, the path rule.

Every connection here is a real DirectSocketIOServer's Engine.IO handler driven through
in-memory ASGI receive/send, as uvicorn would drive it."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from engineio import packet as eio_packet

from gateway.wire.seams import ended, in_fresh_loop, require, until

WS_HEADERS = [(b"connection", b"Upgrade"), (b"upgrade", b"websocket")]
SIO_DISCONNECT = "41"  # Engine.IO MESSAGE + Socket.IO DISCONNECT, default namespace
EIO_CLOSE = str(eio_packet.CLOSE)
# The probe's refused requests are expected: engine.io would log them at ERROR.
SILENT = logging.Logger("gateway.wire.compat.probe.engine")
SILENT.disabled = True


class Connection:
    """One in-memory ASGI request or WebSocket to Engine.IO. The client's messages go in
    with put_nowait: the probe must not depend on Queue.put (an assumption of its own)."""

    def __init__(
        self,
        sio: Any,
        query: str,
        *,
        method: str = "",  # an HTTP request; none: a WebSocket
        body: bytes = b"",
        on_first: Callable[[], None] = lambda: None,  # runs at the first receive
    ) -> None:
        kind = "http" if method else "websocket"
        self.scope = {
            "type": kind,
            "method": method or "GET",
            "path": "/socket.io/",
            "root_path": "",
            "query_string": query.encode(),
            "headers": [(b"content-length", b"%d" % len(body))] if method else WS_HEADERS,
        }
        self.sent: list[dict[str, Any]] = []
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        first = {"type": "http.request", "body": body} if method else {"type": f"{kind}.connect"}
        self.inbox.put_nowait(first)
        self._on_first: Callable[[], None] | None = on_first
        self.task = asyncio.ensure_future(
            sio.eio.handle_request(self.scope, self.receive, self.send)
        )

    async def receive(self) -> dict[str, Any]:
        if self._on_first is not None:
            on_first, self._on_first = self._on_first, None
            on_first()
        return await self.inbox.get()

    async def send(self, event: dict[str, Any]) -> None:
        self.sent.append(event)

    def texts(self) -> list[str]:
        return [e["text"] for e in self.sent if e["type"] == "websocket.send" and e.get("text")]

    def feed(self, text: str) -> None:
        self.inbox.put_nowait({"type": "websocket.receive", "text": text})

    async def hang_up(self) -> None:
        self.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await ended(self.task, "the WebSocket handler to return")

    async def response(self) -> tuple[int, bytes]:
        await ended(self.task, "the HTTP response")
        start, body = self.sent[0], b"".join(e.get("body", b"") for e in self.sent[1:])
        return int(start["status"]), body


def direct_sio() -> Any:
    from gateway.wire.direct import DirectSocketIOServer

    sio = DirectSocketIOServer(async_mode="asgi", logger=False, engineio_logger=False)
    sio.eio.start_service_task = False  # no sweep task: the probe's loop ends with it
    sio.logger = sio.eio.logger = SILENT
    return sio


def counts(sio: Any) -> tuple[int, int]:
    from gateway.wire.engine import EngineSessions

    sessions = EngineSessions(sio)
    return sessions.held(), sessions.open()


async def polling_session(sio: Any) -> str:
    """A long-polling Engine.IO session (handshake GET); its sid."""
    status, body = await Connection(sio, "EIO=4&transport=polling", method="GET").response()
    require(status == 200 and body[:1] == b"0", f"polling handshake answered {status}")
    sid: str = json.loads(body[1:])["sid"]
    return sid


async def websocket_client(sio: Any) -> tuple[Connection, str]:
    """A WebSocket-only client connected to Socket.IO; its connection and Socket.IO sid."""
    sids: list[str] = []

    async def connect(sid: str, _environ: Any, _auth: Any = None) -> None:
        sids.append(sid)

    sio.on("connect", connect)
    conn = Connection(sio, "EIO=4&transport=websocket")
    await until(conn.texts, "the Engine.IO OPEN packet")
    conn.feed("40")
    await until(lambda: sids and len(conn.texts()) > 1, "the Socket.IO CONNECT")
    return conn, sids[0]


async def counted_at_first_suspension() -> list[int]:
    sio = direct_sio()
    seen: list[int] = []

    def record() -> None:  # runs at Engine.IO's next suspension, whatever it is
        asyncio.get_running_loop().call_soon(lambda: seen.append(len(sio.eio.sockets)))

    await Connection(sio, "EIO=4&transport=polling", method="GET", on_first=record).response()
    conn = Connection(sio, "EIO=4&transport=websocket", on_first=record)
    await until(conn.texts, "the Engine.IO OPEN packet")
    await conn.hang_up()
    return seen


def check_session_before_await() -> None:
    """On a real server, for a polling and a WebSocket handshake, the session is in
    ``eio.sockets`` at the first suspension after handle_request() read the request:
    translate_request's receive and _handle_connect's new session have no await between
    them (EngineSessions counts a handshake by the guard until that receive only)."""
    seen = in_fresh_loop(counted_at_first_suspension)
    require(seen == [1, 2], f"sessions at the first suspension: {seen} (expected [1, 2])")


async def session_counts() -> list[tuple[int, int]]:
    sio = direct_sio()
    closed: list[str] = []  # sessions engine.io reported closed (its disconnect event)
    report = sio.eio.handlers["disconnect"]

    async def disconnected(eio_sid: str, *args: Any) -> None:
        closed.append(eio_sid)
        await report(eio_sid, *args)

    sio.eio.handlers["disconnect"] = disconnected
    sid = await polling_session(sio)
    steps = [counts(sio)]
    await sio.eio.sockets[sid].close(wait=False, abort=True)  # what a client's CLOSE does
    steps.append(counts(sio))
    conn = Connection(sio, "EIO=4&transport=websocket")
    await until(conn.texts, "the Engine.IO OPEN packet")
    steps.append(counts(sio))
    conn.feed(EIO_CLOSE)  # the client closes the session but keeps its WebSocket
    await until(lambda: len(closed) == 2, "engine.io to close the session")
    steps.append(counts(sio))
    await conn.hang_up()
    steps.append(counts(sio))
    return steps


def check_session_counts() -> None:
    """EngineSessions on a real server: (held, open) is (1, 1) for a polling session,
    (1, 0) once closed (kept in eio.sockets, flagged closed); a WebSocket session adds
    (2, 1), still (2, 1) after the client's CLOSE while its WebSocket stays (upgraded),
    and leaves eio.sockets the moment the WebSocket ends: (1, 0)."""
    steps = in_fresh_loop(session_counts)
    require(steps == [(1, 1), (1, 0), (2, 1), (2, 1), (1, 0)], f"(held, open) went {steps}")


async def disconnected_only() -> dict[str, Any]:
    sio = direct_sio()
    conn, sid = await websocket_client(sio)
    eio_sid = sio.manager.eio_sid_from_sid(sid, "/")
    await sio.disconnect(sid, ignore_queue=True)
    await until(lambda: SIO_DISCONNECT in conn.texts(), "the Socket.IO DISCONNECT")
    sock = sio.eio.sockets.get(eio_sid)
    facts = {"gone": not sio.manager.is_connected(sid, "/"), "kept": bool(sock and not sock.closed)}
    await conn.hang_up()
    return facts


def check_disconnect_ignore_queue() -> None:
    """On a real server, ``disconnect(sid, ignore_queue=True)`` sends the client Socket.IO's
    DISCONNECT and ends its Socket.IO session only: the Engine.IO session stays open
    (which is why end_connection then ends the transport itself)."""
    facts = in_fresh_loop(disconnected_only)
    require(facts["gone"], "the Socket.IO session is still connected")
    require(facts["kept"], "disconnect() also closed the Engine.IO session")


async def ended_connections() -> dict[str, Any]:
    from gateway.wire.engine import end_connection

    sio = direct_sio()
    conn, sid = await websocket_client(sio)
    before = len(conn.texts())
    await end_connection(sio, sid)
    await until(lambda: conn.sent[-1]["type"] == "websocket.close", "the WebSocket to close")
    facts: dict[str, Any] = {"websocket": conn.texts()[before:]}
    await conn.hang_up()
    eio_sid = await polling_session(sio)
    post = Connection(sio, f"EIO=4&transport=polling&sid={eio_sid}", method="POST", body=b"40")
    await post.response()
    await until(lambda: sio.manager.sid_from_eio_sid(eio_sid, "/"), "the Socket.IO CONNECT")
    await end_connection(sio, sio.manager.sid_from_eio_sid(eio_sid, "/"))
    facts["polling_closed"] = sio.eio.sockets[eio_sid].closed
    get = Connection(sio, f"EIO=4&transport=polling&sid={eio_sid}", method="GET")
    facts["next_request"] = (await get.response())[0]
    return facts


def check_end_connection() -> None:
    """end_connection() on real sessions: a WebSocket client gets Socket.IO's DISCONNECT,
    then Engine.IO's CLOSE, then the WebSocket closes (socket send() then a None in its
    queue); a polling session is closed at once (close(wait=False)) and its next request
    is refused with 400."""
    facts = in_fresh_loop(ended_connections)
    require(facts["websocket"] == [SIO_DISCONNECT, EIO_CLOSE], f"sent {facts['websocket']}")
    require(facts["polling_closed"], "the polling session is not closed at once")
    require(facts["next_request"] == 400, f"the next poll got {facts['next_request']}")


def check_engine_path_rule() -> None:
    """routing_mismatches() (gateway/wire/routes.py) asks the installed engineio.ASGIApp
    which probe paths it hands to Engine.IO, for the default path, another path and
    engineio_path=None; EngineRoutes' rule must agree on every one."""
    from gateway.wire.routes import routing_mismatches

    for engineio_path in ("/socket.io/", "/a/b/", None):
        mismatches = routing_mismatches(engineio_path)
        require(not mismatches, f"engineio_path={engineio_path!r}: differs on {mismatches}")
