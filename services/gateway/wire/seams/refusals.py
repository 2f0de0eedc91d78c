"""uvicorn's refusal paths as DirectSendProtocol overrides them: client messages it
assembles, frames it refuses, handshakes the app refuses; on a real TCP socket under uvloop."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

from uvicorn.server import ServerState
from websockets.frames import Close, Frame, Opcode

from gateway.wire import seams
from gateway.wire.seams import in_fresh_loop, require
from gateway.wire.seams.ws import HANDSHAKE, connect, probe_config, probe_protocol

MAX_SIZE = 64  # ws_max_size of the probe: a bigger client message is refused (1009)
SPLIT = "é"  # two UTF-8 bytes, sent in two frames: only the whole message decodes


class Recorded(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def read_to_end(peer: socket.socket) -> bytes:
    """What the server sends until it closes the connection (or UNTIL_TIMEOUT_S)."""
    data = bytearray()
    deadline = time.monotonic() + seams.UNTIL_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            chunk = peer.recv(65536)
        except BlockingIOError:
            await asyncio.sleep(0.001)
            continue
        if not chunk:
            break
        data += chunk
    return bytes(data)


def client_frame(opcode: Opcode, data: bytes, *, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin=fin).serialize(mask=True)


def close_code(data: bytes) -> int | None:
    """The code of the server's close frame at the end of ``data`` (after the 101)."""
    frames = data.partition(b"\r\n\r\n")[2]
    at = frames.rfind(b"\x88")
    return Close.parse(frames[at + 2 : at + 2 + frames[at + 1]]).code if at >= 0 else None


async def serve_one(path: str, messages: list[bytes]) -> dict[str, Any]:
    """One connection to ``path`` under DirectSendProtocol; the client sends ``messages``.

    The app accepts (``/accept``, reporting FRAME_REFUSED) or refuses the handshake with
    an HTTP 503 (``/refuse``). Returns what the app received and reported, what uvicorn
    logged at ERROR and what the client read."""
    from gateway.wire.direct import FRAME_REFUSED

    received: list[dict[str, Any]] = []
    refused: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()  # websocket.connect
        if scope["path"] == "/refuse":
            await send({"type": "websocket.http.response.start", "status": 503, "headers": []})
            await send({"type": "websocket.http.response.body", "body": b"full"})
            return
        scope["extensions"][FRAME_REFUSED] = refused.append
        await send({"type": "websocket.accept"})
        while (event := await receive())["type"] != "websocket.disconnect":
            received.append(event)
        received.append(event)

    config = probe_config(app)
    config.ws_max_size = MAX_SIZE
    state = ServerState()
    protocol = probe_protocol(config, state)
    recorded = Recorded()
    protocol.logger = logging.Logger("compat-probe")  # ours alone: records, prints nothing
    protocol.logger.addHandler(recorded)
    peer, server = await connect(protocol, HANDSHAKE.replace(b"/compat-probe", path.encode()))
    for message in messages:
        peer.sendall(message)
    data = await read_to_end(peer)
    if state.tasks:
        await asyncio.wait(state.tasks, timeout=seams.UNTIL_TIMEOUT_S)
    peer.close()
    server.close()
    return {
        "received": received,
        "refused": refused,
        "errors": recorded.messages,
        "status": data.partition(b"\r\n")[0],
        "close_code": close_code(data),
    }


async def invalid_utf8_session() -> dict[str, Any]:
    split = SPLIT.encode()
    return await serve_one(
        "/accept",
        [
            client_frame(Opcode.TEXT, split[:1], fin=False),
            client_frame(Opcode.CONT, split[1:]),
            client_frame(Opcode.TEXT, b"\xff"),
        ],
    )


def check_invalid_utf8() -> None:
    """Our send_receive_event_to_app() override sees each whole client message
    (curr_msg_data_type, frames): a text message split over two frames reaches the app
    whole; one that is not UTF-8 closes the connection with 1007 (the app gets
    websocket.disconnect 1007 and FRAME_REFUSED 1007), and uvicorn logs no ERROR."""
    facts = in_fresh_loop(invalid_utf8_session, use_uvloop=True)
    texts = [e.get("text") for e in facts["received"] if e["type"] == "websocket.receive"]
    require(texts == [SPLIT], f"the app received {texts}")
    require(facts["errors"] == [], f"uvicorn logged {facts['errors'][:1]}")
    require(facts["close_code"] == 1007, f"closed with {facts['close_code']}")
    last = facts["received"][-1]
    require((last["type"], last.get("code")) == ("websocket.disconnect", 1007), f"{last}")
    require(facts["refused"] == [1007], f"FRAME_REFUSED reported {facts['refused']}")


async def too_large_session() -> dict[str, Any]:
    return await serve_one("/accept", [client_frame(Opcode.TEXT, b"x" * (MAX_SIZE + 1))])


def check_parser_exception() -> None:
    """A client message over ws_max_size makes websockets refuse it and uvicorn call
    handle_parser_exception(), where our override reads ``conn.close_sent.code``: the
    connection closes with 1009 and FRAME_REFUSED reports 1009."""
    facts = in_fresh_loop(too_large_session, use_uvloop=True)
    require(facts["close_code"] == 1009, f"closed with {facts['close_code']}")
    require(facts["refused"] == [1009], f"FRAME_REFUSED reported {facts['refused']}")


def check_refused_handshake() -> None:
    """An app refusing the upgrade with websocket.http.response.start/body (the guard's
    503): the client gets that response, and once the body is sent (close_sent) our
    send() marks the handshake complete, so uvicorn logs no "returned without completing
    handshake" ERROR when the app returns."""
    facts = in_fresh_loop(lambda: serve_one("/refuse", []), use_uvloop=True)
    require(facts["status"].startswith(b"HTTP/1.1 503"), f"the client read {facts['status']!r}")
    require(facts["errors"] == [], f"uvicorn logged {facts['errors'][:1]}")
