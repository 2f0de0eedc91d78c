"""Clients that stop reading must not grow the gateway's memory or delay anyone else.

200 healthy official JS clients (one Node process) receive small signals; then a few raw
WebSocket clients that never read join and are flooded with large signals. The bounded
per-client queue must drop the non-readers, keep the gateway's memory bounded, and leave
the healthy clients' latency within 2x of the run without them.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection

from common.constants import DEFAULT_CHANNEL
from tests.conftest import ServiceFactory
from tests.support.clients import JS_DIR, raw_socketio_websocket

pytestmark = pytest.mark.e2e

HEALTHY = 200
NON_READERS = 5
QUEUE_MAX = 50
BULK_PAD = "x" * 16_000


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def publish_phase(
    client: aioredis.Redis, phase: str, seconds: float, bulk_per_tick: int = 0
) -> None:
    """Small BTC signals at 20/s (plus large BULK ones) for ``seconds``."""
    start = time.monotonic()
    for tick in range(int(seconds * 20)):
        await asyncio.sleep(max(0.0, start + tick / 20 - time.monotonic()))
        small = {"type": "BUY", "price": 1, "symbol": "BTC", "phase": phase, "sent": time.time()}
        await client.publish(DEFAULT_CHANNEL, orjson.dumps(small))
        for _ in range(bulk_per_tick):
            bulk = {"type": "SELL", "price": 2, "symbol": "BULK", "pad": BULK_PAD}
            await client.publish(DEFAULT_CHANNEL, orjson.dumps(bulk))


def start_swarm(url: str) -> subprocess.Popen[str]:
    swarm = subprocess.Popen(
        ["node", str(JS_DIR / "swarm.mjs"), url, str(HEALTHY), "BTC"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=JS_DIR,
    )
    assert swarm.stdout is not None
    assert json.loads(swarm.stdout.readline()) == {"ready": True}
    return swarm


def swarm_summary(swarm: subprocess.Popen[str]) -> dict[str, Any]:
    assert swarm.stdin is not None and swarm.stdout is not None
    swarm.stdin.write("done\n")
    swarm.stdin.flush()
    summary: dict[str, Any] = json.loads(swarm.stdout.readline())["summary"]
    swarm.wait(10)
    return summary


async def test_non_reading_clients_are_dropped_and_do_not_hurt_others(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway", transports="websocket", client_queue_max=QUEUE_MAX)
    assert gateway.proc is not None
    swarm = await asyncio.to_thread(start_swarm, gateway.base_url)
    bad: list[ClientConnection] = []
    try:
        await publish_phase(redis_client, "alone", 5)
        rss_before = rss_mb(gateway.proc.pid)
        bad = [await raw_socketio_websocket(gateway.port, ["BULK"]) for _ in range(NON_READERS)]
        await publish_phase(redis_client, "with_non_readers", 8, bulk_per_tick=5)
        rss_peak = rss_mb(gateway.proc.pid)
        await asyncio.sleep(0.5)  # the last signals are still on their way
        summary = await asyncio.to_thread(swarm_summary, swarm)
    finally:
        swarm.kill()
        for ws in bad:
            ws.transport.abort()
    alone, loaded = summary["alone"], summary["with_non_readers"]
    dropped = gateway.metric("qs_gateway_slow_clients_dropped_total")
    print(
        f"\n[slow clients] healthy={HEALTHY} non_readers={NON_READERS} dropped={dropped} "
        f"p50/p99 ms alone={alone['p50']}/{alone['p99']} "
        f"with non-readers={loaded['p50']}/{loaded['p99']} "
        f"rss MB before={rss_before:.1f} peak={rss_peak:.1f}"
    )
    assert alone["n"] == HEALTHY * 100 and loaded["n"] == HEALTHY * 160  # nothing lost
    assert dropped == NON_READERS
    # 2x, plus 5 ms so that timer granularity on an idle run cannot decide the outcome.
    assert loaded["p99"] <= 2 * alone["p99"] + 5
    # Unbounded, the queues grew ~12 MB in 8 s here (the kernel's socket buffers hold the
    # rest of the 5 x 800 x 16 KB); with the bound the growth stays well under 1 MB.
    assert rss_peak - rss_before < 6
