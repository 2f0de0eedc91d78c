"""The scenarios, and one measurement: one target (one or more replicas) under one scenario."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import redis
from load import LoadGen, publish_paced
from procs import PROBE, Server, cpu_seconds, cpu_split, rss_kb, target_server, wait_seconds

DRAIN_MAX_S = 5.0
DRAIN_STALL_S = 1.5


@dataclass(frozen=True)
class Scenario:
    name: str
    clients: int
    rate: float  # signals per second offered
    seconds: float  # length of the measured load
    replicas: int = 1
    settle_s: float = 1.0  # idle time before the idle-RSS sample
    note: str = ""

    @property
    def signals(self) -> int:
        return max(1, round(self.rate * self.seconds))


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("100x200", 100, 200, 12, note="100 clients, 200 signals/s"),
        Scenario("1000x20", 1000, 20, 12, note="1,000 clients, 20 signals/s"),
        Scenario("200x1000", 200, 1000, 10, note="200 clients, 1,000 signals/s offered"),
        Scenario(
            "10000idle",
            10000,
            10,
            12,
            settle_s=3.0,
            note="10,000 clients idle (RSS/connection), then 10 signals/s",
        ),
        Scenario(
            "2replicas",
            500,
            50,
            12,
            replicas=2,
            note="two replicas, 250 clients each, 50 signals/s, exactly once",
        ),
    )
}


def quick(s: Scenario) -> Scenario:
    """Shorter, and 10,000 idle clients become 3,000 (a smoke run, not the published table)."""
    clients = 3000 if s.clients >= 10000 else s.clients
    return replace(s, seconds=min(s.seconds, 4.0), clients=clients)


def _sum(values: list[float]) -> float:
    return float(sum(values))


def _drain(lg: LoadGen, expected: int, key: str = "deliveries", max_s: float = DRAIN_MAX_S) -> None:
    """Wait until every delivery arrived, or deliveries stall, or ``max_s`` passed."""
    end = time.monotonic() + max_s
    last, last_change = -1, time.monotonic()
    while time.monotonic() < end:
        count = int(lg.ask("count", "count")[key])
        if count >= expected:
            return
        if count != last:
            last, last_change = count, time.monotonic()
        elif count > 0 and time.monotonic() - last_change > DRAIN_STALL_S:
            return
        time.sleep(0.1)


def _start_servers(kind: str, replicas: int, redis_url: str, core: int) -> list[Server]:
    servers = [target_server(kind, redis_url, core) for _ in range(replicas)]
    for server in servers:
        server.start()
    for server in servers:
        server.wait_ready()
    return servers


def _probe_rows(servers: list[Server], wait_s: float = 5.0) -> list[list[float]]:
    """The fan-out timings of every replica run under fanout_probe.py (SIGUSR2 dumps them)."""
    rows: list[list[float]] = []
    for replica, server in enumerate(servers):
        path = Path(PROBE["dir"]) / f"fanout-{server.pid}.json"
        path.unlink(missing_ok=True)
        os.kill(server.pid, signal.SIGUSR2)
        deadline = time.monotonic() + wait_s
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)  # written in one call; let it finish
        with contextlib.suppress(OSError, ValueError):
            # Loop turns are numbered per process: keep two replicas' turns apart.
            dumped = json.loads(path.read_text())["rows"]
            rows.extend([*row[:4], row[4] + replica * 1e9, *row[5:]] for row in dumped)
    return rows


def measure(
    scenario: Scenario, kind: str, redis_url: str, cores: tuple[int, int]
) -> dict[str, Any]:
    gw_core, load_core = cores
    load_average = os.getloadavg()[0]
    pub = redis.Redis.from_url(redis_url)
    servers = _start_servers(kind, scenario.replicas, redis_url, gw_core)
    lg: LoadGen | None = None
    try:
        pids = [s.pid for s in servers]
        time.sleep(0.5)
        rss_base = _sum([rss_kb(p) for p in pids])
        lg = LoadGen([s.url for s in servers], scenario.clients, load_core)
        connected = lg.expect("connected", timeout_s=60 + scenario.clients / 50)
        time.sleep(scenario.settle_s)
        rss_idle = _sum([rss_kb(p) for p in pids])
        # Warm-up (counted apart by the load generator): first-use costs, JIT, caches.
        warm = max(5, int(scenario.rate / 4))
        publish_paced(pub, warm, scenario.rate, warmup=True)
        _drain(lg, warm * int(connected["clients"]), key="warmups", max_s=15)
        time.sleep(0.3)
        lg.ask("start " + str(scenario.signals), "started")
        peak = [rss_idle]

        def sample() -> None:
            peak[0] = max(peak[0], _sum([rss_kb(p) for p in pids]))

        wait0 = [_sum([wait_seconds(p) for p in pids]), wait_seconds(lg.pid)]
        sys0 = _sum([cpu_split(p)[1] for p in pids])
        cpu0, lg0, t0 = _sum([cpu_seconds(p) for p in pids]), cpu_seconds(lg.pid), time.monotonic()
        publish_s = publish_paced(pub, scenario.signals, scenario.rate, tick=sample)
        _drain(lg, scenario.signals * int(connected["clients"]))
        sample()
        cpu1, lg1, t1 = _sum([cpu_seconds(p) for p in pids]), cpu_seconds(lg.pid), time.monotonic()
        sys1 = _sum([cpu_split(p)[1] for p in pids])
        wait1 = [_sum([wait_seconds(p) for p in pids]), wait_seconds(lg.pid)]
        report = lg.ask("report", "report", timeout_s=120)
        probe = _probe_rows(servers) if kind.startswith("gateway") and PROBE["dir"] else None
        alive = all(s.alive() for s in servers)
    finally:
        if lg is not None:
            lg.close()
        for server in servers:
            server.stop()
        with contextlib.suppress(redis.RedisError):
            pub.close()
    deliveries = int(report["deliveries"])
    span = max(1e-9, float(report["last_s"]) - float(report["first_s"])) if deliveries else 0
    wall = t1 - t0
    return {
        "scenario": asdict(scenario),
        "target": kind,
        "connected": connected,
        "report": report,
        "alive": alive,
        "load_average": load_average,
        "probe": probe,
        "publish_s": publish_s,
        "wall_s": wall,
        "deliveries_per_s": deliveries / span if span else 0.0,
        "gw_cpu_s": cpu1 - cpu0,
        "gw_cpu_us_per_delivery": (cpu1 - cpu0) / deliveries * 1e6 if deliveries else None,
        "gw_cpu_util": (cpu1 - cpu0) / wall,
        "gw_kernel_share": (sys1 - sys0) / (cpu1 - cpu0) if cpu1 > cpu0 else None,
        "loadgen_cpu_util": (lg1 - lg0) / wall,
        # Runnable but not running (CPU taken by other jobs): high values mean a noisy run.
        "gw_wait_util": (wait1[0] - wait0[0]) / wall,
        "loadgen_wait_util": (wait1[1] - wait0[1]) / wall,
        "rss_base_mb": rss_base / 1024,
        "rss_idle_kb_per_conn": (rss_idle - rss_base) / max(1, int(connected["clients"])),
        "rss_load_mb": peak[0] / 1024,
    }
