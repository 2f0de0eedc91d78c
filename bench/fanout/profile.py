"""Profile one target under one scenario with py-spy; print where the time goes.

    .venv/bin/python bench/fanout/profile.py --scenario 1000x20 [--target gateway] [--seconds 8]
        [--gateway-source HEAD|worktree]

Needs py-spy (``uv pip install py-spy``). Writes the collapsed stacks to
.run/bench-fanout/profile-<target>-<scenario>.txt (open with any flamegraph tool) and
prints the functions with the most samples, by self time and by inclusive time.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import redis
from load import LoadGen, publish_paced
from procs import (
    ROOT,
    SOURCE,
    cores,
    ensure_node_modules,
    raise_fd_limit,
    start_redis,
    target_server,
)
from scenarios import SCENARIOS

OUT_DIR = ROOT / ".run" / "bench-fanout"


def frame_name(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/module.py:123)"
    name, _, where = frame.partition(" (")
    module = where.rsplit("/", 1)[-1].split(":", 1)[0]
    return f"{module}:{name}"


def summarise(collapsed: Path, top: int) -> str:
    self_t: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_s)
        frames = [frame_name(f) for f in stack.split(";")]
        total += count
        self_t[frames[-1]] += count
        for name in set(frames):
            incl[name] += count
    lines = [f"{total} samples", "", "self %  function"]
    lines += [f"{100 * c / total:6.1f}  {n}" for n, c in self_t.most_common(top)]
    lines += ["", "incl %  function"]
    lines += [f"{100 * c / total:6.1f}  {n}" for n, c in incl.most_common(top * 2)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="1000x20", choices=sorted(SCENARIOS))
    parser.add_argument("--target", default="gateway")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--gateway-source", choices=["HEAD", "worktree"], default="HEAD")
    args = parser.parse_args()
    SOURCE["value"] = args.gateway_source
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    scenario = SCENARIOS[args.scenario]
    raise_fd_limit()
    ensure_node_modules()
    gw_core, load_core = cores()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / f"profile-{args.target.replace(':', '-')}-{scenario.name}.txt"
    redis_proc, redis_url = start_redis(load_core)
    # Every replica of the scenario runs; the first one is profiled.
    servers = [target_server(args.target, redis_url, gw_core) for _ in range(scenario.replicas)]
    server = servers[0]
    lg = None
    try:
        for replica in servers:
            replica.start().wait_ready()
        lg = LoadGen([s.url for s in servers], scenario.clients, load_core)
        lg.expect("connected", timeout_s=60 + scenario.clients / 50)
        signals = round(scenario.rate * args.seconds)
        lg.ask(f"start {signals}", "started")
        spy = subprocess.Popen(
            [pyspy, "record", "--pid", str(server.pid), "--format", "raw", "--rate", "500",
             "--duration", str(int(args.seconds)), "--nonblocking", "-o", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(0.5)
        publish_paced(redis.Redis.from_url(redis_url), signals, scenario.rate)
        spy.wait(timeout=args.seconds + 30)
        report = lg.ask("report", "report", timeout_s=120)
    finally:
        if lg is not None:
            lg.close()
        for replica in servers:
            replica.stop()
        redis_proc.stop()
    print(f"# {args.target} under {scenario.name}: {report['deliveries']} deliveries, "
          f"p99 {report['p99_ms']} ms; stacks in {out}")  # fmt: skip
    print(summarise(out, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
