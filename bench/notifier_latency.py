"""Notifier: publish -> webhook receipt latency, and one replica's throughput.

    .venv/bin/python bench/notifier_latency.py [--signals 300] [--rate 20] [--burst 3000]

Starts a redis-server, a loopback aiohttp receiver in this process (answering 200 at once
and noting when each request arrived: tests/support/receivers.py's threaded server tops out
near 230 requests/s, below what the notifier does) and one real ``python -m notifier``
with the example destinations file pointed at it. Part 1 publishes ``--signals`` signals
at ``--rate`` per second through ``common.publish.SignalPublisher`` (the monitor's atomic
script) and measures, per signal,
the time from just before the publish to the receiver reading the request: p50/p99/max.
Part 2 publishes ``--burst`` signals at once (MULTI batches) and divides them by the time
from the first to the last receipt: what one replica delivers per second, serially, to a
fast receiver. Bounded (--timeout); prints numbers, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "services"), str(ROOT)]

import orjson  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
from aiohttp import web  # noqa: E402

from common.constants import DEFAULT_CHANNEL  # noqa: E402
from common.publish import SignalPublisher  # noqa: E402
from common.schema import make_signal  # noqa: E402
from tests.integration.notifier.conftest import (  # noqa: E402
    SECRET,
    SECRET_ENV,
    wait_for_group,
    write_config,
)
from tests.support.redis_server import ProcessRedis  # noqa: E402
from tests.support.services import ServiceProcess  # noqa: E402


class Receiver:
    """Records (arrival time, parsed body) of every POST; answers 200 at once."""

    def __init__(self) -> None:
        self.got: list[tuple[float, dict[str, Any]]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.got.append((time.time(), orjson.loads(body)))
        return web.Response(status=200)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(self, count: int, timeout_s: float) -> list[tuple[float, dict[str, Any]]]:
        deadline = time.monotonic() + timeout_s
        while len(self.got) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.got)} requests after {timeout_s} s, not {count}")
            await asyncio.sleep(0.01)
        return list(self.got)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_signal(i: int, part: str) -> dict[str, object]:
    return make_signal(
        signal_id=f"BTC-USD:bench-{part}:{i}",
        signal_type="BUY",
        price=60_000.0 + i,
        symbol="BTC-USD",
        strategy="sma_cross",
        ts=time.time(),
        sent=time.time(),
    )


async def latency(publisher: SignalPublisher, rx: Receiver, count: int, rate: float) -> None:
    for i in range(count):
        await publisher.publish(bench_signal(i, "lat"))
        await asyncio.sleep(1 / rate)
    got = await rx.wait_for(count, timeout_s=30)
    ms = [(at - body["sent"]) * 1000 for at, body in got]
    print(
        f"latency publish -> webhook receipt, {count} signals at {rate:g}/s: "
        f"p50 {percentile(ms, 0.5):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, "
        f"max {max(ms):.1f} ms"
    )


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def throughput(publisher: SignalPublisher, rx: Receiver, burst: int, pid: int) -> None:
    before = len(rx.got)
    cpu_before = cpu_s(pid)
    signals = [bench_signal(i, "burst") for i in range(burst)]
    for start in range(0, burst, 500):
        await publisher.publish_batch(signals[start : start + 500])
    got = (await rx.wait_for(before + burst, timeout_s=120))[before:]
    span = got[-1][0] - got[0][0]
    cpu_ms = (cpu_s(pid) - cpu_before) * 1000 / burst
    ordered = [body["id"] for _, body in got] == [s["id"] for s in signals]
    print(
        f"throughput, one replica, {burst} signals to a local receiver answering at once: "
        f"{burst / span:.0f} signals/s ({span:.2f} s; in order: {ordered}); the notifier's "
        f"CPU per delivery {cpu_ms:.2f} ms (at most {1000 / cpu_ms:.0f}/s on one free core)"
    )


async def run(args: argparse.Namespace) -> None:
    server = ProcessRedis()
    server.start()
    rx = Receiver()
    await rx.start()
    workdir = Path(tempfile.mkdtemp(prefix="qs-notifier-bench-"))
    config = write_config(workdir / "notifier.yaml", f"{rx.url}/hook")
    env = {
        "REDIS_URL": server.url,
        "NOTIFIER_CONFIG": str(config),
        "LOG_LEVEL": "warning",
        SECRET_ENV: SECRET,
    }
    notifier = ServiceProcess("notifier", env).start()
    client = aioredis.Redis.from_url(server.url)
    try:
        await wait_for_group(client)
        publisher = SignalPublisher(client, DEFAULT_CHANNEL)
        await latency(publisher, rx, args.signals, args.rate)
        assert notifier.proc is not None
        await throughput(publisher, rx, args.burst, notifier.proc.pid)
    finally:
        await client.aclose()
        notifier.stop()
        await rx.stop()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signals", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--burst", type=int, default=3000)
    parser.add_argument("--timeout", type=float, default=240.0)
    args = parser.parse_args()
    asyncio.run(asyncio.wait_for(run(args), args.timeout))


if __name__ == "__main__":
    main()
