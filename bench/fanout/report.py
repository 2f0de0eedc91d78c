"""Markdown tables of a run, ratios to the references, and the docs/performance.md block."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

REFERENCES = ("plain", "node")
START = "<!-- bench-fanout:results:start -->"
END = "<!-- bench-fanout:results:end -->"


def _f(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _checks(r: dict[str, Any]) -> str:
    rep = r["report"]
    return f"{rep['duplicates']}/{rep['missing']}/{rep['out_of_order']}"


def results_table(results: list[dict[str, Any]]) -> str:
    head = (
        "| scenario | target | clients | deliveries/s | p50 ms | p90 ms | p99 ms | max ms "
        "| gw CPU µs/delivery | of which kernel % | gw CPU % | RSS idle KB/conn | RSS load MB "
        "| dup/missing/out-of-order | loadgen CPU % | CPU-wait % gw/loadgen |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
    )
    rows = []
    for r in results:
        rep = r["report"]
        clients = f"{r['connected']['clients']}" + (
            f" ({r['connected']['failed']} failed)" if r["connected"]["failed"] else ""
        )
        rows.append(
            f"| {r['scenario']['name']} | {r['target']} | {clients} "
            f"| {_f(r['deliveries_per_s'], 0)} | {_f(rep['p50_ms'])} | {_f(rep['p90_ms'])} "
            f"| {_f(rep['p99_ms'])} | {_f(rep['max_ms'])} | {_f(r['gw_cpu_us_per_delivery'])} "
            f"| {_pct(r.get('gw_kernel_share'))} | {_f(100 * r['gw_cpu_util'], 0)} "
            f"| {_f(r['rss_idle_kb_per_conn'])} "
            f"| {_f(r['rss_load_mb'], 0)} | {_checks(r)} | {_f(100 * r['loadgen_cpu_util'], 0)} "
            f"| {_f(100 * r['gw_wait_util'], 0)}/{_f(100 * r['loadgen_wait_util'], 0)} |"
        )
    return "\n".join([head, *rows])


def _pct(share: float | None) -> str:
    return "-" if share is None else _f(100 * share, 0)


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}"


def ratio_table(results: list[dict[str, Any]]) -> str:
    """Each non-reference target against both references of the same scenario and run."""
    head = (
        "| scenario | target | CPU/delivery ÷plain | ÷node | p99 ÷plain | ÷node "
        "| deliveries/s ÷plain | ÷node | RSS/conn ÷plain | ÷node |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    by_key = {(r["scenario"]["name"], r["target"]): r for r in results}
    rows = []
    metrics = (
        lambda r: r["gw_cpu_us_per_delivery"],
        lambda r: r["report"]["p99_ms"],
        lambda r: r["deliveries_per_s"],
        lambda r: r["rss_idle_kb_per_conn"],
    )
    for r in results:
        if r["target"] in REFERENCES:
            continue
        refs = [by_key.get((r["scenario"]["name"], ref)) for ref in REFERENCES]
        cells = []
        for metric in metrics:
            for ref in refs:
                cells.append(_ratio(metric(r), metric(ref)) if ref else "-")
        rows.append(f"| {r['scenario']['name']} | {r['target']} | " + " | ".join(cells) + " |")
    return "\n".join([head, *rows])


def _cmd(argv: list[str]) -> str:
    try:
        return subprocess.run(
            argv, check=False, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except OSError:
        return "?"


def machine_notes() -> str:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores ({cpu}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, Node {_cmd(['node', '--version'])}, "
        f"{_cmd(['redis-server', '--version']).split(' sha=')[0]}; "
        f"load average at start {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f} "
        "(other jobs share this machine: compare ratios, not absolute numbers)"
    )


def markdown(results: list[dict[str, Any]], command: str, notes: str, when: str) -> str:
    return "\n".join(
        [
            f"Command: `{command}` ({when})",
            "",
            f"Machine: {notes}. Gateways pinned to core 0; load generator, Redis and publisher "
            "to core 1.",
            "",
            results_table(results),
            "",
            "Ratios (target ÷ reference, same scenario and run; below 1 is better for CPU, p99 "
            "and RSS, above 1 is better for deliveries/s):",
            "",
            ratio_table(results),
        ]
    )


def write_docs(path: Path, block: str) -> None:
    text = path.read_text() if path.exists() else "# Performance\n\n"
    wrapped = f"{START}\n{block}\n{END}"
    if START in text and END in text:
        text = re.sub(
            re.escape(START) + ".*?" + re.escape(END), lambda _m: wrapped, text, flags=re.S
        )
    else:
        text = text.rstrip() + "\n\n" + wrapped + "\n"
    path.write_text(text)
