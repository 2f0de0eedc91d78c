"""The library-seam inventory: every assumption holds on the installed versions, and each
check fails, with a one-line message naming library, version and assumption, when the
library changes under it.

A "change" is made by monkeypatching the real library class or module the way an upstream
release could change it (a renamed attribute, a different signature, a method that no longer
goes through the hook we use); the check then runs against the real, patched objects.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import engineio
import pytest
import socketio
import uvloop
from engineio import async_socket, base_socket
from engineio import packet as eio_packet
from engineio import payload as eio_payload
from engineio.async_drivers import asgi as eio_asgi
from socketio import base_manager, base_server
from socketio import packet as sio_packet
from socketio.async_pubsub_manager import AsyncPubSubManager
from uvicorn import config as uvicorn_config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets import protocol as ws_protocol
from websockets.frames import Frame
from websockets.protocol import OPEN

from gateway.app import Gateway
from gateway.settings import GatewaySettings
from gateway.wire import compat, seams
from gateway.wire.compat import ASSUMPTIONS, Assumption, IncompatibleLibraryError

Patch = pytest.MonkeyPatch
BY_CHECK = {a.check.__name__: a for a in ASSUMPTIONS}


def wrap(monkeypatch: Patch, owner: Any, name: str, after: Callable[..., Any]) -> None:
    """Replace ``owner.name`` with the original followed by ``after(self, result, *args)``."""
    original = getattr(owner, name)

    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        return after(self, original(self, *args, **kwargs), *args)

    monkeypatch.setattr(owner, name, patched)


def swap(monkeypatch: Patch, owner: Any, name: str, new: Any) -> None:
    monkeypatch.setattr(owner, name, new)


class TransportView:
    """A transport as a changed uvloop could present it: same object underneath, but its
    socket, buffer size and closing state no longer tell the truth."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self._other = socket.socketpair()  # some other connection

    def close(self) -> None:
        self._transport.close()
        for sock in self._other:
            sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            return self._other[0]
        return self._transport.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False


def changed_uvloop(monkeypatch: Patch) -> None:
    class Loop(uvloop.Loop):  # type: ignore[misc, name-defined]
        async def create_server(self, factory: Any, *args: Any, **kwargs: Any) -> Any:
            def viewed() -> Any:
                protocol = factory()
                made = protocol.connection_made
                protocol.connection_made = lambda t: made(TransportView(t))
                return protocol

            return await super().create_server(viewed, *args, **kwargs)

    monkeypatch.setattr(uvloop, "new_event_loop", Loop)


def upgrade_through_a_lambda(monkeypatch: Patch) -> None:
    async def upgrade(self: Any, environ: Any) -> Any:
        handler = self._websocket_handler
        ws = self.server._async["websocket"](lambda w: handler(w), self.server)  # noqa: PLW0108
        return await ws(environ)

    swap(monkeypatch, async_socket.AsyncSocket, "_upgrade_websocket", upgrade)


def driver_renames_handler(monkeypatch: Patch) -> None:
    def init(self: Any, handler: Any, server: Any) -> None:
        self._handler, self.asgi_receive, self.asgi_send = handler, None, None

    swap(monkeypatch, eio_asgi.WebSocket, "__init__", init)


def poll_never_ends(monkeypatch: Patch) -> None:
    original = async_socket.AsyncSocket.poll

    async def poll(self: Any) -> Any:
        return await original(self) or [eio_packet.Packet(eio_packet.NOOP)]

    swap(monkeypatch, async_socket.AsyncSocket, "poll", poll)


def poll_drains_everything(monkeypatch: Patch) -> None:
    async def poll(self: Any) -> Any:
        packets = [await self.queue.get()]
        while not self.queue.empty():
            packets.append(asyncio.Queue.get_nowait(self.queue))
        return [p for p in packets if p is not None]

    swap(monkeypatch, async_socket.AsyncSocket, "poll", poll)


