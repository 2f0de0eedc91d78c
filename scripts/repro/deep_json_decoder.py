"""A deeply nested JSON frame makes python-engineio's packet decoder raise RecursionError,
which escapes AsyncSocket._websocket_handler: uvicorn logs "Exception in ASGI application"
with a traceback, and the session stays in the server until its ping timeout. The same
nesting inside a Socket.IO EVENT logs a "message handler error" traceback per frame.

Run: python deep_json_decoder.py  (python-socketio, uvicorn, websockets; 127.0.0.1, ~3 s)
Expected: each frame is refused (connection closed, or the packet dropped) without a
traceback, and a closed connection's session is gone.
"""

import asyncio
import logging

import socketio
import uvicorn
from websockets.asyncio.client import connect

DEPTH = 100_000


class Tracebacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        self.records.append(f"{record.name}: {record.getMessage().strip()} ({error!r:.40})")


async def main() -> None:
    tracebacks = Tracebacks()
    logging.getLogger().addHandler(tracebacks)
    sio = socketio.AsyncServer(async_mode="asgi", ping_interval=25, ping_timeout=20)
    sio.on("x", lambda sid, data: None)
    config = uvicorn.Config(socketio.ASGIApp(sio), host="127.0.0.1", port=0, log_config=None)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    for _ in range(500):  # up to 5 s for uvicorn to listen
        if server.started:
            break
        await asyncio.sleep(0.01)
    url = f"ws://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    url += "/socket.io/?EIO=4&transport=websocket"

    for label, frame in (
        ("Socket.IO EVENT with deep data", '42["x",' + "[" * DEPTH + "]" * DEPTH + "]"),
        ("Engine.IO MESSAGE with deep JSON", "4" + "[" * DEPTH),
    ):
        before = len(tracebacks.records)
        async with connect(url, max_size=None) as ws:
            await ws.recv()  # Engine.IO OPEN
            await ws.send("40")
            await ws.recv()  # Socket.IO CONNECT
            await ws.send(frame)
            await asyncio.sleep(0.5)
        await asyncio.sleep(0.5)
        print(f"{label}: {len(tracebacks.records) - before} ERROR record(s) with traceback")
        for line in tracebacks.records[before:]:
            print(f"    {line}")
        print(f"    Engine.IO sessions still held after the client left: {len(sio.eio.sockets)}")
    server.should_exit = True
    await serving


if __name__ == "__main__":
    asyncio.run(main())
