"""The guard in front of the real python-socketio/engineio server, driven in-process over ASGI.

Session accounting against the real library, and a property test: random paths, query
strings, methods, bodies and WebSocket frames. Every request is answered, nothing raises
or logs at ERROR, only the guard's route reaches Engine.IO, and the limit holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import socketio
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from gateway.edge.guard import SocketGuard
from gateway.metrics import GatewayMetrics
from gateway.wire.direct import DirectSocketIOServer
from gateway.wire.engine import EngineSessions, held_sessions, open_sessions
from gateway.wire.routes import EngineRoutes, library_routes_to_engine

LIMIT = 2
BODY_LIMIT = 256
CALL_TIMEOUT_S = 3.0
ONCE = "(further occurrences of this error will be logged with level INFO)"

Message = dict[str, Any]


@dataclass
class Harness:
    sio: socketio.AsyncServer
    guard: SocketGuard
    other_calls: list[str] = field(default_factory=list)
    sids: list[str] = field(default_factory=list)


def harness(limit: int = LIMIT) -> Harness:
    sio = DirectSocketIOServer(
        async_mode="asgi", ping_interval=0.2, ping_timeout=0.3, max_http_buffer_size=BODY_LIMIT
    )
    calls: list[str] = []

    async def other(scope: dict[str, Any], receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"other"})

    routes = EngineRoutes.of(socketio.ASGIApp(sio, other_asgi_app=other))
    metrics = GatewayMetrics(CollectorRegistry())
    guard = SocketGuard(routes, EngineSessions(sio), limit, BODY_LIMIT, metrics)
    return Harness(sio, guard, calls)


def http_scope(method: str, path: str, query: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


async def http_call(h: Harness, method: str, path: str, query: str, body: bytes) -> Message:
    """One HTTP request; returns the response start (asserting a complete response)."""
    sent: list[Message] = []
    answered = asyncio.Event()
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    await asyncio.wait_for(h.guard(http_scope(method, path, query), receive, send), CALL_TIMEOUT_S)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"], sent
    return {**sent[0], "body": sent[1]["body"]}


async def ws_call(h: Harness, path: str, query: str, frames: list[str | bytes]) -> list[Message]:
    """One WebSocket: connect, the frames, then the client leaves; what the app sent."""
    scope = {**http_scope("GET", path, query), "type": "websocket", "subprotocols": []}
    scope["extensions"] = {"websocket.http.response": {}}
    del scope["method"]
    incoming: list[Message] = [{"type": "websocket.connect"}]
    incoming += [
        {"type": "websocket.receive", "bytes": f}
        if isinstance(f, bytes)
        else {"type": "websocket.receive", "text": f}
        for f in frames
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        await asyncio.sleep(0)
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    await asyncio.wait_for(h.guard(scope, receive, send), CALL_TIMEOUT_S)
    assert sent, "a WebSocket that got no answer at all"
    first = sent[0]["type"]
    assert first in ("websocket.accept", "websocket.close", "websocket.http.response.start")
    return sent


class ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def errors() -> Iterator[ErrorRecords]:
    handler = ErrorRecords()
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)


HANDSHAKE = "EIO=4&transport=polling"


async def test_a_handshake_counts_once_the_session_exists() -> None:
    """python-engineio creates the session before it next awaits after reading the request
    (what EngineSessions relies on): a handshake is never counted twice or not at all."""
    h = harness(limit=100)
    seen: list[tuple[int, int]] = []
    loop = asyncio.get_running_loop()
    pending = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        message = pending.pop(0)
        # Runs at Engine.IO's next suspension, whatever it is.
        loop.call_soon(lambda: seen.append((open_sessions(h.sio), h.guard._handshaking)))
        return message

    async def send(_message: Message) -> None:
        return None

    await h.guard(http_scope("GET", "/socket.io/", HANDSHAKE), receive, send)
    assert seen[0] == (1, 0)


async def test_closed_sessions_leave_the_count_before_engineio_sweeps_them() -> None:
    h = harness()
    for _ in range(LIMIT):
        assert (await http_call(h, "GET", "/socket.io/", HANDSHAKE, b""))["status"] == 200
    assert (await http_call(h, "GET", "/socket.io", HANDSHAKE, b""))["status"] == 503
    for sock in list(h.sio.eio.sockets.values()):
        await sock.close(wait=False, abort=True)  # what a client's CLOSE packet does
    assert held_sessions(h.sio) == LIMIT  # still held until the sweep
    assert open_sessions(h.sio) == 0
    await asyncio.sleep(0.06)  # the guard re-counts a full server at most every 50 ms
    assert (await http_call(h, "GET", "/socket.io", HANDSHAKE, b""))["status"] == 200


# --- property test ---------------------------------------------------------------------

PATH_PIECES = ["/", "socket.io", "socket.io/", "/socket.io", ".io", "x", "api", "//", "%"]
PATHS = st.one_of(
    st.sampled_from(["/socket.io/", "/socket.io", "/socket.io/x", "/socket.iox", "/"]),
    st.lists(st.sampled_from(PATH_PIECES), max_size=4).map(lambda p: "/" + "".join(p)),
)
QUERY_PARTS = st.sampled_from(
    [
        "EIO=4",
        "EIO=3",
        "EIO=x",
        "transport=polling",
        "transport=websocket",
        "transport=x",
        "sid=nope",
        "sid=",
        "j=0",
        "t=1",
        "&",
        "=",
        "%ff",
        "b64=1",
        "SID",
    ]
)
QUERIES = st.one_of(
    st.sampled_from(["EIO=4&transport=polling", "EIO=4&transport=websocket"]),
    st.lists(QUERY_PARTS, max_size=4).map("&".join),
)
FRAMES = st.one_of(
    st.sampled_from(
        [
            "40",
            "2",
            "3",
            "41",
            "1",
            "5",
            "6",
            '42["subscribe",["A"]]',
            '420["x"]',
            "",
            "4",
            "42[",
            "44",
            "451-[]",
            "9",
            "4" + "[" * 300,
            "x" * 300,
        ]
    ),
    st.text(max_size=20),
    st.binary(max_size=20),
)
BODIES = st.one_of(
    st.sampled_from([b"40", b"2", b"1", b"42[", b"", b"40\x1e42[]", b"bAAA", b"x" * 400]),
    st.binary(max_size=40),
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, str, bytes | list[str | bytes], bool]:
    kind = draw(st.sampled_from(["GET", "GET", "POST", "OPTIONS", "PUT", "websocket", "websocket"]))
    path = draw(PATHS)
    query = draw(QUERIES)
    with_sid = draw(st.booleans())  # name one of the sessions opened so far
    payload: bytes | list[str | bytes] = (
        draw(st.lists(FRAMES, max_size=4)) if kind == "websocket" else draw(BODIES)
    )
    return kind, path, query, payload, with_sid


async def run_requests(h: Harness, batch: list[Any]) -> None:
    for kind, path, drawn_query, payload, with_sid in batch:
        query = f"{drawn_query}&sid={h.sids[-1]}" if with_sid and h.sids else drawn_query
        before = len(h.other_calls)
        if kind == "websocket":
            sent = await ws_call(h, path, query, payload)
        else:
            reply = await http_call(h, kind, path, query, payload)
            if reply["status"] == 200 and reply["body"].startswith(b"0{"):
                h.sids.append(json.loads(reply["body"][1:].split(b"\x1e")[0])["sid"])
            sent = [reply]
        event(f"{kind} -> {sent[0].get('status') or sent[0]['type']}")
        reached_other = len(h.other_calls) > before
        assert reached_other is not library_routes_to_engine("/socket.io/", path), (path, sent)
        assert open_sessions(h.sio) <= LIMIT


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(requests(), min_size=1, max_size=10))
def test_any_request_is_answered_within_the_limits(errors: ErrorRecords, batch: list[Any]) -> None:
    async def scenario() -> None:
        h = harness()
        try:
            await run_requests(h, batch)
        finally:
            for sock in list(h.sio.eio.sockets.values()):  # no queue.join(): nobody polls
                await sock.close(wait=False, abort=True)

    errors.records.clear()
    asyncio.run(scenario())
    # python-engineio reports each kind of bad request once per process at ERROR, then
    # at INFO (``_log_error_once``): one line, never a traceback. Nothing else may appear.
    unexpected = [r for r in errors.records if r.exc_info or not r.getMessage().endswith(ONCE)]
    assert not unexpected, [r.getMessage() for r in unexpected]
