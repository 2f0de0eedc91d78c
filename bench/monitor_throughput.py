"""How many ticks per second one monitor sustains, and how long a takeover takes.

    .venv/bin/python bench/monitor_throughput.py [--symbols 100] [--seconds 10] [--ttl 10]

Part 1 runs one in-process monitor (sim source, tick interval far below what it can keep
up with, so it runs flat out) on a real redis-server and counts bars processed end to end:
strategies evaluated, recent bars written to Redis, signals published. Part 2 starts three
real ``python -m monitor`` processes, SIGKILLs one and times until its symbols are leased
and ticking on the survivors. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "services"), str(ROOT)]

import redis  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402

from common.constants import DEFAULT_CHANNEL, lease_key  # noqa: E402
from common.logging import configure_logging  # noqa: E402
from monitor.settings import MonitorSettings  # noqa: E402
from monitor.worker import Worker  # noqa: E402
from tests.support.redis_server import ProcessRedis, free_port  # noqa: E402
from tests.support.services import ServiceProcess  # noqa: E402


async def run_level(
    url: str, symbols: list[str], strategies: str, demand: float, seconds: float
) -> tuple[float, float, int, float]:
    """Drive ``demand`` ticks/s; return achieved ticks/s, signals/s, final buffer, mean ms."""
    settings = MonitorSettings(
        redis_url=url,
        port=free_port(),
        host="127.0.0.1",
        symbols=symbols,
        strategies=strategies.split(","),
        tick_interval_s=len(symbols) / demand,
        lease_ttl_s=10,
        signal_channel=f"bench:{strategies}:{demand}",
    )
    worker = Worker(settings, CollectorRegistry())
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    while len(worker.runners) < len(symbols):  # noqa: ASYNC110 - polling a plain dict
        await asyncio.sleep(0.1)
    await asyncio.sleep(2)  # warm-ups done, steady state
    total = worker.metrics.total
    sample = worker.metrics.registry.get_sample_value
    before = (
        total("qs_monitor_ticks_total"),
        total("qs_monitor_signals_published_total"),
        sample("qs_monitor_tick_to_publish_seconds_count") or 0,
        sample("qs_monitor_tick_to_publish_seconds_sum") or 0,
    )
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - started
    after = (
        total("qs_monitor_ticks_total"),
        total("qs_monitor_signals_published_total"),
        sample("qs_monitor_tick_to_publish_seconds_count") or 0,
        sample("qs_monitor_tick_to_publish_seconds_sum") or 0,
    )
    depth = worker.publisher.depth
    stop.set()
    await task
    ticks, signals, count, latency = (a - b for a, b in zip(after, before, strict=True))
    return ticks / elapsed, signals / elapsed, depth, 1000 * latency / max(count, 1)


async def throughput(url: str, symbols: list[str], strategies: str, seconds: float) -> None:
    """Raise the offered rate until the monitor falls behind; report the last rate it held."""
    sustained = 0.0
    for demand in (500, 1000, 2000, 4000, 8000, 16000):
        achieved, signals, depth, mean_ms = await run_level(
            url, symbols, strategies, demand, seconds
        )
        held = achieved >= 0.9 * demand and depth < 100
        print(
            f"  offered {demand:>6,} ticks/s -> {achieved:>8,.0f} ticks/s, "
            f"{signals:>6,.0f} signals/s, buffer {depth:>5}, mean tick-to-publish "
            f"{mean_ms:7.2f} ms {'ok' if held else 'FALLS BEHIND'}"
        )
        if not held:
            break
        sustained = achieved
    print(
        f"throughput  symbols={len(symbols)} strategies={strategies}: "
        f"sustains {sustained:,.0f} ticks/s"
    )


def takeover(url: str, ttl_s: float, n_symbols: int) -> None:
    symbols = [f"K{i}" for i in range(n_symbols)]
    env = {
        "REDIS_URL": url,
        "SYMBOLS": ",".join(symbols),
        "LEASE_TTL_S": str(ttl_s),
        "TICK_INTERVAL_S": "0.1",
    }
    procs = {
        name: ServiceProcess("monitor", {**env, "REPLICA_ID": name}).start()
        for name in ("r0", "r1", "r2")
    }
    client = redis.Redis.from_url(url)
    keys = [lease_key(DEFAULT_CHANNEL, s) for s in symbols]
    try:
        while None in (owners := client.mget(keys)) or len(set(owners)) < 3:
            time.sleep(0.05)
        time.sleep(ttl_s / 2)  # leases mid-life: the typical case, not the best one
        orphaned = [s for s, v in zip(symbols, client.mget(keys), strict=True) if v == b"r2"]
        procs["r2"].kill()
        killed = time.monotonic()
        while any(
            v in (None, b"r2")
            for v in client.mget([lease_key(DEFAULT_CHANNEL, s) for s in orphaned])
        ):
            time.sleep(0.01)
        leased = time.monotonic() - killed
        while (
            sum(
                procs[r].metric("qs_monitor_ticks_total", {"symbol": s})
                for r in ("r0", "r1")
                for s in orphaned[:1]
            )
            == 0
        ):
            time.sleep(0.01)
        ticking = time.monotonic() - killed
        print(
            f"takeover    lease_ttl={ttl_s}s: {len(orphaned)} symbols re-leased after "
            f"{leased:.2f}s, first tick on the survivors after {ticking:.2f}s"
        )
    finally:
        client.close()
        for proc in procs.values():
            proc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--ttl", type=float, default=10.0)
    args = parser.parse_args()
    configure_logging("warning", "json")
    server = ProcessRedis()
    server.start()
    os.environ.setdefault("LOG_LEVEL", "warning")
    try:
        symbols = [f"SYM{i:03d}" for i in range(args.symbols)]
        asyncio.run(throughput(server.url, symbols, "sma_cross", args.seconds))
        asyncio.run(
            throughput(
                server.url, symbols, "sma_cross,ema_cross,rsi,macd_cross,bollinger", args.seconds
            )
        )
        takeover(server.url, args.ttl, 30)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
