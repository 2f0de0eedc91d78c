"""A connect storm, then every client at 1 signal/s: the gateway and Node, in one run.

    .venv/bin/python bench/fanout/storm.py --clients 19000 [--seconds 30] [--targets gateway,node]

Per target: a fresh server process (soft nofile limit raised to the hard one, inherited
from this script), N raw WebSocket Socket.IO clients opened at once from N/5,000 load
processes bound to 127.0.0.2, 127.0.0.3, ... (bench/fanout/rawclients.py), the time until
the last is connected and how many were refused; idle RSS per connection; then
``--seconds`` signals at 1/s, each checked exactly once per client, with latency
percentiles from publish to receipt. Two official python-socketio clients and three
official JS socket.io-client clients run alongside and must get every signal too.
Bounded by --max-seconds (default 290); stops everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import redis
import socketio
from load import LoadGen, publish_paced
from many import Loaders, settle_rss, start_target
from procs import (
    SOURCE,
    cores,
    cpu_seconds,
    ensure_node_modules,
    raise_fd_limit,
    start_redis,
    wait_seconds,
)
from report import machine_notes

OFFICIAL_PY = 2
OFFICIAL_JS = 3


class OfficialPython:
    """python-socketio's AsyncClient (the official Python client), in a thread."""

    def __init__(self, url: str, count: int) -> None:
        self.url, self.count = url, count
        self.seen: list[list[int]] = [[] for _ in range(count)]
        self.connected = 0
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        self._ready.wait(30)

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        clients = []
        for i in range(self.count):
            client = socketio.AsyncClient(reconnection=False)
            client.on("new_signal", lambda data, i=i: self._got(i, data))
            await client.connect(self.url, transports=["websocket"])
            self.connected += 1
            clients.append(client)
        self._ready.set()
        await self._stop.wait()
        for client in clients:
            await client.disconnect()

    def _got(self, i: int, data: dict[str, Any]) -> None:
        if data.get("seq", -1) >= 0:
            self.seen[i].append(data["seq"])

    def report(self, signals: int) -> dict[str, Any]:
        exact = [sorted(s) == list(range(signals)) and s == sorted(s) for s in self.seen]
        return {"connected": self.connected, "exactly_once_in_order": sum(exact)}

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def wait_delivered(loaders: Loaders, expected: int, max_s: float) -> None:
    end, last, last_change = time.monotonic() + max_s, -1, time.monotonic()
    while time.monotonic() < end:
        got = loaders.delivered()
        if got >= expected:
            return
        if got != last:
            last, last_change = got, time.monotonic()
        elif time.monotonic() - last_change > 5:
            return
        time.sleep(0.5)


def run_target(kind: str, redis_url: str, args: argparse.Namespace) -> dict[str, Any]:
    target = start_target(kind, redis_url, None, args.clients + 100)
    loaders: Loaders | None = None
    official_js: LoadGen | None = None
    official_py: OfficialPython | None = None
    pub = redis.Redis.from_url(redis_url)
    try:
        time.sleep(1.0)
        before = settle_rss(target.pid, 1.0)
        n = args.clients - OFFICIAL_PY - OFFICIAL_JS
        loaders = Loaders(target.server.url, n, args.concurrency)
        cpu0 = cpu_seconds(target.pid)
        storm = loaders.connect(timeout_s=120)
        storm["server_cpu_s"] = cpu_seconds(target.pid) - cpu0
        after = settle_rss(target.pid, 3.0)
        official_py = OfficialPython(target.server.url, OFFICIAL_PY)
        official_js = LoadGen([target.server.url], OFFICIAL_JS, 0)
        official_js.expect("connected", 60)
        official_js.ask(f"start {args.seconds}", "started")
        loaders.ask(f"start {args.seconds}")
        publish_paced(pub, 2, 1.0, warmup=True)
        cpu0, wait0, t0 = cpu_seconds(target.pid), wait_seconds(target.pid), time.monotonic()
        publish_paced(pub, args.seconds, 1.0)
        wait_delivered(loaders, args.seconds * storm["clients"], 20)
        elapsed = time.monotonic() - t0
        delivery_cpu = (cpu_seconds(target.pid) - cpu0) / elapsed
        delivery_wait = (wait_seconds(target.pid) - wait0) / elapsed
        time.sleep(1.0)
        report = loaders.report()
        js = official_js.ask("report", "report")
        py = official_py.report(args.seconds)
        alive = target.server.alive()
    finally:
        for closer in (loaders, official_js, official_py):
            if closer is not None:
                closer.close()
        target.server.stop(timeout_s=20)
        pub.close()
    return {
        "target": kind,
        "storm": storm,
        "rss_before_mb": before / 1024,
        "rss_idle_mb": after / 1024,
        "kb_per_conn": (after - before) / max(1, storm["clients"]),
        "report": report,
        "official_js": {k: js[k] for k in ("connected", "missing", "duplicates", "out_of_order")},
        "official_py": py,
        "alive": alive,
        "delivery_cpu_util": delivery_cpu,
        "delivery_cpu_wait": delivery_wait,
    }


