"""Per-connection rate limit of client events (token bucket), and flood disconnects.

Clients only send a few small events (subscribe, unsubscribe, auth_refresh), so each
connection gets a bucket of ``CLIENT_EVENTS_BURST`` tokens refilled at
``CLIENT_EVENTS_PER_S``. An event without a token is refused with an error ack and
counted. A client refused ``CLIENT_FLOOD_DISCONNECT_AFTER`` times without once pausing
long enough to refill its whole bucket is flooding on purpose and is disconnected.

A bucket belongs to the connection (the Engine.IO session, one WebSocket), not to a
Socket.IO session: a client can send CONNECT again on the same WebSocket, and that second
session must not start with a full bucket. So it lives until the connection closes, and a
flood kick ends the connection itself (``gateway.wire.engine.end_connection``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from common.logging import get_logger
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings

log = get_logger(__name__)

Handler = Callable[..., Awaitable[Any]]
Disconnect = Callable[[str], Awaitable[None]]

RATE_LIMITED_ACK = {"ok": False, "error": "rate_limited"}
UNKNOWN_EVENT_ACK = {"ok": False, "error": "unknown_event"}
#: Buckets kept before the first sweep for closed connections (see ``EventGuard._sweep``).
SWEEP_MIN = 1024


class Connections(Protocol):
    """Which connection a Socket.IO session runs on, and whether it is still open."""

    def of(self, sid: str) -> str | None: ...

    def is_open(self, connection: str) -> bool: ...


class SessionsOnly:
    """Without a server to ask: each Socket.IO session counts as its own connection."""

    def of(self, sid: str) -> str | None:
        return sid

    def is_open(self, connection: str) -> bool:
        return False


class Verdict(Enum):
    ALLOW = "allow"
    REFUSE = "refuse"
    DISCONNECT = "disconnect"


@dataclass
class TokenBucket:
    rate_per_s: float
    burst: int
    updated: float  # clock reading of the last refill
    tokens: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def full(self, now: float) -> bool:
        return self.tokens + (now - self.updated) * self.rate_per_s >= self.burst


@dataclass
class _Client:
    bucket: TokenBucket
    strikes: int = 0


class EventLimiter:
    """Decides, per connection, whether an event may run; pure apart from the clock."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        disconnect_after: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.disconnect_after = disconnect_after
        self._clock = clock
        self._clients: dict[str, _Client] = {}

    def check(self, sid: str) -> Verdict:
        now = self._clock()
        client = self._clients.get(sid)
        if client is None:
            client = self._clients[sid] = _Client(TokenBucket(self.rate_per_s, self.burst, now))
        if client.bucket.full(now):
            client.strikes = 0  # it paused long enough: earlier refusals were a burst
        if client.bucket.take(now):
            return Verdict.ALLOW
        client.strikes += 1
        # Exactly at the threshold, so one flood is disconnected (and counted) once.
        return Verdict.DISCONNECT if client.strikes == self.disconnect_after else Verdict.REFUSE

    def forget(self, sid: str) -> None:
        self._clients.pop(sid, None)

    def __len__(self) -> int:
        return len(self._clients)

    def keep_only(self, keep: Callable[[str], bool]) -> None:
        """Drop every bucket whose key ``keep`` rejects."""
        for key in [k for k in self._clients if not keep(k)]:
            del self._clients[key]


class EventGuard:
    """Wraps Socket.IO event handlers with an ``EventLimiter``; counts and disconnects."""

    def __init__(self, limiter: EventLimiter, metrics: GatewayMetrics) -> None:
        self.limiter = limiter
        self.metrics = metrics
        self._disconnect: Disconnect | None = None
        self._connections: Connections = SessionsOnly()
        self._sweep_at = math.inf  # sessions only: each bucket is dropped with its session

    @classmethod
    def from_settings(cls, settings: GatewaySettings, metrics: GatewayMetrics) -> EventGuard:
        limiter = EventLimiter(
            settings.client_events_per_s,
            settings.client_events_burst,
            settings.client_flood_disconnect_after,
        )
        return cls(limiter, metrics)

    def bind(self, disconnect: Disconnect, connections: Connections | None = None) -> None:
        """``disconnect`` ends a flooding client's connection; ``connections`` keys buckets."""
        self._disconnect = disconnect
        if connections is not None:
            self._connections = connections
            self._sweep_at = SWEEP_MIN

    def wrap(self, handler: Handler) -> Handler:
        async def limited(sid: str, *args: Any) -> Any:
            if await self._admit(sid):
                return await handler(sid, *args)
            return RATE_LIMITED_ACK

        return limited

    async def unknown_event(self, _event: str, sid: str, *_args: Any) -> dict[str, Any]:
        """Catch-all: unknown events also cost a token, so they cannot flood for free."""
        if await self._admit(sid):
            # No event name in the label: clients choose it, so it would grow without bound.
            self.metrics.client_events_refused.labels("unknown_event").inc()
            return UNKNOWN_EVENT_ACK
        return RATE_LIMITED_ACK

    def forget(self, sid: str) -> None:
        """A Socket.IO session ended: its bucket goes only with its connection."""
        connection = self._connection(sid)
        if not self._connections.is_open(connection):
            self.limiter.forget(connection)

    def _connection(self, sid: str) -> str:
        return self._connections.of(sid) or sid

    def _sweep(self) -> None:
        """Drop the buckets of closed connections that no session disconnect reported.

        A connection whose session ended first (a kick, or the client's own DISCONNECT) and
        then closed leaves its bucket behind. Sweeping whenever the count doubles keeps
        that memory bounded at O(1) amortised cost per new connection.
        """
        if len(self.limiter) >= self._sweep_at:
            self.limiter.keep_only(self._connections.is_open)
            self._sweep_at = max(SWEEP_MIN, 2 * len(self.limiter))

    async def _admit(self, sid: str) -> bool:
        verdict = self.limiter.check(self._connection(sid))
        self._sweep()
        if verdict is Verdict.ALLOW:
            return True
        self.metrics.client_events_refused.labels("rate_limited").inc()
        if verdict is Verdict.DISCONNECT:
            self.metrics.flood_disconnects.inc()
            log.warning("client_flood_disconnected", sid=sid)
            if self._disconnect is not None:
                await self._disconnect(sid)
        return False
