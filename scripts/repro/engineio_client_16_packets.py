"""python-engineio's client drops a long-polling connection whose payload holds more than
16 packets, while python-engineio's server puts any number of packets in one payload.

Run: python engineio_client_16_packets.py  (python-socketio, uvicorn; 127.0.0.1 only, ~3 s)
Expected: the client receives all 20 events on its first session.
Actual: it receives none: Payload.decode raises ValueError("Too many packets in payload")
past Payload.max_decode_packets (16), AsyncClient._read_loop_polling logs "Unexpected packet
from server, aborting" (with engineio_logger on) and drops the connection ("transport
error"); Socket.IO reconnects with a new session and the burst is lost.
"""

import asyncio
import contextlib

import socketio
import uvicorn

EVENTS = 20


async def main() -> None:
    sio = socketio.AsyncServer(async_mode="asgi")

    @sio.on("burst")
    async def burst(sid: str) -> None:
        # One burst, as a busy server sends between two polls of the same client.
        await asyncio.gather(*(sio.emit("n", n, to=sid) for n in range(EVENTS)))

    config = uvicorn.Config(socketio.ASGIApp(sio), host="127.0.0.1", port=0, log_level="error")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    for _ in range(500):  # up to 5 s for uvicorn to listen
        if server.started:
            break
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]

    client = socketio.AsyncClient()
    received: list[int] = []
    sessions: list[str] = []
    drops: list[object] = []
    client.on("n", received.append)
    client.on("connect", lambda: sessions.append(client.sid))
    client.on("disconnect", drops.append)
    await client.connect(f"http://127.0.0.1:{port}", transports=["polling"])
    await client.emit("burst")
    await asyncio.sleep(2)
    print(f"events sent: {EVENTS}, received: {len(received)}")
    print(f"connection dropped: {len(drops)} time(s), reasons: {drops}")
    print(f"sessions: {len(sessions)} (a reconnect starts a new one; the burst is lost)")
    with contextlib.suppress(Exception):
        await client.disconnect()
    server.should_exit = True
    await serving


if __name__ == "__main__":
    asyncio.run(main())
