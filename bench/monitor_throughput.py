"""How many ticks per second one monitor sustains, and how long a takeover takes.

    .venv/bin/python bench/monitor_throughput.py [--symbols 100] [--seconds 10] [--repeat 3]
        [--strategies sma_cross,...] [--profile FILE] [--code DIR] [--nice N] [--takeover]

Each repetition runs one in-process monitor (sim source, all five strategies by default) on
a real redis-server on a free port, twice: offered ``--offered`` ticks/s (the target, 10,000:
held when it processes at least 90 % of them with a bounded publish buffer), then flat out
(``--flat-out`` ticks/s offered, far above what it can do: the sim source skips the bars it
is late for, so the achieved rate is the ceiling). Counted end to end: strategies evaluated,
bars written, signals published; Redis round trips by a counting connection (every command
or pipeline the monitor sends is one), Redis commands from INFO commandstats, the CPU of the
monitor (also per tick) and of redis-server, and the share of the time the monitor was
runnable but waiting for a CPU that other jobs held (``/proc/self/schedstat``). Prints each
run and the median and spread over the repetitions. ``--profile`` writes a cProfile of the
first flat-out run. ``--code DIR`` runs the monitor from another tree (``git archive <commit>
services | tar -x -C DIR``) to measure a "before". ``--nice`` renices the bench (a negative
value needs root: it takes CPU from the other jobs). ``--takeover`` also starts three real
``python -m monitor`` processes, SIGKILLs one and times until its symbols are leased and
ticking on the survivors. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ALL_STRATEGIES = "sma_cross,ema_cross,rsi,macd_cross,bollinger"


@dataclass
class Run:
    offered: float
    ticks_s: float
    signals_s: float
    depth: int
    mean_ms: float
    round_trips_s: float
    commands_s: float
    cpu_monitor: float
    cpu_redis: float
    cpu_wait: float
    symbols: int

    @property
    def held(self) -> bool:
        return self.ticks_s >= 0.9 * self.offered and self.depth < 100

    @property
    def cpu_us_per_tick(self) -> float:
        """The monitor's CPU per tick: what a full core would sustain, on a shared machine."""
        return 1e6 * self.cpu_monitor / max(self.ticks_s, 1e-9)

    @property
    def per_bar_close(self) -> float:
        return self.round_trips_s / max(self.ticks_s / self.symbols, 1e-9)

    def line(self) -> str:
        return (
            f"offered {self.offered:>6,.0f}/s -> {self.ticks_s:>7,.0f} ticks/s"
            f" {'held' if self.held else 'FALLS BEHIND':12} {self.signals_s:>6,.0f} signals/s,"
            f" buffer {self.depth:>5}, tick-to-publish {self.mean_ms:6.1f} ms,"
            f" {self.round_trips_s:>6,.0f} round trips/s ({self.per_bar_close:.2f} per bar"
            f" close), {self.commands_s:>7,.0f} Redis commands/s,"
            f" CPU monitor {self.cpu_monitor:.2f} ({self.cpu_us_per_tick:.0f} us/tick,"
            f" waiting for a CPU {self.cpu_wait:.0%}) redis {self.cpu_redis:.2f}"
        )


def counting_connection(base: type) -> type:
    """A connection class counting what it sends: one call is one round trip."""

    class Counting(base):  # type: ignore[misc, valid-type]
        sent = 0

        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            Counting.sent += 1
            await super().send_packed_command(command, check_health)

    return Counting


