"""python-engineio: sockets, their queue and writer, the driver table, payload limits."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from typing import Any

import engineio
from engineio import async_socket as eio_socket
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio import payload as eio_payload
from engineio.async_drivers import asgi as eio_asgi

from gateway.wire.seams import ended, in_fresh_loop, require, until


def direct_engine() -> Any:
    from gateway.wire.direct import DirectEngineIOServer

    return DirectEngineIOServer(async_mode="asgi", logger=False, monitor_clients=False)


def message(text: str) -> Any:
    return eio_packet.Packet(eio_packet.MESSAGE, text)


def check_create_queue() -> None:
    """A real AsyncSocket built on a real DirectEngineIOServer holds a DirectQueue; stock
    create_queue() returns an asyncio.Queue (what DirectQueue extends)."""
    from gateway.wire.direct import DirectQueue

    stock = engineio.AsyncServer(async_mode="asgi", logger=False, monitor_clients=False)
    require(isinstance(stock.create_queue(), asyncio.Queue), "create_queue() is no asyncio.Queue")
    sock = eio_socket.AsyncSocket(direct_engine(), "compat")
    require(isinstance(sock.queue, DirectQueue), f"socket.queue is {type(sock.queue).__name__}")


def check_driver_table() -> None:
    """A real AsyncServer's ``_async`` is a dict whose "websocket" entry is the ASGI
    WebSocket driver; DirectEngineIOServer swaps that entry and keeps the others."""
    from gateway.wire.direct import DirectEngineIOServer

    stock = engineio.AsyncServer(async_mode="asgi", logger=False, monitor_clients=False)
    table = getattr(stock, "_async", None)
    require(isinstance(table, dict), "AsyncServer has no _async driver table")
    assert isinstance(table, dict)
    require(
        table.get("websocket") is eio_asgi.WebSocket, "_async['websocket'] is not asgi.WebSocket"
    )
    ours = direct_engine()._async
    require(ours["websocket"] is not eio_asgi.WebSocket, "the websocket driver was not replaced")
    require(isinstance(ours["websocket"], type), "our driver is not a class")
    require(issubclass(ours["websocket"], eio_asgi.WebSocket), "driver no longer subclassable")
    require(set(ours) == set(table), "DirectEngineIOServer changed the table's keys")
    require(DirectEngineIOServer.__mro__[1] is engineio.AsyncServer, "unexpected base class")


def check_driver_handler() -> None:
    """A real socket upgraded through handle_get_request() builds the driver as
    ``_async['websocket'](socket._websocket_handler, server)`` and awaits it with the environ."""

    class Recording(eio_asgi.WebSocket):  # type: ignore[misc]
        seen: list[Any] = []

        async def __call__(self, environ: dict[str, Any]) -> str:
            Recording.seen.append((self.handler, environ))
            return ""

    async def probe() -> None:
        server = engineio.AsyncServer(async_mode="asgi", logger=False, monitor_clients=False)
        server._async = {**server._async, "websocket": Recording}
        sock = eio_socket.AsyncSocket(server, "compat")
        sock.connected = True
        environ = {"HTTP_CONNECTION": "Upgrade", "HTTP_UPGRADE": "websocket"}
        await sock.handle_get_request(environ)
        require(Recording.seen, "the websocket driver was not used for the upgrade")
        handler, seen_environ = Recording.seen[0]
        require(getattr(handler, "__self__", None) is sock, "driver handler is not a socket method")
        require(seen_environ is environ, "driver called without the request's environ")

    in_fresh_loop(probe)


async def websocket_session(upgrade: bool = True) -> dict[str, Any]:
    """Drive our WebSocket driver on a real DirectEngineIOServer socket through in-memory
    ASGI receive/send; report what happened. ``upgrade``: a long-polling client upgrading
    (engine.io's handler and writer task); else a WebSocket-only client (serve_websocket)."""
    from gateway.wire.direct import DIRECT_SEND
    from gateway.wire.environ import trim_environ

    server = direct_engine()
    sock = eio_socket.AsyncSocket(server, "compat")
    sent: list[dict[str, Any]] = []
    frames: list[bytes] = []
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    if upgrade:  # the client's side of engine.io's upgrade: PING "probe", then UPGRADE
        sock.connected = True
        for text in ("2probe", "5"):
            inbox.put_nowait({"type": "websocket.receive", "text": text})

    async def send(event: dict[str, Any]) -> None:
        sent.append(event)

    def write(frame: bytes, now: bool = True) -> bool:
        frames.append(frame)
        return True

    environ = {
        "asgi.receive": inbox.get,
        "asgi.send": send,
        "asgi.scope": {"type": "websocket", "extensions": {DIRECT_SEND: write}},
    }
    driver = server._async["websocket"](sock._websocket_handler, server)
    session = asyncio.ensure_future(driver(environ))
    await until(lambda: sock.upgraded or session.done(), "the WebSocket to start")
    if session.done():
        session.result()  # raises what ended the driver early
    trim_environ(environ)  # what the Socket.IO connect handler does once the driver runs
    await until(lambda: not sock.queue._held, "the writer to take what was queued")
    facts: dict[str, Any] = {"upgraded": sock.upgraded, "bound": sock.queue._socket is sock}
    before = len(frames)
    sock.queue.put_nowait(message("direct"))
    facts["direct_frames"] = len(frames) - before
    sock.queue.put_nowait(None)
    await until(lambda: sent[-1]["type"] == "websocket.close", "the writer to close")
    # put_nowait: the probe's own queue must not hang on a changed Queue.put (a check of its own)
    inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    facts["result"] = await ended(session, "the driver to end after websocket.disconnect")
    facts["closed"] = sock.closed
    facts["sent"] = [event["type"] for event in sent]
    return facts


def check_writer_binding() -> None:
    """Our driver, run on a real socket of a client upgrading from long-polling (engine.io's
    own handler), binds the socket's queue, so a MESSAGE put on the queue is written
    directly (not through the writer)."""
    facts = in_fresh_loop(websocket_session)
    require(facts["upgraded"], "socket not marked upgraded when the WebSocket starts")
    require(facts["bound"], "the driver's handler did not lead to the socket's queue")
    require(facts["direct_frames"] == 1, "a MESSAGE was not written directly")


def check_writer_end() -> None:
    """In the same session, a None put on the queue makes engine.io's writer close the
    WebSocket (close_transport, slow-client drop), and the driver never reads the environ
    again after it started (trim_environ)."""
    facts = in_fresh_loop(websocket_session)
    sent = facts["sent"]
    require(sent[0] == "websocket.accept" and sent[-1] == "websocket.close", f"sent {sent}")
    require(sent.count("websocket.close") == 1, f"sent {sent}")
    require(facts["result"] == "" and facts["closed"], "session did not end cleanly")


def check_poll_drain() -> None:
    """A real AsyncSocket's poll() over a DirectQueue holding more than a batch returns
    exactly POLL_BATCH_MAX packets, then the rest (it takes one item with get(), then
    get_nowait() until QueueEmpty); a None gives an empty payload."""
    from gateway.wire.direct import POLL_BATCH_MAX

    async def probe() -> list[int]:
        sock = eio_socket.AsyncSocket(direct_engine(), "compat")
        for n in range(POLL_BATCH_MAX + 3):
            sock.queue.put_nowait(message(str(n)))
        sizes = [len(await sock.poll())]
        sizes.append(len(await sock.poll()) if not sock.queue.empty() else 0)
        sock.queue.put_nowait(None)
        return [*sizes, len(await sock.poll())]

    sizes = in_fresh_loop(probe)
    require(sizes == [POLL_BATCH_MAX, 3, 0], f"poll() returned batches of {sizes}")


def check_socket_state() -> None:
    """A really constructed AsyncSocket has the flags and fields the fan-out reads."""
    server = direct_engine()
    sock = eio_socket.AsyncSocket(server, "compat")
    for flag in ("connected", "upgrading", "upgraded", "closing", "closed"):
        require(getattr(sock, flag, None) is False, f"socket.{flag} is not a False flag")
    require(isinstance(sock.last_ping, float), "socket.last_ping is not a time.time() float")
    require(sock.server is server and sock.sid == "compat", "socket.server/sid missing")
    require(isinstance(server.sockets, dict), "AsyncServer.sockets is not a dict")
    require(isinstance(server.ping_timeout, int | float), "ping_timeout is not seconds")


def check_socket_close() -> None:
    """A real socket's close(wait=False, abort=True, reason=server.reason.TRANSPORT_ERROR)
    marks it closed, reports that reason to the disconnect handler and queues no CLOSE."""

    async def probe() -> tuple[bool, list[Any], int]:
        server = direct_engine()
        reasons: list[Any] = []

        async def on_disconnect(sid: str, reason: Any) -> None:
            reasons.append(reason)

        server.on("disconnect", on_disconnect)
        sock = eio_socket.AsyncSocket(server, "compat")
        await sock.close(wait=False, abort=True, reason=server.reason.TRANSPORT_ERROR)
        return sock.closed, reasons, sock.queue.qsize()

    closed, reasons, queued = in_fresh_loop(probe)
    require(closed and queued == 0, "close(abort=True) left the socket open or queued a CLOSE")
    require(reasons == [engineio.AsyncServer.reason.TRANSPORT_ERROR], f"reasons {reasons}")


def check_silent_client_send() -> None:
    """A real socket whose last_ping is older than ping_timeout is closed by its own
    send() (what the fan-out leaves to engine.io for silent clients)."""

    async def probe() -> bool:
        sock = eio_socket.AsyncSocket(direct_engine(), "compat")
        sock.last_ping = time.time() - sock.server.ping_timeout - 1
        await sock.send(message("late"))
        return bool(sock.closed)

    require(in_fresh_loop(probe), "send() to a silent client did not close it")


def check_payload_limit() -> None:
    """Payload.max_decode_packets is an int, and the real decoder (the official Python
    client's) accepts that many packets in one payload and refuses one more."""
    limit = eio_payload.Payload.max_decode_packets
    require(isinstance(limit, int) and limit > 0, "Payload.max_decode_packets is not an int")
    body = "\x1e".join(message(str(n)).encode() for n in range(limit))
    require(len(eio_payload.Payload(encoded_payload=body).packets) == limit, "decode failed")
    try:
        eio_payload.Payload(encoded_payload=body + "\x1e" + message("x").encode())
    except ValueError:
        return
    raise AssertionError("a payload over max_decode_packets is decoded: the limit moved")


def check_packet() -> None:
    """A real engine.io Packet(MESSAGE, text) encodes as "4" + text, with packet_type and
    binary fields; a bytes packet is binary (the fan-out leaves those to the writer)."""
    pkt = message("2[]")
    require(pkt.encode() == "42[]" and pkt.packet_type == eio_packet.MESSAGE, "MESSAGE encoding")
    require(pkt.binary is False, "text packet reported as binary")
    require(eio_packet.Packet(eio_packet.MESSAGE, b"\x01").binary is True, "binary flag")


def check_translate_request() -> None:
    """engine.io's real ASGI translate_request() keeps the ASGI scope as
    environ['asgi.scope'], and handle_request is a coroutine (the guard's entry point)."""

    async def probe() -> bool:
        scope = {"type": "websocket", "path": "/socket.io/", "headers": [], "query_string": b""}

        async def receive() -> dict[str, Any]:
            return {"type": "websocket.connect"}

        async def send(_event: dict[str, Any]) -> None:
            return None

        environ = await eio_asgi.translate_request(scope, receive, send)
        return environ.get("asgi.scope") is scope

    require(in_fresh_loop(probe), "environ['asgi.scope'] is not the ASGI scope")
    handle = direct_engine().handle_request
    require(inspect.iscoroutinefunction(handle), "AsyncServer.handle_request is not a coroutine")


def check_held_poll() -> None:
    """(Workaround) On a stock AsyncServer, a polling socket closed with abort=True (a
    client's CLOSE) leaves its pending poll() waiting, which is why release_poll() answers
    it; if poll() returns by itself now, release_poll() is no longer needed."""

    async def probe() -> bool:
        server = engineio.AsyncServer(async_mode="asgi", logger=False, monitor_clients=False)
        sock = eio_socket.AsyncSocket(server, "compat")
        held = asyncio.ensure_future(sock.poll())
        await asyncio.sleep(0.01)
        await sock.close(wait=False, abort=True, reason=server.reason.CLIENT_DISCONNECT)
        await asyncio.sleep(0.05)
        still_waiting = not held.done()
        held.cancel()
        with contextlib.suppress(eio_exceptions.QueueEmpty, asyncio.CancelledError):
            await held  # poll() turns its cancellation into QueueEmpty
        return still_waiting

    require(in_fresh_loop(probe), "a closed socket's poll() returned without release_poll()")


def check_deep_json() -> None:
    """(Workaround) engine.io's real packet decoder, with its stock json module, lets a
    RecursionError out on a deeply nested frame (it catches ValueError only), which is why
    wire/frames.py decodes every client frame first; if not, that guard is belt and braces."""

    class StockJson(eio_packet.Packet):  # type: ignore[misc]
        json = engineio.json  # the gateway's orjson raises ValueError here instead

    try:
        StockJson(encoded_packet="4" + "[" * 100_000)
    except RecursionError:
        return
    except Exception as exc:
        raise AssertionError(f"deep JSON now raises {type(exc).__name__}") from None
    raise AssertionError("deep JSON no longer raises")
