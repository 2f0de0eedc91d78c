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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from common.logging import get_logger
from gateway.metrics import GatewayMetrics
from gateway.wire.frames import frame_problem, payload_problem

log = get_logger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
ASGIApp = Callable[[Scope, Receive, Send], Any]

SOCKETIO_PATH = "/socket.io/"
FULL_BODY = b'{"error":"server_full","message":"connection limit reached; retry later"}'
RETRY_AFTER_S = "2"
CLOSE_MESSAGE_TOO_BIG = 1009  # WebSocket close code (RFC 6455)


class SocketGuard:
    def __init__(
        self,
        app: ASGIApp,
        sessions: Callable[[], int],
        max_connections: int,
        max_body_bytes: int,
        metrics: GatewayMetrics,
        *,
        engineio: ASGIApp | None = None,
    ) -> None:
        self.app = app
        # Engine.IO's own entry point (``sio.eio.handle_request``) for /socket.io/ requests:
        # two fewer pass-through coroutine frames kept alive for each open WebSocket.
        self.engineio = engineio or app
        self.sessions = sessions  # open Engine.IO sessions
        self.max_connections = max_connections
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self._handshaking = 0
        self._shedding = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not scope["path"].startswith(
            SOCKETIO_PATH
        ):
            await self.app(scope, receive, send)
            return
        if not _has_sid(scope):
            await self._handshake(scope, receive, send)
        elif scope["type"] == "websocket":
            await self.engineio(scope, self._checked_frames(receive), send)
        elif scope.get("method") == "POST":
            await self._checked_post(scope, receive, send)
        else:
            await self.engineio(scope, receive, send)

    async def _handshake(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Handshakes in flight count too: their session is created before they answer.
        if self.sessions() + self._handshaking >= self.max_connections:
            await self._refuse_full(scope, send)
            return
        self._shedding = False
        self._handshaking += 1
        pending = _Pending(self)
        try:
            if scope["type"] == "websocket":
                # `send` stays unwrapped: it carries every signal to this client. The app
                # reads client frames only after accepting, when its session exists.
                await self.engineio(scope, self._checked_frames(receive, pending), send)
            else:
                await self.engineio(scope, receive, _on_first_send(send, pending.done))
        finally:
            pending.done()

    async def _refuse_full(self, scope: Scope, send: Send) -> None:
        self.metrics.connections_refused.labels("max_connections").inc()
        if not self._shedding:  # once per overload episode, not once per refused client
            self._shedding = True
            log.warning("connections_refused", reason="max_connections", limit=self.max_connections)
        headers = [(b"content-type", b"application/json"), (b"retry-after", RETRY_AFTER_S.encode())]
        if scope["type"] == "websocket":
            if "websocket.http.response" not in scope.get("extensions", {}):
                await send({"type": "websocket.close", "code": 1013})  # try again later
                return
            await send({"type": "websocket.http.response.start", "status": 503, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": FULL_BODY})
            return
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": FULL_BODY})

    def _checked_frames(self, receive: Receive, pending: _Pending | None = None) -> Receive:
        """Refuse malformed client frames; with ``pending``, end the handshake's count when
        the app asks for a second message (one wrapper: it lives as long as the WebSocket)."""

        async def checked() -> Message:
            if pending is not None and pending.calls < 2:
                pending.calls += 1
                if pending.calls == 2:
                    pending.done()
            message: Message = await receive()
            if message["type"] != "websocket.receive":
                if message.get("code") == CLOSE_MESSAGE_TOO_BIG:
                    # uvicorn refused an oversized message (``ws_max_size``) before the app saw it.
                    self.metrics.client_frames_refused.labels("too_large").inc()
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
                await self._reject(send, 413, "too_large")
                return
        problem = None if tail else payload_problem(bytes(body))
        if problem is not None:
            await self._reject(send, 400, problem)
            return
        await self.engineio(scope, _replay(bytes(body), tail, receive), send)

    async def _reject(self, send: Send, status: int, reason: str) -> None:
        self.metrics.client_frames_refused.labels(reason).inc()
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": reason.encode()})


def _has_sid(scope: Scope) -> bool:
    """Whether the request names an Engine.IO session (the parsed query is not kept)."""
    return "sid" in parse_qs(scope.get("query_string", b"").decode("latin-1"))


class _Pending:
    """One handshake in flight, counted by the guard until its session exists."""

    __slots__ = ("calls", "guard")

    def __init__(self, guard: SocketGuard) -> None:
        self.guard: SocketGuard | None = guard
        self.calls = 0  # receive calls seen (WebSocket)

    def done(self) -> None:
        if self.guard is not None:
            self.guard._handshaking -= 1
            self.guard = None


def _on_first_send(send: Send, callback: Callable[[], None]) -> Send:
    """A send that calls ``callback`` before the first message (a one-response handshake)."""

    async def sent(message: Message) -> None:
        callback()
        await send(message)

    return sent


def _replay(body: bytes, tail: Message | None, receive: Receive) -> Receive:
    """A receive that hands the already-read body to the app, then the rest of the stream."""
    pending: list[Message] = [tail] if tail else [{"type": "http.request", "body": body}]

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        message: Message = await receive()
        return message

    return replayed
