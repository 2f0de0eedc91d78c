"""What Redis spends per signal, per subscribed gateway and per resume: the inputs of
docs/capacity.md, measured against a real redis-server on 127.0.0.1.

    .venv/bin/python bench/redis_capacity.py [--seconds 5] [--rate 200] [--json]

Starts its own redis-server on a free port and measures, from Redis' own CPU counters
(``INFO cpu``: used_cpu_user + used_cpu_sys, main thread and children):

1. ``publish``: the project's atomic publish (common.publish.SignalPublisher: dedupe key,
   history XADD with trimming, PUBLISH) at ``--rate`` signals/s with 1, 10, 100 and 1,000
   subscribed connections standing in for gateway replicas (each subscribes to the signal
   channel and reads everything it is sent, as a gateway does). The slope over subscribers
   is Redis' cost per (signal x gateway), the intercept its cost per signal.
2. ``publish_max``: publishes/s when one publisher sends batches of 100 as fast as it can
   (MULTI/EXEC of the atomic script, 1 subscriber).
3. ``resume``: XRANGE of 100 entries from a full 10,000-entry history (what a client's
   resume costs), as ops/s from ``redis-benchmark`` with 50 connections.

Bounded: each step runs ``--seconds``; everything it starts is stopped at the end. Prints
numbers; asserts nothing. The machine may be shared: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "services"), str(ROOT)]

import redis.asyncio as aioredis  # noqa: E402

from common.constants import DEFAULT_CHANNEL, history_key  # noqa: E402
from common.publish import SignalPublisher  # noqa: E402
from tests.support.redis_server import ProcessRedis  # noqa: E402

SUBSCRIBERS = (1, 10, 100, 1000)
#: A signal of the monitor's v2 form is 300-500 bytes of JSON; this one is 400.
PAD = "x" * 230


def signal() -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex,
        "type": "BUY",
        "price": 60112.4,
        "symbol": "BTC-USD",
        "strategy": "sma_cross",
        "timeframe": "1m",
        "reason": PAD,
    }


async def redis_cpu_s(client: aioredis.Redis) -> float:
    """CPU seconds of Redis' main thread, the one that serves every command."""
    info = await client.info("cpu")
    return float(info["used_cpu_user_main_thread"]) + float(info["used_cpu_sys_main_thread"])


async def idle_cpu_pct(port: int, seconds: float) -> float:
    """Redis' own background work (serverCron at hz 10), subtracted from every step."""
    client = aioredis.Redis(port=port)
    try:
        before = await redis_cpu_s(client)
        await asyncio.sleep(seconds)
        return 100 * (await redis_cpu_s(client) - before) / seconds
    finally:
        await client.aclose()


class Subscriber:
    """One raw RESP connection subscribed to the channel, counting the bytes it drains."""

    def __init__(self) -> None:
        self.received = 0
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, port: int, channel: str) -> None:
        reader, self._writer = await asyncio.open_connection("127.0.0.1", port)
        name = channel.encode()
        self._writer.write(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(name), name))
        await self._writer.drain()
        self._task = asyncio.create_task(self._drain(reader))

    async def _drain(self, reader: asyncio.StreamReader) -> None:
        while chunk := await reader.read(65536):
            self.received += len(chunk)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._writer is not None:
            self._writer.close()


async def publish_at_rate(publisher: SignalPublisher, rate: int, seconds: float) -> int:
    sent = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        due = int(elapsed * rate) + 1
        while sent < due:
            await publisher.publish(signal())
            sent += 1
        await asyncio.sleep(1 / rate)
    return sent


