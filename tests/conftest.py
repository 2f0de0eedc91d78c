"""Fixtures that start real parts: Redis servers, service processes and clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.support.clients import RecordingClient
from tests.support.redis_server import RedisServer, remove_redis, start_redis
from tests.support.services import ServiceProcess


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    try:
        yield server
    finally:
        remove_redis(server)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


ServiceFactory = Callable[..., ServiceProcess]


@pytest.fixture
def service_factory(redis_url: str) -> Iterator[ServiceFactory]:
    """Start ``python -m gateway``/``monitor`` processes; every one is stopped afterwards."""
    started: list[ServiceProcess] = []

    def start(module: str, wait_ready: bool = True, **env: Any) -> ServiceProcess:
        env = {"REDIS_URL": redis_url, **{k.upper(): str(v) for k, v in env.items()}}
        proc = ServiceProcess(module, env)
        started.append(proc)
        return proc.start(wait_ready=wait_ready)

    yield start
    for proc in started:
        proc.stop()


ClientFactory = Callable[..., Any]


@pytest.fixture
async def client_factory() -> AsyncIterator[ClientFactory]:
    clients: list[RecordingClient] = []

    async def connect(url: str, **kwargs: Any) -> RecordingClient:
        client = RecordingClient(url, **kwargs)
        clients.append(client)
        return await client.connect()

    yield connect
    await asyncio.gather(*(c.disconnect() for c in clients if c.sio.connected))
