"""Every assumption the gateway makes about a library's private details, checked by name.

``gateway/wire/`` uses details of python-socketio, python-engineio, uvicorn, websockets,
uvloop and ``asyncio.Queue`` that no release promises to keep. Each is an ``Assumption``
below whose check drives the real library objects (``gateway/wire/seams/``). The gateway
runs them at start-up (``verify_library_seams``) and refuses to start with one line naming
the library, its installed version and the assumption that broke; a unit test runs them
too (tests/unit/gateway/test_compat.py), and ``scripts/check-upgrades`` runs them against
the newest releases. ``python -m gateway.wire.compat`` prints each with ok/FAILED.

Workaround entries (``blocking=False``) check an upstream problem the gateway works around
(docs/upstream.md): when one stops holding, the workaround may be unneeded, which is worth
knowing but no reason to refuse to start.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from gateway.wire.seams import eio, engine, lean, loop, refusals, sio, ws


@dataclass(frozen=True)
class Assumption:
    library: str  # distribution name as pip knows it, or "asyncio" for the standard library
    name: str
    check: Callable[[], None]  # raises when the assumption no longer holds
    blocking: bool = True  # False: an upstream problem we work around (see module doc)

    @property
    def how(self) -> str:
        return " ".join((self.check.__doc__ or "").split())


WIRE_DIR = Path(__file__).parent


class IncompatibleLibraryError(RuntimeError):
    """An installed library no longer behaves as gateway/wire/ assumes."""


E, S, U, W, L, Q = (
    "python-engineio",
    "python-socketio",
    "uvicorn",
    "websockets",
    "uvloop",
    "asyncio",
)
ASSUMPTIONS: tuple[Assumption, ...] = (
    Assumption(E, "AsyncServer.create_queue() makes each socket's queue", eio.check_create_queue),
    Assumption(
        E, "AsyncServer._async driver table has a 'websocket' driver", eio.check_driver_table
    ),
    Assumption(
        E, "the driver gets the socket's bound _websocket_handler", eio.check_driver_handler
    ),
    Assumption(
        E, "the WebSocket driver binds the queue for direct writes", eio.check_writer_binding
    ),
    Assumption(E, "a None in the queue ends the writer and the WebSocket", eio.check_writer_end),
    Assumption(E, "AsyncSocket.poll() drains with get() then get_nowait()", eio.check_poll_drain),
    Assumption(
        E, "AsyncSocket flags, last_ping, server; AsyncServer.sockets", eio.check_socket_state
    ),
    Assumption(
        E, "AsyncSocket.close(wait=, abort=, reason=) and server.reason", eio.check_socket_close
    ),
    Assumption(
        E, "AsyncSocket.send() closes a client past ping_timeout", eio.check_silent_client_send
    ),
    Assumption(
        E, "Payload.max_decode_packets is the client's decode limit", eio.check_payload_limit
    ),
    Assumption(E, "Packet(MESSAGE, text): encode(), packet_type, binary", eio.check_packet),
    Assumption(
        E, "environ['asgi.scope'] is the ASGI scope; handle_request", eio.check_translate_request
    ),
    Assumption(
        E,
        "no await between reading a handshake and creating its session",
        engine.check_session_before_await,
    ),
    Assumption(
        E,
        "closed sessions stay in sockets, flagged; a WebSocket one leaves as it ends",
        engine.check_session_counts,
    ),
    Assumption(
        E,
        "end_connection: send(CLOSE) then None ends a WebSocket; close(wait=False)",
        engine.check_end_connection,
    ),
    Assumption(
        E,
        "ASGIApp hands paths under engineio_path to Engine.IO (routing_mismatches)",
        engine.check_engine_path_rule,
    ),
    Assumption(
        E,
        "a WebSocket-only session runs in the caller's task: receive(), close(abort, reason)",
        lean.check_lean_session,
    ),
    Assumption(
        E,
        "a PONG calls schedule_ping(), which starts _send_ping via start_background_task",
        lean.check_ping_schedule,
    ),
    Assumption(E, "_send_ping sets last_ping and sends PING unless closing", lean.check_send_ping),
    Assumption(E, "a closed polling socket's GET stays held", eio.check_held_poll, blocking=False),
    Assumption(
        E, "the packet decoder lets RecursionError out", eio.check_deep_json, blocking=False
    ),
    Assumption(S, "_engineio_server_class() picks the Engine.IO server", sio.check_engineio_class),
    Assumption(S, "_handle_eio_disconnect(eio_sid, reason) is the hook", sio.check_disconnect_hook),
    Assumption(
        S, "the connect handler gets the environ kept per client", sio.check_connect_environ
    ),
    Assumption(
        S, "AsyncManager.emit(event, data, namespace, room, ...)", sio.check_manager_emit_signature
    ),
    Assumption(
        S,
        "manager rooms, get_participants, basic_enter_room, eio_sid_from_sid",
        sio.check_manager_rooms,
    ),
    Assumption(
        S,
        "manager rooms[ns] is keyed by room name; an emptied room leaves it (room_names)",
        sio.check_room_names,
    ),
    Assumption(
        S, "server.packet_class(...).encode(): str, or list if binary", sio.check_packet_class
    ),
    Assumption(
        S, "socketio.packet decodes client packets, raises on garbage", sio.check_packet_decoder
    ),
    Assumption(
        S,
        "disconnect(sid, ignore_queue=True) ends the Socket.IO session only",
        engine.check_disconnect_ignore_queue,
    ),
    Assumption(U, "Config(ws=<class>) uses that WebSocket protocol", ws.check_ws_option),
    Assumption(
        U,
        "WebSocketsSansIOProtocol.__init__ state: writable, close_sent, ...",
        ws.check_protocol_init,
    ),
    Assumption(
        U, "handle_connect() sets scope/extensions on an accepted upgrade", ws.check_handle_connect
    ),
    Assumption(
        U, "request/response are not read after the 101 is sent", ws.check_handshake_dropped
    ),
    Assumption(
        U, "send(), writable, close_sent, disconnected gate direct writes", ws.check_send_gate
    ),
    Assumption(
        U,
        "send_receive_event_to_app() gets each whole message: curr_msg_data_type, frames",
        refusals.check_invalid_utf8,
    ),
    Assumption(
        U,
        "handle_parser_exception() ends a refused frame; conn.close_sent.code",
        refusals.check_parser_exception,
    ),
    Assumption(
        U,
        "a refused handshake is complete once its response body is sent",
        refusals.check_refused_handshake,
    ),
    Assumption(
        U,
        "the protocol uses put_nowait/get/empty of its queue, set/clear/wait of writable",
        ws.check_lean_protocol,
    ),
    Assumption(
        U,
        "the protocol's attributes are set by its __init__, none on a class",
        ws.check_protocol_slots,
    ),
    Assumption(
        U,
        "run_asgi is the one gateway/wire/detach.py copies, but for the final close",
        ws.check_run_asgi_copy,
    ),
    Assumption(U, "an app that detaches keeps its connection; messages wake it", ws.check_detach),
    Assumption(
        W, "ServerProtocol is State.OPEN, no extensions, after accept", ws.check_connection_state
    ),
    Assumption(W, "after the handshake, Protocol.parse alone parses frames", ws.check_frame_parser),
    Assumption(W, "Frame(Opcode.TEXT, ...).serialize(mask=False) is RFC 6455", ws.check_text_frame),
    Assumption(
        L, "transport socket fileno() is the connection; is_closing()", loop.check_socket_fd
    ),
    Assumption(
        L,
        "write() bytes are sent or counted by get_write_buffer_size()",
        loop.check_buffer_accounting,
    ),
    Assumption(
        L,
        "transport.write() waits for the end of the loop turn",
        loop.check_write_deferred,
        blocking=False,
    ),
    Assumption(Q, "Queue.get() takes its item through get_nowait()", loop.check_queue_get),
    Assumption(Q, "Queue.put() adds through put_nowait()", loop.check_queue_put),
    Assumption(
        Q,
        "Queue items via _init/_put/_get; waiters only in get()/put()/join()",
        lean.check_lazy_queue,
    ),
)


def installed_version(library: str) -> str:
    if library == "asyncio":
        return f"Python {platform.python_version()}"
    try:
        return metadata.version(library)
    except metadata.PackageNotFoundError:
        return "not installed"


def check_error(assumption: Assumption) -> Exception | None:
    """None when the assumption holds, else what its check raised."""
    try:
        assumption.check()
    except Exception as exc:
        return exc
    return None


def failure(assumption: Assumption) -> str | None:
    """None when the assumption holds, else what differs (one line)."""
    exc = check_error(assumption)
    return None if exc is None else explain(exc)


def explain(exc: Exception) -> str:
    detail = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, AssertionError):
        detail = f"{type(exc).__name__}: {detail}"
    module = raised_importing(exc)
    return detail if module is None else f"{detail}, importing gateway.wire.{module}"


def raised_importing(exc: BaseException) -> str | None:
    """The gateway/wire module (not a seam) whose import raised ``exc``, if any.

    Such a failure says only that our module reads a name the library lost at import
    time; the check that uses that name directly names the assumption better."""
    found, tb = None, exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "<module>" and Path(code.co_filename).parent == WIRE_DIR:
            found = Path(code.co_filename).stem
        tb = tb.tb_next
    return found


def describe(assumption: Assumption, detail: str) -> str:
    version = installed_version(assumption.library)
    return f"{assumption.library} {version}: assumption '{assumption.name}' broke ({detail})"


_verified: set[tuple[Assumption, ...]] = set()


#: verify_library_seams checks the libraries others build on first, so the first broken
#: assumption it meets is the cause rather than one of its effects (a Queue.put that no
#: longer wakes readers also stalls every engine.io probe).
CHECK_ORDER = (Q, L, W, U, E, S)


def verify_library_seams(assumptions: Iterable[Assumption] = ASSUMPTIONS) -> None:
    """Raise ``IncompatibleLibraryError`` (one line) unless every blocking assumption holds.

    Stops at the first broken one (start-up should fail fast; ``python -m
    gateway.wire.compat`` checks them all), except that a check broken only because
    importing our own wire module failed is passed over for one that names the cause.
    Runs once per process for a given inventory: the installed libraries cannot change
    under a running process, and tests build many gateways.
    """
    inventory = tuple(a for a in assumptions if a.blocking)
    if inventory in _verified:
        return
    ordered = sorted(inventory, key=lambda a: CHECK_ORDER.index(a.library))
    fallback: tuple[Assumption, Exception] | None = None
    for assumption in ordered:
        exc = check_error(assumption)
        if exc is not None and raised_importing(exc) is None:
            raise incompatible(assumption, exc)
        fallback = fallback or (None if exc is None else (assumption, exc))
    if fallback is not None:
        raise incompatible(*fallback)
    _verified.add(inventory)


def incompatible(assumption: Assumption, exc: Exception) -> IncompatibleLibraryError:
    others = "; python -m gateway.wire.compat checks every assumption"
    return IncompatibleLibraryError(describe(assumption, explain(exc)) + others)


def report(assumptions: Iterable[Assumption] = ASSUMPTIONS) -> tuple[list[str], bool]:
    """One line per assumption, and whether every blocking one holds."""
    lines, ok = [], True
    for assumption in assumptions:
        detail = failure(assumption)
        version = installed_version(assumption.library)
        if detail is None:
            label = "ok"
        elif assumption.blocking:
            label, ok, detail = "FAILED", False, f"broke: {detail}"
        else:
            label, detail = "CHANGED", f"workaround may be unneeded: {detail}"
        lines.append(f"{label:<8} {assumption.library} {version}: {assumption.name}")
        if detail is not None:
            lines.append(f"         {detail}")
    return lines, ok


def main() -> int:
    lines, ok = report(ASSUMPTIONS)
    print("\n".join(lines))
    print("all blocking assumptions hold" if ok else "some assumptions FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