def waited_s() -> float:
    """Seconds this process's main thread was runnable but waiting for a CPU (taken by
    other jobs on a shared machine): ``/proc/self/schedstat``, 0 where there is none."""
    try:
        return int(Path("/proc/self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def server_counters(client: Any) -> tuple[float, float]:
    """Commands processed (less INFO's own) and CPU seconds used by redis-server."""
    stats = client.info("commandstats")
    commands = sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")
    cpu = client.info("cpu")
    return commands, cpu["used_cpu_user"] + cpu["used_cpu_sys"]


async def run_level(
    url: str,
    symbols: list[str],
    strategies: str,
    demand: float,
    seconds: float,
    *,
    profile: cProfile.Profile | None = None,
) -> Run:
    import redis
    from prometheus_client import CollectorRegistry

    from monitor.settings import MonitorSettings
    from monitor.worker import Worker
    from tests.support.redis_server import free_port

    settings = MonitorSettings(
        redis_url=url,
        port=free_port(),
        host="127.0.0.1",
        symbols=symbols,
        strategies=strategies.split(","),
        tick_interval_s=len(symbols) / demand,
        lease_ttl_s=10,
        signal_channel=f"bench:{demand}:{time.monotonic_ns()}",
    )
    worker = Worker(settings, CollectorRegistry())
    pool = worker.redis.connection_pool
    pool.connection_class = counting = counting_connection(pool.connection_class)
    admin = redis.Redis.from_url(url)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    while len(worker.runners) < len(symbols):  # noqa: ASYNC110 - polling a plain dict
        await asyncio.sleep(0.1)
    await asyncio.sleep(2)  # warm-ups done, steady state
    m = worker.metrics
    sample = m.registry.get_sample_value

    def counters() -> tuple[float, ...]:
        return (
            m.total("qs_monitor_ticks_total"),
            m.total("qs_monitor_signals_published_total"),
            sample("qs_monitor_tick_to_publish_seconds_count") or 0,
            sample("qs_monitor_tick_to_publish_seconds_sum") or 0,
            counting.sent,
            *server_counters(admin),
            time.process_time(),
            waited_s(),
            time.perf_counter(),
        )

    before = counters()
    if profile is not None:
        profile.enable()
    await asyncio.sleep(seconds)
    if profile is not None:
        profile.disable()
    after = counters()
    depth = worker.publisher.depth
    stop.set()
    await task
    admin.close()
    ticks, signals, count, latency, trips, commands, redis_cpu, cpu, wait, elapsed = (
        a - b for a, b in zip(after, before, strict=True)
    )
    return Run(
        demand,
        ticks / elapsed,
        signals / elapsed,
        depth,
        1000 * latency / max(count, 1),
        trips / elapsed,
        commands / elapsed,
        cpu / elapsed,
        redis_cpu / elapsed,
        wait / elapsed,
        len(symbols),
    )


def write_profile(profile: cProfile.Profile, path: str) -> None:
    with open(path, "w") as out:
        stats = pstats.Stats(profile, stream=out)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumtime").print_stats(30)


def summarise(label: str, runs: list[Run]) -> None:
    def spread(values: list[float], fmt: str) -> str:
        return (
            f"median {statistics.median(values):{fmt}} (min {min(values):{fmt}},"
            f" max {max(values):{fmt}})"
        )

    print(
        f"{label}: ticks/s {spread([r.ticks_s for r in runs], ',.0f')};"
        f" round trips per bar close {spread([r.per_bar_close for r in runs], '.2f')};"
        f" monitor CPU us/tick {spread([r.cpu_us_per_tick for r in runs], '.0f')};"
        f" held {sum(r.held for r in runs)}/{len(runs)}"
    )


async def throughput(url: str, args: argparse.Namespace) -> None:
    symbols = [f"SYM{i:03d}" for i in range(args.symbols)]
    print(f"throughput  symbols={len(symbols)} strategies={args.strategies}")
    target: list[Run] = []
    flat: list[Run] = []
    for rep in range(1, args.repeat + 1):
        run = await run_level(url, symbols, args.strategies, args.offered, args.seconds)
        print(f"  rep {rep} target   {run.line()}")
        target.append(run)
        profile = cProfile.Profile() if args.profile and rep == 1 else None
        run = await run_level(
            url, symbols, args.strategies, args.flat_out, args.seconds, profile=profile
        )
        print(f"  rep {rep} flat out {run.line()}")
        flat.append(run)
        if profile is not None:
            write_profile(profile, args.profile)
    summarise(f"  offered {args.offered:,.0f}/s", target)
    summarise("  flat out", flat)


def takeover(url: str, ttl_s: float, n_symbols: int) -> None:
    import redis

    from common.constants import DEFAULT_CHANNEL, lease_key
    from tests.support.services import ServiceProcess

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
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--strategies", default=ALL_STRATEGIES)
    parser.add_argument("--offered", type=float, default=10_000, help="target ticks/s")
    parser.add_argument("--flat-out", type=float, default=40_000, help="ticks/s offered")
    parser.add_argument("--profile", help="write a cProfile of the first flat-out run here")
    parser.add_argument("--code", type=Path, help="monitor code from this tree (a 'before')")
    parser.add_argument("--takeover", action="store_true", help="also time a takeover")
    parser.add_argument("--ttl", type=float, default=10.0)
    parser.add_argument("--nice", type=int, default=0, help="renice this process (root: < 0)")
    args = parser.parse_args()
    if args.nice:
        os.nice(args.nice)
    sys.path[:0] = [str((args.code or ROOT) / "services"), str(ROOT)]
    os.environ.setdefault("LOG_LEVEL", "warning")

    from common.logging import configure_logging
    from tests.support.redis_server import ProcessRedis

    configure_logging("warning", "json")
    server = ProcessRedis()
    server.start()
    try:
        print(f"code: {args.code or ROOT}")
        if args.repeat > 0:  # --repeat 0 --takeover: the takeover alone
            asyncio.run(throughput(server.url, args))
        if args.takeover:
            takeover(server.url, args.ttl, 30)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