def close_without_reason(monkeypatch: Patch) -> None:
    async def close(self: Any, wait: bool = True, abort: bool = False) -> None:
        self.closed = True

    swap(monkeypatch, async_socket.AsyncSocket, "close", close)


def close_answers_the_poll(monkeypatch: Patch) -> None:
    original = async_socket.AsyncSocket.close

    async def close(self: Any, *args: Any, **kwargs: Any) -> None:
        await original(self, *args, **kwargs)
        self.queue.put_nowait(None)

    swap(monkeypatch, async_socket.AsyncSocket, "close", close)


def no_ping_timeout(monkeypatch: Patch) -> None:
    async def alive(self: Any) -> bool:
        return True

    swap(monkeypatch, async_socket.AsyncSocket, "check_ping_timeout", alive)


def unlimited_payload(monkeypatch: Patch) -> None:
    def decode(self: Any, encoded: str) -> None:
        self.packets = [eio_packet.Packet(encoded_packet=p) for p in encoded.split("\x1e")]

    swap(monkeypatch, eio_payload.Payload, "decode", decode)


def deep_json_caught(monkeypatch: Patch) -> None:
    original = eio_packet.Packet.decode

    def decode(self: Any, encoded: Any) -> None:
        try:
            original(self, encoded)
        except RecursionError:
            self.packet_type, self.data = eio_packet.MESSAGE, encoded[1:]

    swap(monkeypatch, eio_packet.Packet, "decode", decode)


def translate_without_scope(monkeypatch: Patch) -> None:
    original = eio_asgi.translate_request

    async def translate(*args: Any) -> Any:
        environ = await original(*args)
        environ.pop("asgi.scope", None)
        return environ

    swap(monkeypatch, eio_asgi, "translate_request", translate)


def stock_engine_built(monkeypatch: Patch) -> None:
    def after(self: Any, result: Any, *args: Any) -> None:
        self.eio = engineio.AsyncServer(async_mode="asgi")

    wrap(monkeypatch, base_server.BaseServer, "__init__", after)


def disconnect_hook_renamed(monkeypatch: Patch) -> None:
    async def hook(self: Any, sid: str) -> None: ...

    swap(monkeypatch, socketio.AsyncServer, "_handle_eio_disconnect", hook)


def environ_copied(monkeypatch: Patch) -> None:
    async def on_connect(self: Any, eio_sid: str, environ: dict[str, Any]) -> None:
        self.environ[eio_sid] = dict(environ)

    swap(monkeypatch, socketio.AsyncServer, "_handle_eio_connect", on_connect)


def emit_reordered(monkeypatch: Patch) -> None:
    async def emit(self: Any, event: str, data: Any, room: Any = None, **kwargs: Any) -> None: ...

    swap(monkeypatch, AsyncPubSubManager, "emit", emit)


def participants_without_eio_sid(monkeypatch: Patch) -> None:
    original = base_manager.BaseManager.get_participants

    def participants(self: Any, namespace: str, room: Any) -> Any:
        return (sid for sid, _ in original(self, namespace, room))

    swap(monkeypatch, base_manager.BaseManager, "get_participants", participants)


def emptied_rooms_kept(monkeypatch: Patch) -> None:
    """A release that keeps a room once its last client left (bars would target it forever)."""

    def leave(self: Any, sid: str, namespace: str, room: Any) -> None:
        self.rooms.get(namespace, {}).get(room, {}).pop(sid, None)

    swap(monkeypatch, base_manager.BaseManager, "basic_leave_room", leave)


def decoder_swallows_errors(monkeypatch: Patch) -> None:
    original = sio_packet.Packet.decode

    def decode(self: Any, encoded: str) -> int:
        try:
            return int(original(self, encoded))
        except Exception:
            return 0

    swap(monkeypatch, sio_packet.Packet, "decode", decode)


def load_ignores_ws_class(monkeypatch: Patch) -> None:
    def after(self: Any, result: Any, *args: Any) -> None:
        self.ws_protocol_class = WebSocketsSansIOProtocol

    wrap(monkeypatch, uvicorn_config.Config, "load", after)


