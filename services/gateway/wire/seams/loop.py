"""uvloop's transports and asyncio.Queue: what the direct write and DirectQueue rely on."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from typing import Any

from gateway.wire.seams import in_fresh_loop, require, until

PROBE_BYTES = 1000


async def uvloop_session() -> dict[str, Any]:
    """A real uvloop TCP transport on 127.0.0.1: its socket, and where written bytes are."""
    loop = asyncio.get_running_loop()
    transports: list[Any] = []

    class Capture(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            transports.append(transport)

    server = await loop.create_server(Capture, "127.0.0.1", 0)
    peer = socket.create_connection(server.sockets[0].getsockname()[:2], timeout=2)
    peer.setblocking(False)
    await until(lambda: transports, "the connection")
    transport = transports[0]
    fd = transport.get_extra_info("socket").fileno()
    with socket.socket(fileno=os.dup(fd)) as same:
        facts: dict[str, Any] = {"same_socket": same.getpeername() == peer.getsockname()}
    transport.write(b"x" * PROBE_BYTES)
    buffered = transport.get_write_buffer_size()
    try:
        on_wire = len(peer.recv(PROBE_BYTES))
    except BlockingIOError:
        on_wire = 0
    facts["accounted"] = buffered + on_wire == PROBE_BYTES
    facts["deferred"] = buffered == PROBE_BYTES
    received = bytearray(b"x" * on_wire)

    def read() -> bool:
        with contextlib.suppress(BlockingIOError):
            received.extend(peer.recv(65536))
        return len(received) >= PROBE_BYTES + 6 and not transport.get_write_buffer_size()

    await until(lambda: not transport.get_write_buffer_size(), "the buffer to drain")
    os.write(fd, b"abc")  # what write_frame does once the buffer is empty
    transport.write(b"def")
    with contextlib.suppress(AssertionError):  # judged by what did arrive
        await until(read, "the bytes")
    facts["ordered"] = bytes(received[PROBE_BYTES:]) == b"abcdef"
    transport.close()
    facts["closing"] = transport.is_closing()
    peer.close()
    server.close()
    return facts


def session() -> dict[str, Any]:
    return in_fresh_loop(uvloop_session, use_uvloop=True)


def check_socket_fd() -> None:
    """On a real uvloop TCP transport, get_extra_info("socket").fileno() is the connection's
    own descriptor (a dup of it has the client's address as peer) and is_closing() turns
    True on close()."""
    facts = session()
    require(facts["same_socket"], "the socket's fileno() is not the connection")
    require(facts["closing"], "is_closing() is False after close()")


def check_buffer_accounting() -> None:
    """Bytes given to a real uvloop transport's write() are either on the socket already or
    counted by get_write_buffer_size(), so a direct os.write() made only when that is 0
    never overtakes them (checked: os.write then write() arrive in that order)."""
    facts = session()
    require(facts["accounted"], "written bytes neither sent nor counted as buffered")
    require(facts["ordered"], "os.write() and transport.write() arrived out of order")


def check_write_deferred() -> None:
    """(Workaround) A real uvloop transport's write() keeps the bytes until the loop turn
    ends, which is why write_frame() writes to the socket itself; if this changes, that
    direct os.write() is no longer needed."""
    require(session()["deferred"], "uvloop's write() now sends at once")


def check_queue_get() -> None:
    """On a real asyncio.Queue subclass, get() takes its item through get_nowait(), with
    an item waiting and after waiting for one, and get() returns an awaitable coroutine."""

    async def probe() -> int:
        calls = [0]

        class Counting(asyncio.Queue[int]):
            def get_nowait(self) -> int:
                calls[0] += 1
                return super().get_nowait()

        queue = Counting()
        queue.put_nowait(1)
        await queue.get()
        waiter = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        queue.put_nowait(2)
        require(await waiter == 2, "get() returned the wrong item")
        return calls[0]

    calls = in_fresh_loop(probe)
    require(calls == 2, f"get() called get_nowait() {calls} times for 2 items")


def check_queue_put() -> None:
    """On a real asyncio.Queue subclass, ``await put(item)`` adds through put_nowait()
    (close_transport's None is counted by DirectQueue.put_nowait)."""

    async def probe() -> list[Any]:
        seen: list[Any] = []

        class Recording(asyncio.Queue[Any]):
            def put_nowait(self, item: Any) -> None:
                seen.append(item)
                super().put_nowait(item)

        await Recording().put(None)
        return seen

    require(in_fresh_loop(probe) == [None], "put() bypassed put_nowait()")
