"""uvicorn's websockets (sans-I/O) protocol and websockets' frames, on a real TCP socket."""

from __future__ import annotations

import asyncio
import inspect
import socket
import time
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from gateway.wire import seams
from gateway.wire.seams import QUIET_LOG, in_fresh_loop, require, until

HANDSHAKE = (
    b"GET /compat-probe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
CLIENT_HI = b"\x81\x82\x00\x00\x00\x00hi"  # a client's masked text frame (zero key)
REFUSED = b"GET /compat-probe HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"  # no upgrade headers


async def read_peer(peer: socket.socket, done: Any, what: str | None = None) -> bytes:
    """Read until ``done(data)``; at the deadline fail naming ``what``, or, without one,
    return what arrived (the caller judges it)."""
    data = bytearray()
    deadline = time.monotonic() + seams.UNTIL_TIMEOUT_S
    while not done(data):
        if time.monotonic() > deadline:
            require(what is None, f"timed out reading {what}")
            break
        try:
            data += peer.recv(65536)
        except BlockingIOError:
            await asyncio.sleep(0.001)
    return bytes(data)


async def connect(protocol: Any, request: bytes) -> tuple[socket.socket, asyncio.Server]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: protocol, "127.0.0.1", 0)
    peer = socket.create_connection(server.sockets[0].getsockname()[:2], timeout=2)
    peer.setblocking(False)
    peer.sendall(request)
    await until(lambda: protocol.handshake_initiated, "the handshake")
    return peer, server


def probe_config(app: Any) -> Config:
    """The gateway's WebSocket options; no logging set-up, no lifespan."""
    from gateway.wire.direct import DirectSendProtocol

    config = Config(
        app=app,
        ws=DirectSendProtocol,
        ws_per_message_deflate=False,
        ws_ping_interval=None,
        log_config=None,
        lifespan="off",
    )
    config.load()
    return config


def probe_protocol(config: Config, state: ServerState) -> Any:
    from gateway.wire.direct import DirectSendProtocol

    protocol = DirectSendProtocol(config=config, server_state=state, app_state={})
    protocol.logger = QUIET_LOG  # no "WebSocket accepted" line for a probe
    return protocol


async def exchange(protocol: Any, peer: socket.socket, facts: dict[str, Any]) -> None:
    """After the accept: uvicorn's sends and direct writes, a paused transport, a close."""
    from gateway.wire.direct import text_frame

    await protocol.send({"type": "websocket.send", "text": "one"})
    facts["direct_write"] = protocol.write_frame(text_frame("two"))
    await protocol.send({"type": "websocket.send", "text": "three"})
    expected = b"".join(text_frame(t) for t in ("one", "two", "three"))
    got = await read_peer(peer, lambda d: len(d) >= len(expected))
    facts["frames_in_order"] = got == expected
    protocol.pause_writing()
    facts["paused"] = [protocol.writable.is_set(), protocol.write_frame(b"x")]
    protocol.resume_writing()
    facts["resumed"] = protocol.writable.is_set()
    await protocol.send({"type": "websocket.close"})
    facts["closed"] = [protocol.close_sent, protocol.conn.state is State.OPEN]
    facts["write_after_close"] = protocol.write_frame(b"x")


async def uvicorn_session() -> dict[str, Any]:
    """One WebSocket served by our protocol under uvloop, as uvicorn would; what we saw."""
    from gateway.wire.direct import DIRECT_SEND

    finished = asyncio.Event()
    received: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()  # websocket.connect
        while not finished.is_set():  # through our Inbox (gateway.wire.lazy)
            received.append(await receive())
            if received[-1]["type"] == "websocket.disconnect":
                await finished.wait()

    config = probe_config(app)
    state = ServerState()
    protocol = probe_protocol(config, state)
    facts: dict[str, Any] = {"protocol_class": config.ws_protocol_class}
    facts["init"] = [getattr(protocol, n, None) for n in ("close_sent", "disconnected")]
    facts["init_writable"] = protocol.writable.is_set()
    facts["conn"] = isinstance(protocol.conn, ServerProtocol)
    peer, server = await connect(protocol, HANDSHAKE)
    facts["scope"] = getattr(protocol, "scope", {"extensions": {}, "scheme": None})
    facts["extension"] = facts["scope"]["extensions"].get(DIRECT_SEND) == protocol.write_frame
    facts["early_write"] = protocol.write_frame(b"x")
    await protocol.send({"type": "websocket.accept"})
    facts["handshake_dropped"] = protocol.request is None and protocol.response is None
    facts["open"] = protocol.conn.state is State.OPEN and not protocol.conn.extensions
    await read_peer(peer, lambda d: b"\r\n\r\n" in d, "the 101 response")
    facts["frame_parser"] = getattr(protocol.conn.parser, "gi_code", None)
    peer.sendall(CLIENT_HI)  # parsed by the frame parser alone, received through the Inbox
    await until(lambda: received, "the client's frame")
    facts["received"] = received[0]
    facts["lazy"] = [type(protocol.queue).__name__, type(protocol.writable).__name__]
    await exchange(protocol, peer, facts)
    peer.close()
    await until(lambda: protocol.disconnected, "connection_lost")
    finished.set()
    await asyncio.gather(*state.tasks)
    server.close()
    refused = probe_protocol(config, ServerState())
    peer, server = await connect(refused, REFUSED)
    facts["refused_has_scope"] = hasattr(refused, "scope")
    peer.close()
    server.close()
    return facts


