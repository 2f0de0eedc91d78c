"""The history layer's retries stop at their time budget, on top of the client's own."""

from __future__ import annotations

import time

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.delivery import history


async def test_retries_stop_once_the_budget_is_spent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history, "RETRY_BUDGET_S", 0.3)
    calls = 0

    async def slow_failure() -> None:
        nonlocal calls
        calls += 1
        raise RedisConnectionError("Connection closed by server.")

    started = time.monotonic()
    with pytest.raises(RedisConnectionError):
        await history.retrying(slow_failure, delays=(0.1, 0.1, 0.1, 0.1, 0.1, 0.1))
    # 0.3 s budget with 0.1 s pauses: three attempts fit (at 0, 0.1, 0.2), not seven.
    assert calls == 3
    assert time.monotonic() - started < 0.5


async def test_a_transient_failure_is_retried_until_it_passes() -> None:
    outcomes = [RedisConnectionError("dropped"), "ok"]

    async def flaky() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert await history.retrying(flaky, delays=(0.01,)) == "ok"