def scope_made_later(monkeypatch: Patch) -> None:
    def after(self: Any, result: Any, *args: Any) -> None:
        self.__dict__.pop("scope", None)

    wrap(monkeypatch, WebSocketsSansIOProtocol, "handle_connect", after)


def response_read_again(monkeypatch: Patch) -> None:
    original = WebSocketsSansIOProtocol.send

    async def send(self: Any, message: Any) -> None:
        if message["type"] == "websocket.send":
            assert self.response.headers is not None  # reads it after the 101
        await original(self, message)

    swap(monkeypatch, WebSocketsSansIOProtocol, "send", send)


def state_as_a_name(monkeypatch: Patch) -> None:
    public = ws_protocol.Protocol.state  # a later release might expose the name instead
    state = property(lambda s: s._state.name if s._state is OPEN else s._state, public.fset)
    swap(monkeypatch, ws_protocol.Protocol, "state", state)


def text_hook_renamed(monkeypatch: Patch) -> None:
    def handle_text(self: Any, event: Any) -> None:  # calls a method of another name now
        self.curr_msg_data_type, self.frames = "text", [event.data]
        if event.fin:
            WebSocketsSansIOProtocol.send_receive_event_to_app(self)

    swap(monkeypatch, WebSocketsSansIOProtocol, "handle_text", handle_text)


def parser_hook_renamed(monkeypatch: Patch) -> None:
    def data_received(self: Any, data: bytes) -> None:
        self.conn.receive_data(data)
        if self.conn.parser_exc is not None:
            WebSocketsSansIOProtocol.handle_parser_exception(self)
            return
        self.handle_events()

    swap(monkeypatch, WebSocketsSansIOProtocol, "data_received", data_received)


def handshake_flag_renamed(monkeypatch: Patch) -> None:
    async def run_asgi(self: Any) -> None:
        await self.app(self.scope, self.receive, self.send)
        if not getattr(self, "handshake_done", False):
            self.logger.error("ASGI callable returned without completing handshake.")
        self.transport.close()

    swap(monkeypatch, WebSocketsSansIOProtocol, "run_asgi", run_asgi)


def refusal_not_marked_closed(monkeypatch: Patch) -> None:
    """run_asgi itself is our copy (check_run_asgi_copy): change the flag send() sets."""
    original = WebSocketsSansIOProtocol.send

    async def send(self: Any, message: Any) -> None:
        await original(self, message)
        if message["type"] == "websocket.http.response.body":
            self.close_sent = False

    swap(monkeypatch, WebSocketsSansIOProtocol, "send", send)