def table(results: list[dict[str, Any]], signals: int) -> str:
    head = (
        "| target | clients connected | storm s | refused/failed | idle KB/conn | signals "
        "| deliveries | missing | dup | out of order | clients with every signal | p50 ms "
        "| p99 ms | max ms | official py/js ok | storm CPU ms/conn | CPU % / CPU-wait % at 1/s |\n"
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
    )
    rows = []
    for r in results:
        s, rep = r["storm"], r["report"]
        js_ok = r["official_js"]["missing"] == 0 and r["official_js"]["duplicates"] == 0
        rows.append(
            f"| {r['target']} | {s['clients']} | {s['seconds']:.1f} | {s['refused']}/{s['failed']} "
            f"| {r['kb_per_conn']:.1f} | {signals} | {rep['deliveries']} | {rep['missing']} "
            f"| {rep['duplicates']} | {rep['out_of_order']} | {rep['clients_with_every_signal']} "
            f"| {rep['p50_ms'] or 0:.0f} | {rep['p99_ms'] or 0:.0f} | {rep['max_ms'] or 0:.0f} "
            f"| {r['official_py']['exactly_once_in_order']}/{OFFICIAL_PY}, "
            f"{r['official_js']['connected'] if js_ok else 0}/{OFFICIAL_JS} "
            f"| {1000 * s['server_cpu_s'] / max(1, s['clients']):.2f} "
            f"| {100 * r['delivery_cpu_util']:.0f} / {100 * r['delivery_cpu_wait']:.0f} |"
        )
    return "\n".join([head, *rows])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--seconds", type=int, default=30, help="signals, one a second")
    parser.add_argument("--concurrency", type=int, default=2000, help="handshakes in flight")
    parser.add_argument("--targets", default="gateway,node")
    parser.add_argument("--gateway-source", choices=["HEAD", "worktree"], default="HEAD")
    parser.add_argument("--max-seconds", type=int, default=290)
    args = parser.parse_args()
    signal.alarm(args.max_seconds)  # bounded; the finally blocks stop the children
    SOURCE["value"] = args.gateway_source
    print(f"nofile soft limit raised to {raise_fd_limit()}", file=sys.stderr)
    ensure_node_modules()
    _, load_core = cores()
    notes = machine_notes()
    redis_proc, redis_url = start_redis(load_core)
    results = []
    try:
        for kind in [t.strip() for t in args.targets.split(",") if t.strip()]:
            print(f"# {kind}: {args.clients} clients ...", file=sys.stderr, flush=True)
            results.append(run_target(kind, redis_url, args))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    finally:
        redis_proc.stop()
    print(f"{notes}\n\n{table(results, args.seconds)}")
    out = Path(__file__).resolve().parents[2] / ".run" / "bench-storm"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"storm-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
