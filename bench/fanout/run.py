"""Fan-out benchmark: the gateway against two reference gateways, in one run.

    .venv/bin/python bench/fanout/run.py [--scenario NAME ...] [--quick]
        [--targets gateway,plain,node] [--gateway-source HEAD|worktree] [--write-docs]
        [--repeat N] [--probe] [--gateway-env KEY=VALUE ...]

Starts its own redis-server on a free port, each target's replicas (pinned to core 0),
a Node socket.io-client load generator (core 1, with Redis and this publisher), and
prints a markdown table with ratios to the references. With ``--repeat N`` every scenario
runs N times (the targets one after the other in each repetition) and a spread table
follows (spread.py), with a table of what drove each run's latency. Everything binds 127.0.0.1 and
stops itself. Targets: gateway (services/gateway), plain (reference 1,
plain_gateway.py), node (reference 2, node/server.js).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import (
    GATEWAY_ENV,
    NICE,
    PROBE,
    ROOT,
    SOURCE,
    cores,
    ensure_node_modules,
    raise_fd_limit,
    start_redis,
)
from report import machine_notes, markdown, write_docs
from scenarios import SCENARIOS, Scenario, measure, quick
from spread import drivers_table, spread_table

DOCS = ROOT / "docs" / "performance.md"
RESULTS_DIR = ROOT / ".run" / "bench-fanout"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        help="run only this scenario (repeatable); default: all",
    )
    parser.add_argument(
        "--targets",
        default="gateway,plain,node",
        help="comma-separated: gateway, plain, node",
    )
    parser.add_argument("--quick", action="store_true", help="4 s of load, 3,000 idle clients")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness of the benchmark's processes, e.g. -5 on a shared "
        "machine (root only for negative values)",
    )
    parser.add_argument(
        "--gateway-source",
        choices=["HEAD", "worktree"],
        default="HEAD",
        help="gateway code: the last commit (default) or services/ as it is on disk",
    )
    parser.add_argument(
        "--write-docs", action="store_true", help=f"write the table into {DOCS.relative_to(ROOT)}"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="repetitions of each scenario (spread table)"
    )
    parser.add_argument(
        "--probe",
        action="store_true",
        help="time every fan-out inside the gateway (fanout_probe.py; drivers table)",
    )
    parser.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra setting for the gateway target (repeatable)",
    )
    return parser.parse_args(argv)


def run_all(
    scenarios: list[Scenario], targets: list[str], repeat: int, redis_url: str, cores: Any
) -> list[dict[str, Any]]:
    results = []
    for scenario in scenarios:
        for repetition in range(repeat):
            for target in targets:
                print(
                    f"# {scenario.name} / {target} ({repetition + 1}/{repeat}) ...",
                    file=sys.stderr,
                    flush=True,
                )
                result = measure(scenario, target, redis_url, cores)
                result["repetition"] = repetition
                rep = result["report"]
                print(
                    f"  {result['deliveries_per_s']:.0f} deliveries/s, p99 {rep['p99_ms']:.1f} ms,"
                    f" {result['gw_cpu_us_per_delivery']:.2f} us/delivery, dup/miss/ooo "
                    f"{rep['duplicates']}/{rep['missing']}/{rep['out_of_order']}, CPU-wait "
                    f"{100 * result['gw_wait_util']:.0f} %, load {result['load_average']:.2f}",
                    file=sys.stderr,
                    flush=True,
                )
                results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = ".venv/bin/python bench/fanout/run.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    targets = [t.strip().replace("+", ",") for t in args.targets.split(",") if t.strip()]
    scenarios = [SCENARIOS[n] for n in (args.scenario or list(SCENARIOS))]
    if args.quick:
        scenarios = [quick(s) for s in scenarios]
    NICE["value"] = args.nice
    GATEWAY_ENV.update(kv.split("=", 1) for kv in args.gateway_env)
    if args.probe:
        PROBE["dir"] = tempfile.mkdtemp(prefix="qs-bench-probe-")
    SOURCE["value"] = args.gateway_source
    fd_limit = raise_fd_limit()
    if max(s.clients for s in scenarios) + 100 > fd_limit:
        print(f"warning: fd limit {fd_limit} is below the client count", file=sys.stderr)
    ensure_node_modules()
    gw_core, load_core = cores()
    os.sched_setaffinity(0, {load_core})
    notes = machine_notes()
    when = time.strftime("%Y-%m-%d %H:%M %Z")
    redis_proc, redis_url = start_redis(load_core)
    try:
        results = run_all(scenarios, targets, args.repeat, redis_url, (gw_core, load_core))
    finally:
        redis_proc.stop()
    block = markdown(results, command, notes, when)
    print(block)
    if args.repeat > 1 or args.probe:
        print("\nSpread over repetitions:\n\n" + spread_table(results))
        print("\nWhat drove each run's latency:\n\n" + drivers_table(results))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    dump = RESULTS_DIR / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
    dump.write_text(
        json.dumps({"command": command, "machine": notes, "results": results}, indent=1)
    )
    print(f"raw results: {dump}", file=sys.stderr)
    if args.write_docs:
        write_docs(DOCS, block)
        print(f"wrote {DOCS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
