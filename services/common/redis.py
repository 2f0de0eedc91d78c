"""Redis connections, start-up checks and the capped backoff every reconnect loop uses."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from common.logging import get_logger

log = get_logger(__name__)

#: What a failed Redis call raises (server gone, timeout, refused); anything else is a bug.
REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, OSError)


def create_redis(url: str, **options: Any) -> aioredis.Redis:
    defaults: dict[str, Any] = {
        "socket_connect_timeout": 2.0,
        "socket_keepalive": True,
        "health_check_interval": 10,
        "retry_on_timeout": False,
    }
    return aioredis.Redis.from_url(url, **(defaults | options))


@dataclass
class Backoff:
    """Exponential backoff with full jitter, capped, reset after a success."""

    initial_s: float = 0.1
    max_s: float = 5.0
    factor: float = 2.0
    _attempt: int = field(default=0, init=False)

    def next_delay(self) -> float:
        ceiling = min(self.max_s, self.initial_s * self.factor**self._attempt)
        self._attempt += 1
        # Jitter spreads replicas that lost Redis together, so they don't reconnect in step.
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._attempt = 0


class RedisUnavailableError(RuntimeError):
    pass


async def wait_for_redis(client: aioredis.Redis, attempts: int, backoff: Backoff) -> None:
    """Ping until Redis answers; after ``attempts`` failures raise so the pod restarts."""
    for attempt in range(1, attempts + 1):
        try:
            await client.ping()
            return
        except REDIS_ERRORS as exc:
            log.warning("redis_unreachable", attempt=attempt, attempts=attempts, error=str(exc))
            if attempt < attempts:
                await asyncio.sleep(backoff.next_delay())
    raise RedisUnavailableError(f"Redis did not answer after {attempts} attempts")
