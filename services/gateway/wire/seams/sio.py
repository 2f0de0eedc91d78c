"""python-socketio: the Engine.IO hooks, the manager's rooms, packets and the kept environ."""

from __future__ import annotations

import inspect
from typing import Any

import socketio
from engineio import async_socket as eio_socket
from socketio import packet as sio_packet

from gateway.wire.seams import in_fresh_loop, require


def direct_sio() -> Any:
    from gateway.wire.direct import DirectSocketIOServer

    return DirectSocketIOServer(async_mode="asgi", logger=False, engineio_logger=False)


def check_engineio_class() -> None:
    """A real DirectSocketIOServer's ``eio`` is a DirectEngineIOServer: python-socketio
    builds its Engine.IO server through ``_engineio_server_class()``."""
    from gateway.wire.direct import DirectEngineIOServer

    eio = direct_sio().eio
    require(isinstance(eio, DirectEngineIOServer), f"sio.eio is {type(eio).__name__}")


def check_disconnect_hook() -> None:
    """A real DirectSocketIOServer registers its own ``_handle_eio_disconnect`` (signature
    ``(eio_sid, reason)``) as Engine.IO's disconnect handler."""
    from gateway.wire.direct import DirectSocketIOServer

    params = list(inspect.signature(socketio.AsyncServer._handle_eio_disconnect).parameters)
    require(params == ["self", "eio_sid", "reason"], f"_handle_eio_disconnect{params}")
    handler = direct_sio().eio.handlers.get("disconnect")
    func = getattr(handler, "__func__", None)
    require(func is DirectSocketIOServer._handle_eio_disconnect, "override is not the handler")


def check_connect_environ() -> None:
    """Through a real server's Engine.IO connect and a Socket.IO CONNECT packet, the
    connect handler gets the very environ dict python-socketio keeps (trim_environ
    shrinks what it holds)."""

    async def probe() -> bool:
        sio = direct_sio()
        seen: list[Any] = []

        async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
            seen.append(environ)

        sio.on("connect", connect)
        sio.eio.sockets["e1"] = eio_socket.AsyncSocket(sio.eio, "e1")
        environ = {"PATH_INFO": "/socket.io/"}
        await sio._handle_eio_connect("e1", environ)
        await sio._handle_eio_message("e1", "0")
        return len(seen) == 1 and seen[0] is environ and sio.environ.get("e1") is environ

    require(in_fresh_loop(probe), "the connect handler's environ is not the one kept")


def check_manager_emit_signature() -> None:
    """AsyncRedisManager.emit has the parameters FanoutManager.emit overrides, in order."""
    expected = ["self", "event", "data", "namespace", "room", "skip_sid", "callback", "to"]
    params = inspect.signature(socketio.AsyncRedisManager.emit).parameters
    names = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    require(names == expected, f"emit{names}")


def check_manager_rooms() -> None:
    """A real FanoutManager (an AsyncRedisManager, not connected): ``rooms[ns]`` holds the
    namespace, basic_enter_room() adds a client, get_participants() yields
    (sid, eio_sid) pairs, eio_sid_from_sid() maps back, ``server`` is the Socket.IO server."""
    from gateway.wire.manager import FanoutManager

    manager = FanoutManager(
        "redis://127.0.0.1:1",
        queue_max=1,
        on_slow_client=lambda: None,
        on_delivered=lambda direct, queued: None,
    )
    sio = socketio.AsyncServer(client_manager=manager, async_mode="asgi", logger=False)
    manager.basic_enter_room("s1", "/ns", None, eio_sid="e1")
    manager.basic_enter_room("s1", "/ns", "room")
    require(manager.server is sio and "/ns" in manager.rooms, "manager.server/rooms")
    for room in (None, "room"):
        got = list(manager.get_participants("/ns", room))
        require(got == [("s1", "e1")], f"get_participants(ns, {room!r}) gave {got}")
    require(manager.eio_sid_from_sid("s1", "/ns") == "e1", "eio_sid_from_sid")


def check_room_names() -> None:
    """On a real server with a FanoutManager, room_names(sio, ns) lists the namespace's room
    (None), each client's sid room and the rooms clients entered; a room whose last client
    left (basic_leave_room) is no longer listed, and another namespace's rooms never are;
    ``rooms[ns][room]`` maps each member's sid to its eio_sid (emit_batch's latest_only)."""
    from gateway.wire.manager import FanoutManager
    from gateway.wire.rooms import room_names

    manager = FanoutManager(
        "redis://127.0.0.1:1",
        queue_max=1,
        on_slow_client=lambda: None,
        on_delivered=lambda direct, queued: None,
    )
    sio = socketio.AsyncServer(client_manager=manager, async_mode="asgi", logger=False)
    for sid, eio_sid in (("s1", "e1"), ("s2", "e2")):
        manager.basic_enter_room(sid, "/ns", None, eio_sid=eio_sid)
        manager.basic_enter_room(sid, "/ns", sid)
        manager.basic_enter_room(sid, "/ns", "f:a")
    manager.basic_enter_room("s1", "/ns", "f:b")
    manager.basic_enter_room("s3", "/other", "f:c", eio_sid="e3")
    listed = set(room_names(sio, "/ns"))
    require(listed == {None, "s1", "s2", "f:a", "f:b"}, f"room_names gave {listed}")
    members = dict(manager.rooms["/ns"]["f:a"])
    require(members == {"s1": "e1", "s2": "e2"}, f"rooms[ns][room] is {members}")
    manager.basic_leave_room("s1", "/ns", "f:b")
    manager.basic_leave_room("s1", "/ns", "f:a")
    listed = set(room_names(sio, "/ns"))
    require(listed == {None, "s1", "s2", "f:a"}, f"after leaving, room_names gave {listed}")
    require(set(room_names(sio, "/none")) == set(), "a namespace without clients lists rooms")


def check_packet_class() -> None:
    """A real server's ``packet_class(EVENT, namespace=, data=).encode()`` is one str, or a
    list (packet + attachments) when the data holds bytes."""
    cls = direct_sio().packet_class
    text = cls(sio_packet.EVENT, namespace="/ns", data=["e", {"a": 1}]).encode()
    require(isinstance(text, str) and text.startswith('2/ns,["e"'), f"encoded {text!r}")
    binary = cls(sio_packet.EVENT, namespace="/ns", data=["e", b"\x01"]).encode()
    require(isinstance(binary, list), "binary data not encoded as packet + attachments")


def check_packet_decoder() -> None:
    """The real Socket.IO decoder sets packet_type/data for client packets and raises on
    garbage (wire/frames.py counts a raise as malformed); packet type numbers as in v5."""
    numbers = {"CONNECT": 0, "DISCONNECT": 1, "EVENT": 2, "ACK": 3, "BINARY_EVENT": 5}
    for name, number in {**numbers, "BINARY_ACK": 6}.items():
        require(getattr(sio_packet, name, None) == number, f"socketio.packet.{name}")
    pkt = sio_packet.Packet(encoded_packet='2["e",1]')
    require((pkt.packet_type, pkt.data) == (sio_packet.EVENT, ["e", 1]), "EVENT decode")
    for garbage in ('2["e",', "2" + "9" * 200):
        try:
            sio_packet.Packet(encoded_packet=garbage)
        except Exception:
            continue
        raise AssertionError(f"decoder accepted {garbage[:12]!r}")
