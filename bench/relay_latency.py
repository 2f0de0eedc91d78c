"""Relay latency, publish -> client receive, through real gateways on this machine.

    .venv/bin/python bench/relay_latency.py [--gateways 2] [--clients 10] [--rate 100]

Starts its own redis-server and gateway processes on free ports, connects python-socketio
clients spread over the gateways, publishes signals carrying a send timestamp, and prints
latency percentiles plus a delivery check (missing / duplicates / out of order).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.constants import DEFAULT_CHANNEL
from tests.support.clients import RecordingClient
from tests.support.redis_server import ProcessRedis
from tests.support.services import ServiceProcess


class TimedClient(RecordingClient):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.latencies: list[float] = []

    async def _on_signal(self, data: dict[str, Any]) -> None:
        self.latencies.append(time.time() - data["sent"])
        self.signals.append(data)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> None:
    redis_server = ProcessRedis()
    redis_server.start()
    env = {"REDIS_URL": redis_server.url, "TRANSPORTS": "websocket", "LOG_LEVEL": "warning"}
    gateways = [ServiceProcess("gateway", env).start() for _ in range(args.gateways)]
    clients: list[TimedClient] = []
    try:
        for i in range(args.clients):
            client = TimedClient(gateways[i % len(gateways)].base_url)
            clients.append(client)
            await client.connect()
        publisher = aioredis.Redis.from_url(redis_server.url)
        interval = 1.0 / args.rate
        start = time.monotonic()
        for seq in range(args.signals):
            await asyncio.sleep(max(0.0, start + seq * interval - time.monotonic()))
            body = {"type": "BUY", "price": 100 + seq, "seq": seq, "sent": time.time()}
            await publisher.publish(DEFAULT_CHANNEL, orjson.dumps(body))
        for client in clients:
            await client.wait_for(args.signals, timeout_s=30)
        await publisher.aclose()
        report(args, clients)
    finally:
        for client in clients:
            await client.disconnect()
        for gateway in gateways:
            gateway.stop()
        redis_server.stop()


def report(args: argparse.Namespace, clients: list[TimedClient]) -> None:
    latencies = [lat for c in clients for lat in c.latencies]
    missing = sum(max(0, args.signals - len({s["seq"] for s in c.signals})) for c in clients)
    dupes = sum(len(c.signals) - len({s["seq"] for s in c.signals}) for c in clients)
    disorder = sum(
        any(a["seq"] > b["seq"] for a, b in zip(c.signals, c.signals[1:], strict=False))
        for c in clients
    )
    ms = [v * 1000 for v in latencies]
    print(
        f"gateways={args.gateways} clients={args.clients} signals={args.signals} "
        f"rate={args.rate}/s deliveries={len(latencies)}"
    )
    print(
        f"latency ms: p50={percentile(ms, 0.5):.2f} p90={percentile(ms, 0.9):.2f} "
        f"p99={percentile(ms, 0.99):.2f} max={max(ms):.2f} mean={statistics.fmean(ms):.2f}"
    )
    print(f"missing={missing} duplicates={dupes} clients_out_of_order={disorder}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateways", type=int, default=2)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--signals", type=int, default=500)
    parser.add_argument("--rate", type=float, default=100.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
