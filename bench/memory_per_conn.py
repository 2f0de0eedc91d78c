"""Idle memory per WebSocket connection: the gateway and Node's socket.io, in one run.

    .venv/bin/python bench/memory_per_conn.py [--clients 5000] [--targets gateway,node]
        [--breakdown] [--gateway-source HEAD|worktree]

For each target: its own process (and a redis-server for both), RSS before, N idle
Socket.IO clients over WebSocket (bench/fanout/rawclients.py processes bound to 127.0.0.2,
127.0.0.3, ...), RSS after they settled; prints (after - before) / N. ``--breakdown`` then
runs the gateway under tracemalloc (bench/fanout/gateway_probe.py) and prints what the
connections added, per connection: by allocating line, by object type, asyncio tasks.
Everything binds loopback addresses and stops itself (bounded by --max-seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "fanout"))

from many import Loaders, Target, probe_target, settle_rss, start_target
from procs import SOURCE, cores, ensure_node_modules, raise_fd_limit, start_redis
from report import machine_notes


def idle_rss(target: Target, clients: int, settle_s: float) -> dict[str, Any]:
    time.sleep(1.0)
    before = settle_rss(target.pid, 1.0)
    loaders = Loaders(target.server.url, clients, concurrency=400)
    try:
        connected = loaders.connect(timeout_s=120)
        after = settle_rss(target.pid, settle_s)
    finally:
        loaders.close()
    n = max(1, connected["clients"])
    return {
        "target": target.kind,
        "connected": connected,
        "rss_before_mb": before / 1024,
        "rss_after_mb": after / 1024,
        "kb_per_conn": (after - before) / n,
    }


def measure(
    kind: str, redis_url: str, core: int | None, args: argparse.Namespace
) -> dict[str, Any]:
    target = start_target(kind, redis_url, core, args.clients + 1000)
    try:
        return idle_rss(target, args.clients, args.settle)
    finally:
        target.server.stop()


def breakdown(redis_url: str, clients: int, settle_s: float) -> dict[str, Any]:
    out = tempfile.mkdtemp(prefix="qs-probe-")
    target = probe_target(redis_url, out)
    loaders = None
    try:
        time.sleep(1.0)
        os.kill(target.pid, signal.SIGUSR1)
        loaders = Loaders(target.server.url, clients, concurrency=200)
        connected = loaders.connect(timeout_s=300)["clients"]
        time.sleep(settle_s)
        os.kill(target.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 120
        while not (Path(out) / "objects-2.json").exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(1.0)  # the snapshot pickle is written before the json
    finally:
        if loaders is not None:
            loaders.close()
        target.server.stop(timeout_s=20)
    return diff(Path(out), max(1, connected))


def diff(out: Path, n: int) -> dict[str, Any]:
    with (out / "snap-1.pickle").open("rb") as f1, (out / "snap-2.pickle").open("rb") as f2:
        one, two = pickle.load(f1), pickle.load(f2)
    one, two = (
        s.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)]) for s in (one, two)
    )
    lines = [
        (s.size_diff / n, s.count_diff / n, str(s.traceback[0]))
        for s in two.compare_to(one, "lineno")[:30]
    ]
    files = [
        (s.size_diff / n, str(s.traceback[0]).rsplit(":", 1)[0])
        for s in two.compare_to(one, "filename")[:15]
    ]
    o1, o2 = (json.loads((out / f"objects-{i}.json").read_text()) for i in (1, 2))
    types = sorted(((o2["types"].get(k, 0) - o1["types"].get(k, 0)) / n, k) for k in o2["types"])[
        ::-1
    ][:25]
    tasks = {k: (v - o1["tasks"].get(k, 0)) / n for k, v in o2["tasks"].items()}
    total = sum(s.size_diff for s in two.compare_to(one, "filename")) / n
    return {
        "clients": n,
        "traced_kb_per_conn": total / 1024,
        "lines": lines,
        "files": files,
        "types": types,
        "tasks_per_conn": tasks,
    }


def print_breakdown(b: dict[str, Any]) -> None:
    print(
        f"\nBreakdown (tracemalloc, {b['clients']} clients): "
        f"{b['traced_kb_per_conn']:.2f} KB of Python allocations per connection"
    )
    print(
        "asyncio tasks per connection:",
        {k: round(v, 2) for k, v in b["tasks_per_conn"].items() if abs(v) > 0.01},
    )
    print("\n| bytes/conn | blocks/conn | allocated at |\n|---:|---:|---|")
    for size, count, where in b["lines"]:
        print(f"| {size:.0f} | {count:.2f} | `{where}` |")
    print("\n| bytes/conn | file |\n|---:|---|")
    for size, where in b["files"]:
        print(f"| {size:.0f} | `{where}` |")
    print("\n| objects/conn | type |\n|---:|---|")
    for count, kind in b["types"]:
        print(f"| {count:.2f} | {kind} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--targets", default="gateway,node")
    parser.add_argument("--settle", type=float, default=4.0, help="seconds idle before the sample")
    parser.add_argument("--breakdown", action="store_true")
    parser.add_argument("--gateway-source", choices=["HEAD", "worktree"], default="HEAD")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args()
    signal.alarm(int(args.max_seconds))  # the whole run is bounded; children are stopped below
    SOURCE["value"] = args.gateway_source
    raise_fd_limit()
    if "node" in args.targets:
        ensure_node_modules()
    _gw_core, load_core = cores()
    print(f"# {machine_notes()}", file=sys.stderr)
    redis_proc, redis_url = start_redis(load_core)
    results = []
    try:
        for kind in [t.strip() for t in args.targets.split(",") if t.strip()]:
            print(f"# {kind}: {args.clients} idle clients ...", file=sys.stderr, flush=True)
            results.append(measure(kind, redis_url, None, args))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
        print("\n| target | clients | refused/failed | RSS before MB | RSS after MB | KB/conn |")
        print("|---|---:|---|---:|---:|---:|")
        for r in results:
            c = r["connected"]
            print(
                f"| {r['target']} | {c['clients']} | {c['refused']}/{c['failed']} "
                f"| {r['rss_before_mb']:.1f} | {r['rss_after_mb']:.1f} | {r['kb_per_conn']:.1f} |"
            )
        if args.breakdown:
            print_breakdown(breakdown(redis_url, args.clients, args.settle))
    finally:
        redis_proc.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
