"""ASGI guard in front of Engine.IO: connection limit and malformed-frame refusal.

Connection limit: a new Engine.IO session over ``MAX_CONNECTIONS`` is refused at the
handshake with HTTP 503 (``server_full``, ``Retry-After``), before Socket.IO sees it. Official
clients treat that as a failed transport and keep retrying with backoff (to any replica),
whereas a refusal in the Socket.IO connect handler would make them give up.

Malformed frames: python-engineio/socketio raise from their decoders on garbage (an empty
or non-numeric packet type escapes the WebSocket handler as an ASGI error and leaves the
session behind until the ping timeout). Every client frame is decoded here first, with
the library's own decoder; a frame that is not a packet our clients send ends the
connection (WebSocket) or gets a 400 (long-polling POST), and is counted by reason.
Frames the WebSocket layer refuses itself (too large, invalid UTF-8, broken framing) are
reported by the protocol (``gateway.wire.direct``) and counted here too.

One entrance: the guard routes every HTTP and WebSocket request itself, with
python-engineio's own path rule (``gateway.wire.routes``: ``/socket.io``, ``/socket.io/``,
``/socket.io/anything``, below any mount prefix), and calls Engine.IO's handler directly;
every other request goes to the HTTP app. Engine.IO's router never sees a request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import parse_qs

from common.logging import get_logger
from gateway.metrics import GatewayMetrics
from gateway.wire.direct import FRAME_REFUSED
from gateway.wire.frames import frame_problem, handshake_problem, payload_problem
from gateway.wire.routes import EngineRoutes

log = get_logger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
ASGIApp = Callable[[Scope, Receive, Send], Any]

FULL_BODY = b'{"error":"server_full","message":"connection limit reached; retry later"}'
RETRY_AFTER_S = "2"
# While full, a walk over every session (``SessionCount.open``) runs at most this often:
# refused clients retrying in a storm would otherwise each pay for one.
FULL_RECHECK_S = 0.05
#: WebSocket close codes (RFC 6455) the protocol refuses a client frame with -> metric label.
TRANSPORT_REFUSALS = {1007: "invalid_utf8", 1009: "too_large"}
TRANSPORT_REFUSAL_OTHER = "malformed"  # 1002: broken framing


class SessionCount(Protocol):
    def held(self) -> int:
        """Sessions held, closed ones included: an upper bound that is cheap to read."""

    def open(self) -> int:
        """Sessions neither closed nor closing: exact, one step per session."""

    def knows(self, sid: str) -> bool:
        """Whether ``sid`` names a session that can still take requests."""


class SocketGuard:
    def __init__(
        self,
        routes: EngineRoutes,
        sessions: SessionCount,
        max_connections: int,
        max_body_bytes: int,
        metrics: GatewayMetrics,
        *,
        transports: tuple[str, ...] = ("polling", "websocket"),
    ) -> None:
        self.routes = routes
        self.transports = transports
        self.engineio = routes.engine
        self.sessions = sessions
        self.max_connections = max_connections
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self._handshaking = 0  # admitted, and Engine.IO has not read their request yet
        self._shedding = False
        self._full_until = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.routes.lifespan(scope, receive, send)
            return
        if not self.routes.is_engine(scope):
            await self.routes.other(scope, receive, send)
            return
        if scope["type"] == "websocket":
            scope.setdefault("extensions", {})[FRAME_REFUSED] = self._refused_by_transport
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if "sid" not in query:
            await self._handshake(scope, query, receive, send)
        elif not self.sessions.knows(query["sid"][0]):
            # A stale session (its replica restarted, or it ended): official clients start
            # a new one after this 400. Answered here: engine.io would log it at ERROR.
            await self._refuse(scope, send, "unknown_session", b"unknown session")
        elif scope["type"] == "websocket":
            await self.engineio(scope, self._checked_frames(receive), send)
        elif scope.get("method") == "POST":
            await self._checked_post(scope, receive, send)
        else:
            await self.engineio(scope, receive, send)

    async def _handshake(
        self, scope: Scope, query: dict[str, list[str]], receive: Receive, send: Send
    ) -> None:
        # Refused here rather than by engine.io, which would log each kind at ERROR level.
        if problem := handshake_problem(query, self.transports):
            await self._refuse(scope, send, "bad_handshake", problem.encode())
            return
        if not self._has_room():
            await self._refuse_full(scope, send)
            return
        self._shedding = False
        # Counted until Engine.IO has read the request: from then on its session, if it
        # gets one, is in the session count (gateway.wire.engine.EngineSessions).
        self._handshaking += 1
        pending = _Pending(self)
        try:
            if scope["type"] == "websocket":
                # `send` stays unwrapped: it carries every signal to this client.
                await self.engineio(scope, self._checked_frames(receive, pending), send)
            else:
                await self.engineio(scope, _after_first(receive, pending), send)
        finally:
            pending.done()

    def _has_room(self) -> bool:
        limit = self.max_connections
        if self.sessions.held() + self._handshaking < limit:
            return True
        # Closed sessions stay held until Engine.IO sweeps them (up to a ping timeout).
        now = time.monotonic()
        if now < self._full_until:
            return False
        if self.sessions.open() + self._handshaking < limit:
            return True
        self._full_until = now + FULL_RECHECK_S
        return False

    def _refused_by_transport(self, code: int) -> None:
        """The WebSocket protocol refused a client frame and closed with ``code``."""
        reason = TRANSPORT_REFUSALS.get(code, TRANSPORT_REFUSAL_OTHER)
        self.metrics.client_frames_refused.labels(reason).inc()

    async def _refuse_full(self, scope: Scope, send: Send) -> None:
        self.metrics.connections_refused.labels("max_connections").inc()
        if not self._shedding:  # once per overload episode, not once per refused client
            self._shedding = True
            log.warning("connections_refused", reason="max_connections", limit=self.max_connections)
        headers = [(b"content-type", b"application/json"), (b"retry-after", RETRY_AFTER_S.encode())]
        # 1013: try again later.
        await _respond(scope, send, 503, headers, FULL_BODY, ws_close_code=1013)

    async def _refuse(
        self, scope: Scope, send: Send, reason: str, body: bytes = b"", *, status: int = 400
    ) -> None:
        """An HTTP error (or a WebSocket refused before it opens), counted by ``reason``."""
        self.metrics.client_frames_refused.labels(reason).inc()
        headers = [(b"content-type", b"text/plain")]
        # 1008: policy violation.
        await _respond(scope, send, status, headers, body or reason.encode(), ws_close_code=1008)

    def _checked_frames(self, receive: Receive, pending: _Pending | None = None) -> Receive:
        """Refuse malformed client frames; with ``pending``, end the handshake's count once
        the app has its first message (one wrapper: it lives as long as the WebSocket)."""

        async def checked() -> Message:
            message: Message = await receive()
            if pending is not None:
                pending.done()
            if message["type"] != "websocket.receive":
                return message
            problem = frame_problem(message.get("text"), message.get("bytes"))
            if problem is None:
                return message
            self.metrics.client_frames_refused.labels(problem).inc()
            # Engine.IO then ends the session cleanly, as if the client had left.
            return {"type": "websocket.disconnect", "code": 1008}

        return checked

    async def _checked_post(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, more, tail = bytearray(), True, None
        while more:
            message: Message = await receive()
            if message["type"] != "http.request":
                tail = message
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                await self._refuse(scope, send, "too_large", status=413)
                return
        problem = None if tail else payload_problem(bytes(body))
        if problem is not None:
            await self._refuse(scope, send, problem)
            return
        await self.engineio(scope, _replay(bytes(body), tail, receive), send)


async def _respond(
    scope: Scope,
    send: Send,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    *,
    ws_close_code: int,
) -> None:
    """An HTTP response, also to a WebSocket handshake (closed with ``ws_close_code`` where
    the server cannot answer a handshake with a response)."""
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": ws_close_code})


class _Pending:
    """One handshake in flight, counted by the guard until its session exists."""

    __slots__ = ("guard",)

    def __init__(self, guard: SocketGuard) -> None:
        self.guard: SocketGuard | None = guard

    def done(self) -> None:
        if self.guard is not None:
            self.guard._handshaking -= 1
            self.guard = None


def _after_first(receive: Receive, pending: _Pending) -> Receive:
    """A receive that ends the handshake's count once the app has its first message."""

    async def received() -> Message:
        message: Message = await receive()
        pending.done()
        return message

    return received


def _replay(body: bytes, tail: Message | None, receive: Receive) -> Receive:
    """A receive that hands the already-read body to the app, then the rest of the stream."""
    pending: list[Message] = [tail] if tail else [{"type": "http.request", "body": body}]

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        message: Message = await receive()
        return message

    return replayed
