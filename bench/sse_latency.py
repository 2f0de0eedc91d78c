"""SSE delivery latency next to Socket.IO's, publish -> receive, on one real gateway.

    .venv/bin/python bench/sse_latency.py [--signals 200] [--rate 50] [--clients 5]

Starts its own redis-server and one gateway on free ports, connects ``--clients``
python-socketio clients (WebSocket) and as many SSE clients (httpx streaming GET on
/api/signals/stream), publishes signals through the monitor's atomic publish script
(history + offset, as the monitor does) carrying a send timestamp, and prints latency
percentiles per transport plus a delivery check (missing / duplicates / out of order).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# The Socket.IO side is timed exactly as bench/relay_latency.py times it.
from relay_latency import TimedClient, percentile

from common.constants import DEFAULT_CHANNEL
from common.publish import SignalPublisher
from common.schema import make_signal
from tests.support.redis_server import ProcessRedis
from tests.support.services import ServiceProcess


class TimedSse:
    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self.signals: list[dict[str, Any]] = []
        self._ready = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as http,
            http.stream("GET", f"{self.url}/api/signals/stream") as response,
        ):
            self._ready.set()
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    data = orjson.loads(line[6:])
                    self.latencies.append(time.time() - data["sent"])
                    self.signals.append(data)

    async def connect(self) -> TimedSse:
        await self._ready.wait()
        return self

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def report(name: str, clients: list[Any], expected: int) -> None:
    latencies = [v for c in clients for v in c.latencies]
    broken = 0
    for client in clients:
        seqs = [s["seq"] for s in client.signals]
        broken += seqs != list(range(expected))
    ms = [v * 1000 for v in latencies]
    print(
        f"{name:9} clients={len(clients)} received={len(latencies)}/{expected * len(clients)} "
        f"p50={percentile(ms, 0.5):.2f}ms p90={percentile(ms, 0.9):.2f}ms "
        f"p99={percentile(ms, 0.99):.2f}ms max={max(ms):.2f}ms "
        f"clients_with_gaps_or_disorder={broken}"
    )


async def publish(url: str, count: int, rate: float) -> None:
    redis = aioredis.Redis.from_url(url)
    publisher = SignalPublisher(redis, DEFAULT_CHANNEL)
    start = time.monotonic()
    for seq in range(count):
        await asyncio.sleep(max(0.0, start + seq / rate - time.monotonic()))
        signal = make_signal(
            signal_id=f"bench:{seq}", signal_type="BUY", price=1.0, symbol="BTC", strategy="b"
        )
        await publisher.publish({**signal, "seq": seq, "sent": time.time()})
    await redis.aclose()


async def run(args: argparse.Namespace) -> None:
    redis_server = ProcessRedis()
    redis_server.start()
    env = {"REDIS_URL": redis_server.url, "TRANSPORTS": "websocket", "LOG_LEVEL": "warning"}
    gateway = ServiceProcess("gateway", env).start()
    sio: list[TimedClient] = []
    sse: list[TimedSse] = []
    try:
        for _ in range(args.clients):
            sio.append(await TimedClient(gateway.base_url).connect())  # type: ignore[arg-type]
            sse.append(await TimedSse(gateway.base_url).connect())
        await asyncio.sleep(0.5)
        await publish(redis_server.url, args.signals, args.rate)
        await asyncio.sleep(1.0)
        print(f"{args.signals} signals at {args.rate}/s, one gateway, same machine")
        report("socket.io", sio, args.signals)
        report("sse", sse, args.signals)
    finally:
        await asyncio.gather(*(c.disconnect() for c in sio), *(c.close() for c in sse))
        gateway.stop()
        redis_server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--clients", type=int, default=5)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
