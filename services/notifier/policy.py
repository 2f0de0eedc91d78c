"""How a destination is paced: retry backoff, circuit breaker, rate limit.

Pure and clock-injected, so unit tests drive them without sleeping; the delivery loop
(``notifier.delivery``) does the waiting.
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable

Clock = Callable[[], float]

#: A receiver's Retry-After above this is heard as this: one message must not park its
#: destination for hours (the message dead-letters after its attempts instead).
RETRY_AFTER_CAP_S = 600.0


def backoff_delay(
    attempt: int,
    initial_s: float,
    max_s: float,
    retry_after_s: float | None = None,
    rand: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based).

    Exponential, capped at ``max_s``, with "equal jitter" (between half and all of the
    ceiling): replicas retrying the same receiver spread out, yet a retry never comes
    much sooner than the schedule says. A receiver's ``Retry-After`` is a floor.
    """
    ceiling = min(max_s, initial_s * 2.0 ** max(0, attempt - 1))
    delay = rand(ceiling / 2, ceiling)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, RETRY_AFTER_CAP_S))
    return delay


class CircuitState(enum.IntEnum):
    """Values of ``qs_notifier_circuit_state``."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    """Opens after ``failures`` consecutive failed attempts and stays open ``open_s``;
    then one attempt probes (half-open): success closes it, failure opens it again.

    Delivery is serial per destination, so "one probe" needs no locking: the loop simply
    asks ``wait_s()`` before each attempt.
    """

    def __init__(self, failures: int, open_s: float, clock: Clock = time.monotonic) -> None:
        self.failures = failures
        self.open_s = open_s
        self._clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._clock() - self._opened_at >= self.open_s:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def wait_s(self) -> float:
        """Seconds until an attempt may be made (0: now)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.open_s - self._clock())

    def success(self) -> None:
        self._consecutive = 0
        self._opened_at = None

    def failure(self) -> None:
        self._consecutive += 1
        if self.state is CircuitState.HALF_OPEN or self._consecutive >= self.failures:
            # A failed probe re-opens for a full period.
            self._opened_at = self._clock()


class RateLimiter:
    """At most ``rate_per_s`` attempts per second, evenly spaced (a token bucket holding
    one token: Telegram counts per second, and a burst at the start of each second is what
    it throttles). ``None``: no limit."""

    def __init__(self, rate_per_s: float | None, clock: Clock = time.monotonic) -> None:
        self.interval_s = 0.0 if rate_per_s is None else 1.0 / rate_per_s
        self._clock = clock
        self._next_at = float("-inf")

    def reserve(self) -> float:
        """Take the next slot; returns the seconds to wait before using it."""
        if self.interval_s == 0.0:
            return 0.0
        now = self._clock()
        at = max(now, self._next_at)
        self._next_at = at + self.interval_s
        return at - now