async def measure_publish(
    port: int, subscribers: int, rate: int, seconds: float, idle_pct: float
) -> dict[str, Any]:
    client = aioredis.Redis(port=port)
    subs = [Subscriber() for _ in range(subscribers)]
    try:
        for sub in subs:
            await sub.start(port, DEFAULT_CHANNEL)
        await client.delete(history_key(DEFAULT_CHANNEL))
        publisher = SignalPublisher(client, DEFAULT_CHANNEL)
        before, start = await redis_cpu_s(client), time.perf_counter()
        sent = await publish_at_rate(publisher, rate, seconds)
        await asyncio.sleep(0.2)  # let the last messages reach every subscriber
        elapsed = time.perf_counter() - start
        cpu = await redis_cpu_s(client) - before - idle_pct / 100 * elapsed
        return {
            "step": "publish",
            "subscribers": subscribers,
            "signals": sent,
            "redis_cpu_pct": round(100 * cpu / elapsed, 1),
            "redis_cpu_us_per_signal": round(1e6 * cpu / sent, 1),
            "bytes_per_subscriber": sum(s.received for s in subs) // subscribers,
        }
    finally:
        for sub in subs:
            await sub.stop()
        await client.aclose()


async def measure_publish_max(port: int, seconds: float) -> dict[str, Any]:
    client = aioredis.Redis(port=port)
    sub = Subscriber()
    try:
        await sub.start(port, DEFAULT_CHANNEL)
        publisher = SignalPublisher(client, DEFAULT_CHANNEL)
        before = await redis_cpu_s(client)
        sent = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            await publisher.publish_batch([signal() for _ in range(100)])
            sent += 100
        elapsed = time.perf_counter() - start
        cpu = await redis_cpu_s(client) - before
        return {
            "step": "publish_max",
            "signals_per_s": round(sent / elapsed),
            "redis_cpu_pct": round(100 * cpu / elapsed, 1),
            "redis_cpu_us_per_signal": round(1e6 * cpu / sent, 1),
        }
    finally:
        await sub.stop()
        await client.aclose()


async def fill_history(port: int, entries: int) -> None:
    client = aioredis.Redis(port=port)
    try:
        publisher = SignalPublisher(client, DEFAULT_CHANNEL, history_maxlen=entries)
        for _ in range(entries // 100):
            await publisher.publish_batch([signal() for _ in range(100)])
    finally:
        await client.aclose()


def redis_benchmark_rps(port: int, seconds: float, *command: str) -> float:
    tool = shutil.which("redis-benchmark")
    assert tool is not None
    cmd = [tool, "-p", str(port), "-c", "50", "-n", "20000", "--csv", *command]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 10, check=True)
    # --csv: a header line, then "name","rps",...
    return float(out.stdout.strip().splitlines()[-1].split(",")[1].strip('"'))


def measure_resume(port: int, seconds: float) -> dict[str, Any]:
    """A resume reads the entries after the client's offset: 100 after a long absence, a
    few after a blip (the common case when a gateway restarts and its clients reconnect)."""
    if shutil.which("redis-benchmark") is None:
        return {"step": "resume", "skipped": "redis-benchmark is not installed"}
    key = history_key(DEFAULT_CHANNEL)
    return {
        "step": "resume",
        "xrange_100_per_s": round(
            redis_benchmark_rps(port, seconds, "XRANGE", key, "-", "+", "COUNT", "100")
        ),
        "xrevrange_5_per_s": round(
            redis_benchmark_rps(port, seconds, "XREVRANGE", key, "+", "-", "COUNT", "5")
        ),
    }


async def run(seconds: float, rate: int) -> list[dict[str, Any]]:
    server = ProcessRedis(extra_args=["--maxclients", "2000"])
    server.start()
    try:
        idle = await idle_cpu_pct(server.port, seconds)
        rows: list[dict[str, Any]] = [{"step": "idle", "redis_cpu_pct": round(idle, 2)}]
        rows += [await measure_publish(server.port, n, rate, seconds, idle) for n in SUBSCRIBERS]
        rows.append(await measure_publish_max(server.port, seconds))
        await fill_history(server.port, 10_000)
        rows.append(measure_resume(server.port, seconds))
        return rows
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=int, default=200, help="signals/s in the publish step")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args()
    rows = asyncio.run(run(args.seconds, args.rate))
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return
    print(f"load average at end: {load}")
    for row in rows:
        print("  ".join(f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
