"""Reference gateway 1 (dev-time only, never shipped): the plain design as first written.

FastAPI + python-socketio ASGI on uvicorn (uvicorn's defaults), and a ``redis.asyncio``
listener loop: ``pubsub.get_message(timeout=1.0)`` then ``await sio.emit(...)``.

    PORT=8001 REDIS_URL=redis://127.0.0.1:6379/0 python bench/fanout/plain_gateway.py

It uses python-socketio's in-memory manager, so each replica emits to its own clients
only (exactly once with several replicas), the same delivery contract as the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
import socketio
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

CHANNEL = os.environ.get("SIGNAL_CHANNEL", "quantum_signals")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
state = {"subscribed": False}


async def listen() -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    pubsub = client.pubsub()
    await pubsub.subscribe(CHANNEL)
    state["subscribed"] = True
    while True:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
        if message is None:
            continue
        data = json.loads(message["data"])
        await sio.emit("new_signal", data)


@contextlib.asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    task = asyncio.create_task(listen())
    yield
    task.cancel()


api = FastAPI(lifespan=lifespan)


@api.get("/readyz")
async def readyz() -> JSONResponse:
    ready = state["subscribed"]
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


app = socketio.ASGIApp(sio, other_asgi_app=api)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