def connect_awaits_first(monkeypatch: Patch) -> None:
    original = engineio.AsyncServer._handle_connect

    async def handle_connect(self: Any, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        return await original(self, *args, **kwargs)

    swap(monkeypatch, engineio.AsyncServer, "_handle_connect", handle_connect)


def close_state_renamed(monkeypatch: Patch) -> None:
    original = async_socket.AsyncSocket.close

    async def close(self: Any, *args: Any, **kwargs: Any) -> None:
        await original(self, *args, **kwargs)
        self.closing = self.closed = False
        self.state = "closed"

    swap(monkeypatch, async_socket.AsyncSocket, "close", close)


def close_deferred(monkeypatch: Patch) -> None:
    original = async_socket.AsyncSocket.close

    async def close(self: Any, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        if wait:
            await original(self, wait, abort, reason)
            return
        self.server.start_background_task(original, self, False, abort, reason)

    swap(monkeypatch, async_socket.AsyncSocket, "close", close)


def routes_by_plain_prefix(monkeypatch: Patch) -> None:
    async def call(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if self.engineio_path is None or scope["path"].startswith(self.engineio_path):
            await self.engineio_server.handle_request(scope, receive, send)
        else:
            await self.other_asgi_app(scope, receive, send)

    swap(monkeypatch, engineio.ASGIApp, "__call__", call)


async def disconnect_without_ignore_queue(self: Any, sid: str, namespace: Any = None) -> None:
    raise AssertionError("not reached: the caller passes ignore_queue")


async def get_without_get_nowait(self: Any) -> Any:
    while self.empty():
        await asyncio.sleep(0.001)
    return self._get()


async def put_without_put_nowait(self: Any, item: Any) -> None:
    asyncio.Queue.put_nowait(self, item)


def receive_refuses_messages(monkeypatch: Patch) -> None:
    original = async_socket.AsyncSocket.receive

    async def receive(self: Any, pkt: Any) -> None:
        if pkt.packet_type == eio_packet.MESSAGE:
            raise engineio.exceptions.SocketIsClosedError()
        await original(self, pkt)

    swap(monkeypatch, async_socket.AsyncSocket, "receive", receive)


def ping_task_made_directly(monkeypatch: Patch) -> None:
    def schedule_ping(self: Any) -> None:
        if self.last_ping:
            self.last_ping = None
            self.ping_task = asyncio.ensure_future(self._send_ping())

    swap(monkeypatch, async_socket.AsyncSocket, "schedule_ping", schedule_ping)


def ping_without_last_ping(monkeypatch: Patch) -> None:
    async def send_ping(self: Any) -> None:
        await asyncio.sleep(self.server.ping_interval)
        if not self.closing and not self.closed:
            await self.send(eio_packet.Packet(eio_packet.PING))

    swap(monkeypatch, async_socket.AsyncSocket, "_send_ping", send_ping)


def queue_items_built_in_init(monkeypatch: Patch) -> None:
    def after(self: Any, result: Any, *args: Any) -> None:
        self._queue = collections.deque()

    wrap(monkeypatch, asyncio.Queue, "__init__", after)


def receive_marks_tasks_done(monkeypatch: Patch) -> None:
    async def receive(self: Any) -> Any:
        message = await self.queue.get()
        self.queue.task_done()
        return message

    swap(monkeypatch, WebSocketsSansIOProtocol, "receive", receive)


def frame_parser_kept_in_subclass(monkeypatch: Patch) -> None:
    def parse(self: Any) -> Any:
        while True:  # a frame parser that no longer lives in Protocol.parse
            yield

    swap(monkeypatch, ws_protocol.Protocol, "parse", parse)


async def receive_twice(self: Any) -> Any:
    """A receive that waits for a second message (a reader woken once sees one)."""
    first = await self.queue.get()
    if first["type"] == "websocket.receive":
        second = await self.queue.get()
        return {**first, "text": first["text"] + second.get("text", "")}
    return first


BREAKERS: dict[str, Callable[[Patch], None]] = {
    "check_create_queue": lambda mp: wrap(
        mp,
        base_socket.BaseSocket,
        "__init__",
        lambda s, r, *a: setattr(s, "queue", asyncio.Queue()),
    ),
    "check_driver_table": lambda mp: swap(
        mp, eio_asgi, "_async", {k: v for k, v in eio_asgi._async.items() if k != "websocket"}
    ),
    "check_driver_handler": upgrade_through_a_lambda,
    "check_writer_binding": driver_renames_handler,
    "check_writer_end": poll_never_ends,
    "check_poll_drain": poll_drains_everything,
    "check_socket_state": lambda mp: wrap(
        mp, base_socket.BaseSocket, "__init__", lambda s, r, *a: delattr(s, "upgrading")
    ),
    "check_socket_close": close_without_reason,
    "check_silent_client_send": no_ping_timeout,
    "check_payload_limit": unlimited_payload,
    "check_packet": lambda mp: swap(mp, eio_packet.Packet, "encode", lambda s, b64=False: "x"),
    "check_translate_request": translate_without_scope,
    "check_held_poll": close_answers_the_poll,
    "check_deep_json": deep_json_caught,
    "check_engineio_class": stock_engine_built,
    "check_disconnect_hook": disconnect_hook_renamed,
    "check_connect_environ": environ_copied,
    "check_manager_emit_signature": emit_reordered,
    "check_manager_rooms": participants_without_eio_sid,
    "check_room_names": emptied_rooms_kept,
    "check_packet_class": lambda mp: swap(mp, sio_packet.Packet, "encode", lambda s: ["2[]"]),
    "check_packet_decoder": decoder_swallows_errors,
    "check_ws_option": load_ignores_ws_class,
    "check_protocol_init": lambda mp: wrap(
        mp, WebSocketsSansIOProtocol, "__init__", lambda s, r, *a: delattr(s, "close_sent")
    ),
    "check_handle_connect": scope_made_later,
    "check_handshake_dropped": response_read_again,
    "check_send_gate": lambda mp: swap(
        mp, WebSocketsSansIOProtocol, "pause_writing", lambda s: None
    ),
    "check_connection_state": state_as_a_name,
    "check_text_frame": lambda mp: swap(
        mp, Frame, "serialize", lambda s, *, mask, extensions=None: b"\x81\x00"
    ),
    "check_socket_fd": changed_uvloop,
    "check_buffer_accounting": changed_uvloop,
    "check_write_deferred": changed_uvloop,
    "check_invalid_utf8": text_hook_renamed,
    "check_parser_exception": parser_hook_renamed,
    "check_refused_handshake": refusal_not_marked_closed,
    "check_session_before_await": connect_awaits_first,
    "check_session_counts": close_state_renamed,
    "check_end_connection": close_deferred,
    "check_engine_path_rule": routes_by_plain_prefix,
    "check_disconnect_ignore_queue": lambda mp: swap(
        mp, socketio.AsyncServer, "disconnect", disconnect_without_ignore_queue
    ),
    "check_queue_get": lambda mp: swap(mp, asyncio.Queue, "get", get_without_get_nowait),
    "check_queue_put": lambda mp: swap(mp, asyncio.Queue, "put", put_without_put_nowait),
    "check_lean_session": receive_refuses_messages,
    "check_ping_schedule": ping_task_made_directly,
    "check_send_ping": ping_without_last_ping,
    "check_lazy_queue": queue_items_built_in_init,
    "check_lean_protocol": receive_marks_tasks_done,
    "check_frame_parser": frame_parser_kept_in_subclass,
    "check_run_asgi_copy": handshake_flag_renamed,
    "check_detach": lambda mp: swap(mp, WebSocketsSansIOProtocol, "receive", receive_twice),
    "check_protocol_slots": lambda mp: mp.setattr(
        WebSocketsSansIOProtocol, "close_timeout", 10.0, raising=False
    ),
}


def names(assumptions: tuple[Assumption, ...]) -> list[str]:
    return [a.check.__name__ for a in assumptions]


@pytest.mark.parametrize("assumption", ASSUMPTIONS, ids=names(ASSUMPTIONS))
def test_each_assumption_holds_on_the_installed_versions(assumption: Assumption) -> None:
    assert compat.failure(assumption) is None
    assert assumption.how  # the "how checked" column of docs/compatibility.md


def test_start_up_verification_passes_and_is_done_once() -> None:
    compat.verify_library_seams()
    assert tuple(a for a in ASSUMPTIONS if a.blocking) in compat._verified


def test_every_assumption_has_a_way_to_break_it() -> None:
    assert sorted(BREAKERS) == sorted(BY_CHECK)
    assert len(BY_CHECK) == len(ASSUMPTIONS)  # one check per assumption


@pytest.mark.parametrize("check", sorted(BREAKERS))
def test_each_check_fails_when_its_library_changes(check: str, monkeypatch: Patch) -> None:
    assumption = BY_CHECK[check]
    monkeypatch.setattr(seams, "UNTIL_TIMEOUT_S", 0.3)  # a broken library may never answer
    BREAKERS[check](monkeypatch)
    assert compat.failure(assumption) is not None
    lines, ok = compat.report((assumption,))
    if not assumption.blocking:  # a workaround that may be unneeded: reported, not fatal
        assert ok and lines[0].startswith("CHANGED")
        compat.verify_library_seams((assumption,))
        return
    assert not ok and lines[0].startswith("FAILED")
    with pytest.raises(IncompatibleLibraryError) as raised:
        compat.verify_library_seams((assumption,))
    message = str(raised.value)
    version = compat.installed_version(assumption.library)
    assert message.startswith(f"{assumption.library} {version}: assumption '{assumption.name}'")
    assert "\n" not in message


def test_the_gateway_refuses_to_start_on_a_broken_assumption(monkeypatch: Patch) -> None:
    monkeypatch.setattr(compat, "_verified", set())
    unlimited_payload(monkeypatch)
    with pytest.raises(IncompatibleLibraryError, match=r"^python-engineio 4\.\S+: assumption"):
        Gateway(GatewaySettings())


async def put_never_waking_readers(self: Any, item: Any) -> None:
    self._put(item)
    self._unfinished_tasks += 1
    self._finished.clear()


def test_start_up_names_the_cause_at_once_when_queue_put_wakes_no_reader(
    monkeypatch: Patch,
) -> None:
    """Such a put stalls every engine.io probe; checked in dependency order, start-up names
    asyncio's assumption first and stops there (it took ~12 s before)."""
    monkeypatch.setattr(compat, "_verified", set())
    swap(monkeypatch, asyncio.Queue, "put", put_never_waking_readers)
    started = time.monotonic()
    with pytest.raises(IncompatibleLibraryError, match=r"^asyncio .*'Queue\.put\(\) adds through"):
        compat.verify_library_seams()
    assert time.monotonic() - started < seams.UNTIL_TIMEOUT_S


def test_the_websocket_probe_does_not_wait_on_queue_put(monkeypatch: Patch) -> None:
    swap(monkeypatch, asyncio.Queue, "put", put_never_waking_readers)
    for check in ("check_writer_binding", "check_writer_end"):
        started = time.monotonic()
        assert compat.failure(BY_CHECK[check]) is None
        assert time.monotonic() - started < 1.0, check  # was PROBE_TIMEOUT_S (5 s) each


def test_a_probe_that_swallows_its_deadline_counts_as_timed_out(monkeypatch: Patch) -> None:
    monkeypatch.setattr(seams, "PROBE_TIMEOUT_S", 0.2)

    async def probe() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "returned normally"  # what engine.io's WebSocket handler does
        return "slept"

    with pytest.raises(AssertionError, match="did not finish within"):
        seams.in_fresh_loop(probe)


def test_a_name_our_module_imports_is_reported_by_the_check_that_uses_it(
    monkeypatch: Patch,
) -> None:
    """Every check that imports gateway.wire.direct fails once the name it reads at import
    time is gone; the one to name is the check of that name."""
    monkeypatch.setattr(compat, "_verified", set())
    monkeypatch.delattr(eio_payload.Payload, "max_decode_packets")
    for module in ("gateway.wire.direct", "gateway.wire.queue"):  # imported afresh by the checks
        monkeypatch.delitem(sys.modules, module)
    with pytest.raises(IncompatibleLibraryError) as raised:
        compat.verify_library_seams()
    assert "'Payload.max_decode_packets is the client's decode limit'" in str(raised.value)
    assert "importing gateway.wire.queue" in str(compat.failure(BY_CHECK["check_create_queue"]))


def test_the_command_prints_each_assumption_and_fails_on_a_broken_one(
    monkeypatch: Patch, capsys: pytest.CaptureFixture[str]
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.wire.compat"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("\nok ") + done.stdout.startswith("ok ") == len(ASSUMPTIONS)
    unlimited_payload(monkeypatch)
    assert compat.main() == 1
    out = capsys.readouterr().out
    assert "FAILED   python-engineio" in out and "some assumptions FAILED" in out


def test_the_compatibility_doc_lists_every_assumption() -> None:
    text = (Path(__file__).parents[3] / "docs" / "compatibility.md").read_text()
    assert [a.name for a in ASSUMPTIONS if a.name not in text] == []
