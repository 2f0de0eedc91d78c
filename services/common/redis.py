"""Redis connections, start-up checks and the capped backoff every reconnect loop uses.

``REDIS_URL`` (see ``common.redis_url``) plus the ``REDIS_*`` security settings become one
``RedisConfig``: a credential-free URL and one dict of redis-py options. The same pair feeds
our own clients (``create_redis``) and python-socketio's ``AsyncRedisManager``, so both
always reach the same server with the same credentials and TLS settings.

Our command clients retry a command whose connection dropped (``command_retry``): after a
Redis restart or failover every pooled connection is dead and fails its first command with
``Connection closed by server.``, and without a retry each caller that drew one failed
(a resuming client was told its recovery was incomplete, the history API answered 503).
Subscriptions opt out with ``no_retry()``: see there.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import EqualJitterBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from common.logging import get_logger
from common.redis_url import parse_redis_url

if TYPE_CHECKING:
    from common.settings import ServiceSettings

log = get_logger(__name__)

#: What a failed Redis call raises (server gone, timeout, refused); anything else is a bug.
REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, OSError)

CONNECT_TIMEOUT_S = 2.0
#: Options every connection gets unless the caller overrides them.
CONNECTION_DEFAULTS: dict[str, Any] = {
    "socket_connect_timeout": CONNECT_TIMEOUT_S,
    "socket_keepalive": True,
    "health_check_interval": 10,
    "retry_on_timeout": False,
}
#: A sentinel that hangs must not hang master discovery.
SENTINEL_SOCKET_TIMEOUT_S = 2.0

#: What a command is retried on: the connection dropped or did not answer in time.
RETRIED_ERRORS: tuple[type[RedisError], ...] = (RedisConnectionError, RedisTimeoutError)
#: Retries after a command's first attempt, and the capped, jittered backoff between them.
#: A dead pooled connection fails at once and its first retry reconnects; a second rides
#: out a Redis that is still starting. More would only hold callers while Redis is down.
COMMAND_RETRIES = 2
COMMAND_BACKOFF_BASE_S = 0.05
COMMAND_BACKOFF_CAP_S = 0.5
#: A reply later than this counts as a lost connection. Command clients send no blocking
#: commands (subscriptions use their own no-retry client, whose reads must wait forever).
COMMAND_TIMEOUT_S = 2.0


def _command_max_time_s() -> float:
    """How long one command can take when Redis never answers, at most.

    redis-py applies the same ``Retry`` to the connect inside each command attempt, so an
    attempt may connect ``COMMAND_RETRIES + 1`` times, then wait for its reply. Backoff
    sleeps are at most ``min(cap, base * 2**n)`` (EqualJitterBackoff) after failure ``n``.
    """
    tries = COMMAND_RETRIES + 1
    backoff = sum(
        min(COMMAND_BACKOFF_CAP_S, COMMAND_BACKOFF_BASE_S * 2.0**n) for n in range(1, tries)
    )
    connect = tries * CONNECT_TIMEOUT_S + backoff
    return tries * (connect + COMMAND_TIMEOUT_S) + backoff


COMMAND_MAX_TIME_S = _command_max_time_s()


@dataclass(frozen=True)
class RedisConfig:
    """One configuration for every Redis client of a service (ours and the Socket.IO manager)."""

    url: str
    options: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> RedisConfig:
        target = parse_redis_url(str(settings.redis_url))
        options: dict[str, Any] = dict(CONNECTION_DEFAULTS)
        password = target.password
        if settings.redis_password is not None:
            password = settings.redis_password.get_secret_value()
        if target.username:
            options["username"] = target.username
        if password:
            options["password"] = password
        tls = _tls_options(settings) if target.tls else {}
        options |= tls
        if target.sentinels:
            # The URL carries no TLS flag in python-socketio's sentinel form: say it here.
            options |= {"ssl": True} if target.tls else {}
            sentinel: dict[str, Any] = {
                "socket_connect_timeout": CONNECTION_DEFAULTS["socket_connect_timeout"],
                "socket_timeout": SENTINEL_SOCKET_TIMEOUT_S,
                **({"ssl": True, **tls} if target.tls else {}),
            }
            if settings.redis_sentinel_password is not None:
                sentinel["password"] = settings.redis_sentinel_password.get_secret_value()
            options["sentinel_kwargs"] = sentinel
        return cls(target.bare_url, options)

    def manager_options(self) -> dict[str, Any]:
        """A fresh copy for ``AsyncRedisManager(redis_options=...)`` (it mutates what it gets)."""
        return {k: dict(v) if isinstance(v, dict) else v for k, v in self.options.items()}


def _tls_options(settings: ServiceSettings) -> dict[str, Any]:
    options: dict[str, Any] = {"ssl_check_hostname": settings.redis_tls_check_hostname}
    if settings.redis_tls_ca_file is not None:
        options["ssl_ca_certs"] = str(settings.redis_tls_ca_file)
    if settings.redis_tls_cert_file is not None:
        options["ssl_certfile"] = str(settings.redis_tls_cert_file)
    if settings.redis_tls_key_file is not None:
        options["ssl_keyfile"] = str(settings.redis_tls_key_file)
    return options


def command_retry() -> Retry:
    """redis-py's own retry for command clients: reconnect and resend after a dropped connection.

    redis-py builds a pool from a URL without any retry (``Retry(NoBackoff(), 0)``), unlike
    ``Redis()``. A dead pooled connection fails before Redis sees the command, so its resend
    is always safe. A connection that drops after Redis ran the command but before the reply
    arrived makes the resend run it twice, which is harmless for what our services send:
    reads (history, latest signals, stats); the monitor's publish script, the one write that
    must not happen twice, cannot: its ``SET NX`` dedupe key makes a resent EVALSHA return
    "published before" without a second XADD or PUBLISH (common/publish.py), so the signal
    is delivered once and only counted as a duplicate. Leases are ``SET NX`` and
    owner-checked scripts: a resend at worst misses a lease it just took, which expires.
    The bars pipeline's RPUSH may store a bar twice in the warm-up window.
    """
    backoff = EqualJitterBackoff(cap=COMMAND_BACKOFF_CAP_S, base=COMMAND_BACKOFF_BASE_S)
    return Retry(backoff, COMMAND_RETRIES, supported_errors=RETRIED_ERRORS)


def command_options() -> dict[str, Any]:
    """The redis-py options that make a client retry commands (``command_retry``)."""
    return {
        "retry": command_retry(),
        "retry_on_error": list(RETRIED_ERRORS),
        "socket_timeout": COMMAND_TIMEOUT_S,
    }


def create_redis(url: str, **options: Any) -> aioredis.Redis:
    """A client for ``url`` (direct or Sentinel form); ``options`` go to redis-py.

    Commands are retried after a dropped connection (``command_retry``), through Sentinel
    too (the retry asks the sentinels for the master again). A caller that passes its own
    ``retry`` (a subscription's ``no_retry()``) owns the policy: nothing is added.
    """
    target = parse_redis_url(url)
    retrying = {} if "retry" in options else command_options()
    merged = CONNECTION_DEFAULTS | retrying | options
    if target.tls and target.sentinels:
        merged.setdefault("ssl", True)
    if not target.sentinels:
        return aioredis.Redis.from_url(url, **merged)
    creds = {k: v for k, v in (("username", target.username), ("password", target.password)) if v}
    manager = Sentinel(  # type: ignore[no-untyped-call]
        list(target.sentinels), **{"db": target.db, **creds, **merged}
    )
    client: aioredis.Redis = manager.master_for(target.master or "")
    return client


def redis_client(settings: ServiceSettings, **overrides: Any) -> aioredis.Redis:
    """The service's Redis client, from its settings (``overrides`` go to redis-py)."""
    config = RedisConfig.from_settings(settings)
    return create_redis(config.url, **(config.options | overrides))


def no_retry() -> Retry:
    """For subscriptions: redis-py would otherwise reconnect and resubscribe silently,
    and the loop would never learn that it missed messages (and backfill them).
    Passing it to ``create_redis`` also leaves out the command timeout, which older
    redis-py releases apply to a subscriber's wait for the next message."""
    return Retry(NoBackoff(), 0)


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


def raise_if_cancelling() -> None:
    """Honour a cancel that a Redis call swallowed: redis-py can turn the CancelledError it
    receives mid-command into a connection error, which a loop that retries Redis errors
    would take for an outage and carry on (a SIGTERM then hung the shutdown). Call it first
    in every ``except REDIS_ERRORS`` of a loop that retries."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


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
