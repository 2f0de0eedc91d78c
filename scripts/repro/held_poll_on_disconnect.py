"""When a long-polling client disconnects, python-engineio leaves its pending GET waiting
for ping_interval + ping_timeout: the official client's disconnect() blocks that long, and
the server holds the request (and delays its own shutdown) as long.

Run: python held_poll_on_disconnect.py  (python-socketio, uvicorn; 127.0.0.1, ~10 s)
Expected: disconnect() returns within a few milliseconds (the server answers the held GET,
e.g. with an empty payload or a CLOSE/NOOP packet, as soon as the session closes).
"""

import asyncio
import time

import socketio
import uvicorn

PING_INTERVAL_S, PING_TIMEOUT_S = 5, 5  # defaults are 25 + 20 = 45 s


async def main() -> None:
    sio = socketio.AsyncServer(
        async_mode="asgi", ping_interval=PING_INTERVAL_S, ping_timeout=PING_TIMEOUT_S
    )
    config = uvicorn.Config(socketio.ASGIApp(sio), host="127.0.0.1", port=0, log_level="error")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    for _ in range(500):  # up to 5 s for uvicorn to listen
        if server.started:
            break
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]

    client = socketio.AsyncClient(reconnection=False)
    await client.connect(f"http://127.0.0.1:{port}", transports=["polling"])
    await asyncio.sleep(0.5)  # the client's next GET is now held by the server
    started = time.monotonic()
    await client.disconnect()
    took = time.monotonic() - started
    print(f"ping_interval + ping_timeout = {PING_INTERVAL_S + PING_TIMEOUT_S} s")
    print(f"client.disconnect() took {took:.2f} s")
    server.should_exit = True
    await serving


if __name__ == "__main__":
    asyncio.run(main())
