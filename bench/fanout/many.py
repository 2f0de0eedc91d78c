"""Many WebSocket clients against one server process: memory per connection, a connect
storm, and delivery at a steady rate (bench/memory_per_conn.py, bench/fanout/storm.py).

The clients are ``rawclients.py`` processes, each bound to its own loopback source
address (127.0.0.2, 127.0.0.3, ...), so no process or address runs out of files or ports.
"""

from __future__ import annotations

import json
import math
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from procs import HERE, Server, rss_kb, services_dir, target_server

#: Clients per load process: well under the 20,000 files a process may hold.
PER_LOADER_MAX = 5000


class Loader:
    """One rawclients.py process, driven over stdin/stdout."""

    def __init__(self, url: str, bind: str, clients: int, concurrency: int, core: int | None):
        argv = [sys.executable, str(HERE / "rawclients.py"), "--url", url, "--bind", bind]
        argv += ["--clients", str(clients), "--concurrency", str(concurrency)]
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=sys.stderr,
            preexec_fn=None if core is None else (lambda: os.sched_setaffinity(0, {core})),  # noqa: PLW1509
        )
        self._lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(json.loads(line))

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()

    def answer(self, timeout_s: float) -> dict[str, Any]:
        try:
            return self._lines.get(timeout=timeout_s)
        except queue.Empty:
            raise TimeoutError("load process did not answer") from None

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)


class Loaders:
    """Several load processes together; commands go to all, answers are summed."""

    def __init__(self, url: str, clients: int, concurrency: int, core: int | None = None):
        count = max(1, math.ceil(clients / PER_LOADER_MAX))
        shares = [clients // count + (1 if i < clients % count else 0) for i in range(count)]
        host = url.removeprefix("http://")
        self.loaders = [
            Loader(host, f"127.0.0.{2 + i}", n, max(1, concurrency // count), core)
            for i, n in enumerate(shares)
        ]

    def ask(self, command: str, timeout_s: float = 120.0) -> list[dict[str, Any]]:
        for loader in self.loaders:
            loader.send(command)
        return [loader.answer(timeout_s) for loader in self.loaders]

    def connect(self, timeout_s: float) -> dict[str, Any]:
        started = time.monotonic()
        answers = self.ask("connect", timeout_s)
        total = {k: sum(a[k] for a in answers) for k in ("clients", "refused", "failed")}
        return {**total, "seconds": time.monotonic() - started}

    def delivered(self) -> int:
        return sum(a["deliveries"] for a in self.ask("count"))

    def report(self) -> dict[str, Any]:
        paths = [tempfile.mktemp(prefix="qs-lat-") for _ in self.loaders]
        answers = [None] * len(self.loaders)
        for loader, path in zip(self.loaders, paths, strict=True):
            loader.send(f"report {path}")
        answers = [loader.answer(120) for loader in self.loaders]
        latencies = array("d")
        for path in paths:
            data = Path(path).read_bytes()
            latencies.frombytes(data)
            os.unlink(path)
        keys = ("clients", "open", "deliveries", "duplicates", "missing", "out_of_order")
        keys += ("unexpected", "disconnects", "clients_with_every_signal", "cpu_s")
        total: dict[str, Any] = {k: sum(a[k] for a in answers) for k in keys}
        total["first_s"] = min((a["first_s"] for a in answers if a["first_s"]), default=0)
        total["last_s"] = max((a["last_s"] for a in answers), default=0)
        return total | percentiles(sorted(latencies))

    def close(self) -> None:
        for loader in self.loaders:
            loader.close()


def percentiles(values: list[float]) -> dict[str, float | None]:
    def at(q: float) -> float | None:
        return values[min(len(values) - 1, int(q * len(values)))] if values else None

    return {
        "p50_ms": at(0.5),
        "p90_ms": at(0.9),
        "p99_ms": at(0.99),
        "max_ms": values[-1] if values else None,
    }


@dataclass
class Target:
    kind: str  # gateway or node
    server: Server

    @property
    def pid(self) -> int:
        return self.server.pid


def start_target(kind: str, redis_url: str, core: int | None, max_connections: int) -> Target:
    server = target_server(kind, redis_url, core if core is not None else 0)
    server.core = core
    if kind == "gateway":
        server.env |= {"MAX_CONNECTIONS": str(max_connections), "PYTHONPATH": services_dir()}
    server.start()
    server.wait_ready(60)
    return Target(kind, server)


def probe_target(redis_url: str, out_dir: str) -> Target:
    """The gateway under tracemalloc (bench/fanout/gateway_probe.py): for the breakdown."""
    server = target_server("gateway", redis_url, 0)
    server.core = None
    server.name = "gateway-probe"
    server.argv = [sys.executable, str(HERE / "gateway_probe.py")]
    server.env |= {"PYTHONPATH": services_dir(), "QS_PROBE_DIR": out_dir}
    server.start()
    server.wait_ready(60)
    return Target("gateway-probe", server)


def settle_rss(pid: int, seconds: float) -> int:
    """RSS after ``seconds``, sampled until it stops moving (KB)."""
    end, last = time.monotonic() + seconds, rss_kb(pid)
    while time.monotonic() < end:
        time.sleep(0.5)
        last = rss_kb(pid)
    return last
