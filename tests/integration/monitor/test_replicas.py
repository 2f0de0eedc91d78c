"""Three real monitor processes on one Redis: split, takeover after SIGKILL, release on SIGTERM."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from common.constants import DEFAULT_CHANNEL, lease_key
from tests.conftest import ServiceFactory

SYMBOLS = [f"T{i}" for i in range(6)]
TTL_S = 1.5
MONITOR_ENV: dict[str, Any] = {
    "symbols": ",".join(SYMBOLS),
    "strategies": "sma_cross,rsi",
    "strategy_params": '{"sma_cross": {"fast": 2, "slow": 5}, "rsi": {"period": 3}}',
    "tick_interval_s": 0.05,
    "lease_ttl_s": TTL_S,
    "shutdown_grace_s": 5,
}


class Recorder:
    """Every signal published on the channel, as received by a plain subscriber."""

    def __init__(self) -> None:
        self.signals: list[dict[str, Any]] = []

    def ids(self) -> Counter[str]:
        return Counter(s["id"] for s in self.signals)

    def symbols_since(self, since: float) -> set[str]:
        return {s["symbol"] for s in self.signals if s["_received"] >= since}


@pytest.fixture
async def recorder(redis_client: aioredis.Redis) -> AsyncIterator[Recorder]:
    rec = Recorder()
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(DEFAULT_CHANNEL)

    async def listen() -> None:
        async for message in pubsub.listen():
            if message["type"] == "message":
                rec.signals.append({**orjson.loads(message["data"]), "_received": time.time()})

    task = asyncio.create_task(listen())
    yield rec
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await pubsub.aclose()


async def owners(client: aioredis.Redis) -> dict[str, str | None]:
    values = await client.mget([lease_key(DEFAULT_CHANNEL, s) for s in SYMBOLS])
    return {s: v.decode() if v else None for s, v in zip(SYMBOLS, values, strict=True)}


async def wait_until(predicate: Any, timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while not await predicate():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not {what} within {timeout_s}s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_three_replicas_split_take_over_and_never_publish_twice(
    service_factory: ServiceFactory,
    redis_client: aioredis.Redis,
    recorder: Recorder,
) -> None:
    monitors = {
        name: service_factory("monitor", replica_id=name, **MONITOR_ENV)
        for name in ("m0", "m1", "m2")
    }

    async def fair() -> bool:
        held = Counter((await owners(redis_client)).values())
        return held == Counter({"m0": 2, "m1": 2, "m2": 2})

    await wait_until(fair, 10, "split 2/2/2")

    async def all_signal() -> bool:
        return recorder.symbols_since(0) == set(SYMBOLS)

    await wait_until(all_signal, 15, "signalling on every symbol")

    orphaned = {s for s, o in (await owners(redis_client)).items() if o == "m2"}
    monitors["m2"].kill()
    killed_at = time.time()

    async def taken_over() -> bool:
        current = await owners(redis_client)
        return all(current[s] in {"m0", "m1"} for s in orphaned)

    takeover_s = await wait_until(taken_over, TTL_S * 3, "taken over")
    print(f"takeover after SIGKILL: {takeover_s:.2f}s (lease TTL {TTL_S}s)")
    # Design bound: TTL_S. The slack covers this test's polling and a loaded 2-core machine.
    assert takeover_s <= TTL_S + 0.3

    async def resumed() -> bool:
        return orphaned <= recorder.symbols_since(killed_at + takeover_s)

    await wait_until(resumed, 10, "signalling again on the orphaned symbols")
    ticks = sum(
        monitors[m].metric("qs_monitor_ticks_total", {"symbol": s})
        for m in ("m0", "m1")
        for s in orphaned
    )
    assert ticks > 0

    # SIGTERM releases at once: the survivor takes over well before the TTL runs out.
    leaving = {s for s, o in (await owners(redis_client)).items() if o == "m1"}
    assert monitors["m1"].terminate() == 0
    released_at = time.monotonic()

    async def handed_over() -> bool:
        current = await owners(redis_client)
        return all(current[s] == "m0" for s in leaving)

    await wait_until(handed_over, TTL_S * 2, "handed over after SIGTERM")
    handover_s = time.monotonic() - released_at
    print(f"handover after SIGTERM: {handover_s:.2f}s")
    assert handover_s < TTL_S
    events = [e["event"] for e in monitors["m1"].log_events()]
    assert "leases_released" in events and events[-1] == "monitor_stopped"

    await asyncio.sleep(0.5)
    repeated = {i: n for i, n in recorder.ids().items() if n > 1}
    print(f"signals: {len(recorder.signals)}, distinct ids: {len(recorder.ids())}")
    assert repeated == {}
    assert monitors["m0"].readyz() == 200
