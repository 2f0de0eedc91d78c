"""The task-free WebSocket session and ping wheel (gateway/wire/session.py), and the lazy
asyncio parts (gateway/wire/lazy.py), on real engine.io sockets and asyncio queues."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import engineio
from engineio import async_socket as eio_socket
from engineio import packet as eio_packet

from gateway.wire.seams import ended, in_fresh_loop, require, until
from gateway.wire.seams.eio import direct_engine, message


async def lean_session() -> dict[str, Any]:
    """A WebSocket-only client on a real DirectEngineIOServer socket: OPEN queued first (as
    _handle_connect does), a client MESSAGE, a direct write, a ping, then the client leaves."""
    from gateway.wire.direct import DIRECT_SEND
    from gateway.wire.session import ping

    server = direct_engine()
    got: list[Any] = []

    async def on_message(sid: str, data: Any) -> None:
        got.append(data)

    server.on("message", on_message)
    sock = eio_socket.AsyncSocket(server, "compat")
    await sock.send(eio_packet.Packet(eio_packet.OPEN, {"sid": "compat"}))
    sent: list[dict[str, Any]] = []
    frames: list[bytes] = []
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    inbox.put_nowait({"type": "websocket.receive", "text": "4hello"})

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
    tasks = len(asyncio.all_tasks())
    driver = server._async["websocket"](sock._websocket_handler, server)
    session = asyncio.ensure_future(driver(environ))
    await until(lambda: got or session.done(), "the client's message")
    await until(lambda: sock.queue._drainer is None, "the drain to end")
    await asyncio.sleep(0.01)  # the message handler's own task ends
    facts: dict[str, Any] = {"got": list(got), "tasks": len(asyncio.all_tasks()) - tasks - 1}
    facts["opened"] = [e["text"][:1] for e in sent if e["type"] == "websocket.send"]
    sock.queue.put_nowait(message("direct"))
    ping(sock)
    facts["frames"] = len(frames)
    inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    facts["result"] = await ended(session, "the session to end after websocket.disconnect")
    facts["closed"] = sock.closed and sock.upgraded
    facts["sent"] = [e["type"] for e in sent]
    return facts


def check_lean_session() -> None:
    """Our driver runs a WebSocket-only client's session in the caller's task on a real
    socket: the queued OPEN goes out first through the ASGI send, a client MESSAGE reaches
    the server's message handler through socket.receive(), no task is left while idle,
    MESSAGE and PING are then written directly, and the client's disconnect closes the
    socket (close(abort=True, reason=...)) and the WebSocket."""
    facts = in_fresh_loop(lean_session)
    require(facts["got"] == ["hello"], f"the message handler got {facts['got']}")
    require(facts["opened"] == ["0"], f"sent before the message: {facts['opened']}")
    require(facts["tasks"] == 0, f"{facts['tasks']} tasks besides the session's own")
    require(facts["frames"] == 2, f"{facts['frames']} direct frames, expected 2")
    require(facts["result"] == "" and facts["closed"], "session did not end cleanly")
    require(facts["sent"][-1] == "websocket.close", f"sent {facts['sent']}")


def check_ping_schedule() -> None:
    """On a real socket, a PONG makes receive() call schedule_ping(), which starts
    ``_send_ping`` through server.start_background_task (our wheel takes it) and clears
    last_ping; no task is created for it."""

    async def probe() -> tuple[int, Any, int]:
        server = direct_engine()
        sock = eio_socket.AsyncSocket(server, "compat")
        tasks = len(asyncio.all_tasks())
        await sock.receive(eio_packet.Packet(eio_packet.PONG))
        return len(server.pings), sock.last_ping, len(asyncio.all_tasks()) - tasks

    scheduled, last_ping, tasks = in_fresh_loop(probe)
    require(scheduled == 1, f"the ping wheel holds {scheduled} sockets after a PONG")
    require(last_ping is None and tasks == 0, f"last_ping {last_ping}, {tasks} new tasks")


def check_send_ping() -> None:
    """Stock ``_send_ping`` on a real socket (ping interval 0): sets last_ping to
    time.time() and queues one PING, nothing for a closing socket; our ping() does the
    same on a socket in the same state."""
    from gateway.wire.session import ping

    async def probe() -> list[Any]:
        server = engineio.AsyncServer(async_mode="asgi", logger=False, monitor_clients=False)
        server.ping_interval = 0
        results = []
        for run in (lambda s: s._send_ping(), ping):
            sock = eio_socket.AsyncSocket(server, "compat")
            sock.last_ping, before = None, time.time()
            done = run(sock)
            if asyncio.iscoroutine(done):
                await done
            item = sock.queue.get_nowait()
            results.append((item.packet_type, sock.last_ping >= before, sock.queue.qsize()))
            closing = eio_socket.AsyncSocket(server, "closing")
            closing.closing = True
            done = run(closing)
            if asyncio.iscoroutine(done):
                await done
            results.append(closing.queue.qsize())
        return results

    stock, stock_closing, ours, ours_closing = in_fresh_loop(probe)
    require(stock == (eio_packet.PING, True, 0), f"_send_ping did {stock}")
    require(stock_closing == 0, "_send_ping pinged a closing socket")
    require(ours == stock and ours_closing == 0, f"ping() did {ours}, _send_ping {stock}")


def check_lazy_queue() -> None:
    """A real DirectQueue: asyncio.Queue builds its items through _init/_put/_get and
    waits only in get()/put()/join(): an idle queue holds the shared empty deques; a get()
    waiting on it is woken by put_nowait(); join() waits for task_done(); the shared
    deques stay empty."""
    from gateway.wire.lazy import NO_ITEMS, NO_WAITERS
    from gateway.wire.queue import DirectQueue

    async def probe() -> dict[str, Any]:
        queue = DirectQueue()
        idle = queue._queue is NO_ITEMS and queue._getters is NO_WAITERS
        getter = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        queue.put_nowait(message("x"))
        got = await ended(getter, "get() to be woken by put_nowait()")
        joiner = asyncio.ensure_future(queue.join())
        await asyncio.sleep(0)
        waiting = not joiner.done()
        queue.task_done()
        await ended(joiner, "join() to end after task_done()")
        return {
            "idle": idle,
            "got": got.data,
            "join_waited": waiting,
            "empty_again": queue._queue is NO_ITEMS,
            "shared_empty": not NO_ITEMS and not NO_WAITERS,
        }

    facts = in_fresh_loop(probe)
    require(facts["idle"], "a new queue built deques of its own (Queue.__init__ changed)")
    require(facts["got"] == "x" and facts["join_waited"], f"get/join: {facts}")
    require(facts["empty_again"] and facts["shared_empty"], f"items: {facts}")
