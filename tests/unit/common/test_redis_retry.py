"""Command clients retry a dropped connection; subscription clients never do.

Against a real redis-server: ``CLIENT KILL TYPE normal`` drops every pooled connection the
way a restart or failover does, and each test checks what the next command sees.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from common.redis import (
    COMMAND_MAX_TIME_S,
    COMMAND_RETRIES,
    COMMAND_TIMEOUT_S,
    REDIS_ERRORS,
    create_redis,
    no_retry,
    redis_client,
)
from common.settings import ServiceSettings
from tests.integration.redis_security.servers import SentinelGroup, start_sentinel_group
from tests.support.redis_server import ProcessRedis, own_redis

POOLED = 8  # connections each client holds before the kill


@pytest.fixture
def server() -> Iterator[ProcessRedis]:
    with own_redis() as proc:
        yield proc


@pytest.fixture
async def admin(server: ProcessRedis) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(server.url)
    try:
        yield client
    finally:
        await client.aclose()


async def fill_pool(client: aioredis.Redis) -> None:
    """Hold ``POOLED`` connections at once, so the pool keeps that many."""
    await asyncio.gather(*(client.blpop(["nothing"], timeout=0.05) for _ in range(POOLED)))
    assert len(client.connection_pool._available_connections) >= POOLED


async def kill_clients(admin: aioredis.Redis) -> int:
    """Close every normal client connection on the server except ``admin``'s own."""
    killed = int(await admin.client_kill_filter(_type="normal", skipme=True))
    assert killed >= POOLED
    return killed


async def test_every_pooled_connection_killed_then_commands_succeed(
    server: ProcessRedis, admin: aioredis.Redis
) -> None:
    client = create_redis(server.url)
    try:
        await client.set("k", "v")
        await fill_pool(client)
        await kill_clients(admin)
        assert await client.get("k") == b"v"  # one command: no error, no caller retry
        await fill_pool(client)
        await kill_clients(admin)
        # As many at once as there are dead connections: each one retries on its own.
        replies = await asyncio.gather(*(client.get("k") for _ in range(POOLED * 2)))
        assert replies == [b"v"] * (POOLED * 2)
    finally:
        await client.aclose()


async def test_the_service_client_and_scripts_retry(
    server: ProcessRedis, admin: aioredis.Redis
) -> None:
    client = redis_client(ServiceSettings(redis_url=server.url))
    script = client.register_script("return redis.call('INCR', KEYS[1])")
    try:
        assert await script(keys=["n"]) == 1
        await fill_pool(client)
        await kill_clients(admin)
        # EVALSHA on a dead connection: resent once, run once (never reached Redis before).
        assert await script(keys=["n"]) == 2
    finally:
        await client.aclose()


async def test_a_subscription_client_still_sees_the_drop(
    server: ProcessRedis, admin: aioredis.Redis
) -> None:
    """The relay's client (``no_retry``) must learn of a drop, to resubscribe and backfill."""
    client = create_redis(server.url, retry=no_retry())
    try:
        await client.ping()
        await admin.client_kill_filter(_type="normal", skipme=True)
        with pytest.raises(RedisConnectionError):
            await client.ping()
        assert client.connection_pool.connection_kwargs.get("socket_timeout") is None
    finally:
        await client.aclose()


async def test_a_command_to_a_stopped_redis_fails_fast(server: ProcessRedis) -> None:
    client = create_redis(server.url)
    try:
        await client.ping()
        server.stop()
        started = time.monotonic()
        with pytest.raises(REDIS_ERRORS):
            await client.ping()
        # Refused at once each time: only the backoff sleeps, well under the bound.
        assert time.monotonic() - started < 2.0
    finally:
        await client.aclose()


async def test_a_command_to_a_hung_redis_gives_up_within_the_bound(server: ProcessRedis) -> None:
    """A Redis that accepts connections but never answers (SIGSTOP) costs a bounded time."""
    client = create_redis(server.url)
    assert server._proc is not None
    pid = server._proc.pid
    try:
        await client.ping()
        os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        async with asyncio.timeout(COMMAND_MAX_TIME_S + 5):
            with pytest.raises(RedisTimeoutError):
                await client.get("k")
        took = time.monotonic() - started
        assert took <= COMMAND_MAX_TIME_S, took
        # It did retry: every attempt waited out the read timeout.
        assert took >= (COMMAND_RETRIES + 1) * COMMAND_TIMEOUT_S, took
    finally:
        os.kill(pid, signal.SIGCONT)
        await client.aclose()


def test_sentinel_clients_get_the_same_retry() -> None:
    """No network: the master pool's connections are built with the command retry."""
    url = "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/0/mymaster"
    client = create_redis(url)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    retry = pool.connection_kwargs["retry"]
    assert retry.get_retries() == COMMAND_RETRIES
    assert RedisConnectionError in pool.connection_kwargs["retry_on_error"]
    relay = create_redis(url, retry=no_retry())
    assert relay.connection_pool.connection_kwargs["retry"].get_retries() == 0


@pytest.fixture
def sentinels() -> Iterator[SentinelGroup]:
    group = start_sentinel_group()
    try:
        yield group
    finally:
        group.stop()


async def test_through_sentinel_killed_connections_are_retried(
    sentinels: SentinelGroup,
) -> None:
    """Retries must not get in the way of master discovery. (redis-py's Sentinel pool also
    re-checks a pooled connection itself, so this one passes without the retry too.)"""
    client = create_redis(sentinels.url)
    admin = aioredis.Redis(port=sentinels.master_port)
    try:
        await client.set("k", "v")
        await fill_pool(client)
        await kill_clients(admin)
        assert await client.get("k") == b"v"
    finally:
        await client.aclose()
        await admin.aclose()
