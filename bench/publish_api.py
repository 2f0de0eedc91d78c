"""Publish-API latency and throughput against a real gateway on 127.0.0.1.

    .venv/bin/python bench/publish_api.py [--seconds 5] [--concurrency 8] [--batch 100]

Starts its own redis-server and one ``python -m gateway`` process on free ports, then for
each mode (one signal per request, then batches of ``--batch``) runs ``--concurrency``
keep-alive HTTP clients for ``--seconds`` each and prints request latency (p50/p99) and
signals per second. Every request must answer 200; each signal gets a fresh id, so all are
real publishes (history entry + PUBLISH), not duplicates. Bounded: it stops itself after
the two runs and removes what it started. Prints numbers; asserts nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "services"), str(ROOT)]

import httpx  # noqa: E402

from tests.support.redis_server import ProcessRedis  # noqa: E402
from tests.support.services import ServiceProcess  # noqa: E402

SECRET = "bench-publisher-secret-0123456789"


def body(batch: int) -> list[dict[str, Any]] | dict[str, Any]:
    items = [
        {"id": uuid.uuid4().hex, "type": "BUY", "price": 100.5, "symbol": "BTC-USD", "v": 1}
        for _ in range(batch)
    ]
    return items[0] if batch == 1 else items


async def worker(http: httpx.AsyncClient, batch: int, until: float, latencies: list[float]) -> int:
    sent = 0
    while time.monotonic() < until:
        payload = body(batch)
        started = time.perf_counter()
        response = await http.post("/api/signals", json=payload)
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"publish failed: {response.status_code} {response.text[:200]}")
        sent += batch
    return sent


async def run(base: str, batch: int, seconds: float, concurrency: int) -> None:
    headers = {"Authorization": f"Bearer {SECRET}"}
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as http:
        await worker(http, batch, time.monotonic() + 0.5, [])  # warm up connections
        started = time.monotonic()
        until = started + seconds
        counts = await asyncio.gather(
            *(worker(http, batch, until, latencies) for _ in range(concurrency))
        )
        elapsed = time.monotonic() - started
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"batch={batch:<4} requests={len(latencies):<6} "
        f"p50={cuts[49] * 1000:6.2f} ms  p99={cuts[98] * 1000:6.2f} ms  "
        f"throughput={sum(counts) / elapsed:8.0f} signals/s  "
        f"({len(latencies) / elapsed:.0f} requests/s, {concurrency} concurrent clients)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    redis = ProcessRedis()
    redis.start()
    env = {
        "REDIS_URL": redis.url,
        "PUBLISH_TOKENS": f"bench:{SECRET}",
        "PUBLISH_RATE_PER_S": "1000000",
        "PUBLISH_BURST": "1000000",
        "PUBLISH_BATCH_MAX": str(max(100, args.batch)),
        "LOG_LEVEL": "warning",
    }
    gateway = ServiceProcess("gateway", env)
    try:
        gateway.start()
        for batch, concurrency in ((1, 1), (1, args.concurrency), (args.batch, 1)):
            await run(gateway.base_url, batch, args.seconds, concurrency)
    finally:
        gateway.stop()
        redis.stop()


if __name__ == "__main__":
    asyncio.run(main())