def session() -> dict[str, Any]:
    return in_fresh_loop(uvicorn_session, use_uvloop=True)


def check_ws_option() -> None:
    """uvicorn.Config(ws=DirectSendProtocol).load() makes it the WebSocket protocol class."""
    from gateway.wire.direct import DirectSendProtocol

    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    config = probe_config(app)
    require(config.ws_protocol_class is DirectSendProtocol, "ws= class not used")


def check_protocol_init() -> None:
    """A protocol built as uvicorn's HTTP protocols build it (config=, server_state=,
    app_state=) starts with ``writable`` set, ``close_sent``/``disconnected`` False and
    ``conn`` a websockets ServerProtocol."""
    facts = session()
    require(facts["init"] == [False, False] and facts["init_writable"], f"{facts['init']}")
    require(facts["conn"], "protocol.conn is not a websockets ServerProtocol")


def check_handle_connect() -> None:
    """Served on a real TCP socket under uvloop, an accepted upgrade gives handle_connect
    a ``scope`` (scheme "ws", an ``extensions`` dict, where our write_frame appears) and a
    refused one (no upgrade headers) gives none; no direct write before the accept."""
    facts = session()
    require(facts["extension"] and facts["scope"]["scheme"] == "ws", "scope/extensions")
    require(facts["refused_has_scope"] is False, "a refused upgrade has a scope")
    require(facts["early_write"] is False, "a direct write went out before the 101")


def check_handshake_dropped() -> None:
    """After our send() of websocket.accept drops ``request``/``response``, the same
    connection keeps sending and closing without uvicorn reading them again."""
    facts = session()
    require(facts["handshake_dropped"], "request/response still held")
    require(facts["frames_in_order"] and facts["closed"][0], "send/close failed after accept")


def check_send_gate() -> None:
    """On that socket, frames from uvicorn's send() and from write_frame() arrive whole and
    in call order; pause_writing()/resume_writing() clear/set ``writable`` (a paused
    transport declines direct writes); after websocket.close, ``close_sent`` is set and
    direct writes stop; connection_lost sets ``disconnected``."""
    facts = session()
    require(facts["direct_write"] and facts["frames_in_order"], "frames out of order")
    require(facts["paused"] == [False, False] and facts["resumed"], f"paused {facts['paused']}")
    require(facts["write_after_close"] is False, "direct write after close")


def check_lean_protocol() -> None:
    """uvicorn's protocol, with its receive queue and ``writable`` event replaced by our
    Inbox and LazyEvent, receives a client frame, sends, pauses, resumes and closes on a
    real socket: it uses no other method of the two (an AttributeError otherwise)."""
    facts = session()
    require(facts["lazy"] == ["Inbox", "LazyEvent"], f"protocol holds {facts['lazy']}")
    require(facts["received"] == {"type": "websocket.receive", "text": "hi"}, "receive")
    require(facts["frames_in_order"] and facts["resumed"], "send/pause/resume")


def check_protocol_slots() -> None:
    """Each name DirectSendProtocol keeps in a slot is an instance attribute a real uvicorn
    protocol's __init__ sets, and no class of uvicorn's defines it (a slot would hide a
    class attribute or property); ours then holds at most a handful in its __dict__."""
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    from gateway.wire.direct import PROTOCOL_SLOTS

    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    async def probe() -> tuple[set[str], set[str], int]:
        config = probe_config(app)
        stock = WebSocketsSansIOProtocol(config=config, server_state=ServerState(), app_state={})
        ours = probe_protocol(config, ServerState())
        in_classes = {
            n for n in PROTOCOL_SLOTS for c in WebSocketsSansIOProtocol.__mro__ if n in vars(c)
        }
        return set(PROTOCOL_SLOTS) - set(vars(stock)), in_classes, len(vars(ours))

    unset, in_classes, left = in_fresh_loop(probe, use_uvloop=True)
    require(not unset, f"uvicorn no longer sets {sorted(unset)}")
    require(not in_classes, f"uvicorn defines {sorted(in_classes)} on a class")
    require(left <= 5, f"{left} attributes left in the instance __dict__")


