"""uvloop's transport.write() keeps the bytes until the event-loop turn ends, even when
the socket could take them at once; asyncio's own transport sends them during the call.
A server that writes to many clients in one loop (a fan-out) holds every client's bytes
until the last client's write, which shows as latency.

Run: python uvloop_write_buffering.py  (uvloop; 127.0.0.1, <1 s)
Expected (as asyncio does): the bytes are on the socket when write() returns.
"""

import asyncio
import socket
from importlib.metadata import version

import uvloop

SIZE = 1000


async def probe() -> tuple[int, int]:
    """Bytes on the wire, and buffered, right after transport.write() (same loop turn)."""
    loop = asyncio.get_running_loop()
    made: list[asyncio.Transport] = []

    class Capture(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            made.append(transport)  # type: ignore[arg-type]

    server = await loop.create_server(Capture, "127.0.0.1", 0)
    peer = socket.create_connection(server.sockets[0].getsockname()[:2])
    peer.setblocking(False)
    for _ in range(1000):
        if made:
            break
        await asyncio.sleep(0.001)
    made[0].write(b"x" * SIZE)
    buffered = made[0].get_write_buffer_size()
    try:
        on_wire = len(peer.recv(SIZE))
    except BlockingIOError:
        on_wire = 0
    made[0].close()
    peer.close()
    server.close()
    return on_wire, buffered


for name, factory in (
    ("asyncio", asyncio.new_event_loop),
    ("uvloop " + version("uvloop"), uvloop.new_event_loop),
):
    with asyncio.Runner(loop_factory=factory) as runner:
        on_wire, buffered = runner.run(probe())
    print(f"{name:<14} write({SIZE} B): on the socket {on_wire} B, buffered {buffered} B")
