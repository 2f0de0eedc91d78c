"""Pacing of one destination: backoff bounds, the circuit breaker's states, the rate limit."""

from __future__ import annotations

import itertools
import random

import pytest

from notifier.policy import (
    RETRY_AFTER_CAP_S,
    CircuitBreaker,
    CircuitState,
    RateLimiter,
    backoff_delay,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def state(breaker: CircuitBreaker) -> CircuitState:
    """Read through a call: mypy would narrow ``breaker.state`` across the asserts."""
    return breaker.state


@pytest.mark.parametrize("attempt", range(1, 15))
def test_backoff_stays_within_half_and_all_of_its_capped_ceiling(attempt: int) -> None:
    ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
    delays = [backoff_delay(attempt, 0.5, 30.0) for _ in range(200)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert max(delays) - min(delays) > ceiling / 10  # jittered, not one value


def test_backoff_grows_then_caps() -> None:
    top = [backoff_delay(a, 0.5, 30.0, rand=lambda lo, hi: hi) for a in range(1, 10)]
    assert top == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]


def test_retry_after_is_a_floor_and_is_capped() -> None:
    low = lambda lo, hi: lo  # noqa: E731
    assert backoff_delay(1, 0.5, 30.0, retry_after_s=7, rand=low) == 7
    assert backoff_delay(8, 0.5, 30.0, retry_after_s=1, rand=low) == 15  # backoff is longer
    assert backoff_delay(1, 0.5, 30.0, retry_after_s=10**6, rand=low) == RETRY_AFTER_CAP_S


def test_circuit_opens_after_consecutive_failures_then_probes_once() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=3, open_s=10, clock=clock)
    for _ in range(2):
        breaker.failure()
    assert state(breaker) is CircuitState.CLOSED and breaker.wait_s() == 0
    breaker.success()  # resets the count
    for _ in range(2):
        breaker.failure()
    assert state(breaker) is CircuitState.CLOSED
    breaker.failure()
    assert state(breaker) is CircuitState.OPEN
    assert breaker.wait_s() == 10
    clock.now += 4
    assert state(breaker) is CircuitState.OPEN and breaker.wait_s() == 6
    clock.now += 6
    assert state(breaker) is CircuitState.HALF_OPEN and breaker.wait_s() == 0
    breaker.failure()  # the probe failed: open for a whole period again
    assert state(breaker) is CircuitState.OPEN and breaker.wait_s() == 10
    clock.now += 10
    assert state(breaker) is CircuitState.HALF_OPEN
    breaker.success()
    assert state(breaker) is CircuitState.CLOSED
    breaker.failure()  # one failure after closing does not reopen it
    assert state(breaker) is CircuitState.CLOSED


def test_rate_limiter_spaces_attempts_evenly() -> None:
    clock = Clock()
    limiter = RateLimiter(25, clock=clock)
    waits = [limiter.reserve() for _ in range(5)]
    assert waits == pytest.approx([0, 0.04, 0.08, 0.12, 0.16])
    clock.now += 1  # idle: no credit saved up beyond the next slot
    assert limiter.reserve() == 0
    assert limiter.reserve() == pytest.approx(0.04)


def test_rate_limiter_holds_the_rate_over_a_random_schedule() -> None:
    clock = Clock()
    limiter = RateLimiter(30, clock=clock)
    rng = random.Random(7)
    starts = []
    for _ in range(300):
        clock.now += rng.uniform(0, 0.05)
        wait = limiter.reserve()
        starts.append(clock.now + wait)
        clock.now += wait
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 1 / 30 - 1e-9
    for i in range(len(starts) - 30):
        assert starts[i + 30] - starts[i] >= 1 - 1e-6  # never more than 30 in any second


def test_no_rate_limit() -> None:
    limiter = RateLimiter(None)
    assert [limiter.reserve() for _ in range(100)] == [0.0] * 100