def check_run_asgi_copy() -> None:
    """uvicorn's WebSocketsSansIOProtocol.run_asgi reads, line for line, as the copy in
    DetachableProtocol.run_asgi but for its last condition (a detached connection is not
    closed when the app returns): a changed run_asgi has to be copied again."""
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    from gateway.wire.detach import DetachableProtocol

    def body(func: Any) -> list[str]:
        lines = [line.strip() for line in inspect.getsource(func).splitlines()[1:]]
        return [line.split("  #")[0] for line in lines if line and not line.startswith("#")]

    ours = [
        "if self.close_timer is None:" if "not self._detached" in line else line
        for line in body(DetachableProtocol.run_asgi)
    ]
    theirs = [line.split("  #")[0] for line in body(WebSocketsSansIOProtocol.run_asgi)]
    require(ours == theirs, "uvicorn's run_asgi changed: copy it again (gateway/wire/detach.py)")


async def detached_session() -> dict[str, Any]:
    """An app that detaches and returns at once, then reads the client's frame when woken."""
    from gateway.wire.detach import DETACH

    facts: dict[str, Any] = {"received": [], "woken": 0}
    handles: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})

        def woken() -> None:
            facts["woken"] += 1
            handles["reader"] = asyncio.ensure_future(read(receive))

        handles["empty"], handles["end"] = scope["extensions"][DETACH](woken)

    async def read(receive: Any) -> None:
        while not handles["empty"]():
            facts["received"].append(await receive())

    config = probe_config(app)
    state = ServerState()
    protocol = probe_protocol(config, state)
    peer, server = await connect(protocol, HANDSHAKE)
    await read_peer(peer, lambda d: b"\r\n\r\n" in d, "the 101 response")
    await until(lambda: not state.tasks, "the app to return")
    facts["open_after_return"] = not protocol.transport.is_closing()
    peer.sendall(CLIENT_HI)
    await until(lambda: facts["received"], "the woken reader")
    handles["end"]()
    facts["closed_by_end"] = protocol.transport.is_closing()
    peer.close()
    server.close()
    return facts


def check_detach() -> None:
    """Served by our protocol on a real socket under uvloop, an app that calls
    ``DETACH`` and returns leaves the connection open; a client frame then wakes it and
    reaches it through the same receive(); its end() closes the transport."""
    facts = in_fresh_loop(detached_session, use_uvloop=True)
    require(facts["open_after_return"], "the connection closed when the app returned")
    require(facts["woken"] == 1, f"woken {facts['woken']} times for one frame")
    hi = {"type": "websocket.receive", "text": "hi"}
    require(facts["received"] == [hi], f"received {facts['received']}")
    require(facts["closed_by_end"], "end() left the transport open")


def check_frame_parser() -> None:
    """After the accept, the connection parses with websockets' ``Protocol.parse`` alone
    (ServerProtocol.parse, which keeps the handshake request, is dropped at a frame
    boundary), and a client's text frame is still parsed."""
    from websockets.protocol import Protocol

    facts = session()
    require(facts["frame_parser"] is Protocol.parse.__code__, "handshake parser kept")
    require(facts["received"].get("text") == "hi", f"received {facts['received']}")


def check_connection_state() -> None:
    """websockets' ServerProtocol, as uvicorn drives it, is State.OPEN with no extensions
    after the accept (per-message deflate off) and leaves OPEN once close is sent."""
    facts = session()
    require(facts["open"], "not State.OPEN without extensions after the accept")
    require(facts["closed"][1] is False, "still State.OPEN after websocket.close")


def check_text_frame() -> None:
    """Frame(Opcode.TEXT, data).serialize(mask=False) equals RFC 6455's unmasked text
    frame, built here by hand, for the 7-bit, 16-bit and 64-bit length forms."""
    for size, header in ((5, b"\x81\x05"), (200, b"\x81\x7e\x00\xc8")):
        data = b"x" * size
        require(Frame(Opcode.TEXT, data).serialize(mask=False) == header + data, f"{size} B")
    big = b"y" * 70_000
    expected = b"\x81\x7f" + (70_000).to_bytes(8, "big") + big
    require(Frame(Opcode.TEXT, big).serialize(mask=False) == expected, "64-bit length form")
