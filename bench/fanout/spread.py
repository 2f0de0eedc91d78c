"""Repetitions of a run side by side: the spread of p99 and CPU per delivery, and what drove it.

``spread_table`` gives, per scenario and target, the median, min and max over repetitions
of p99 and CPU per delivery, and the ratio to Node twice: of the medians, and the median
(min-max) of the ratios paired within each repetition (targets run one after the other in
each repetition, so a paired ratio shares the machine's load of that moment).

``drivers_table`` splits each run's latency where the data allows: the client-side
timeline (the first and the last client's latency of every signal, from the load
generator) shows when a backlog formed; the gateway's probe (run.py --probe) shows how old
each signal was when its fan-out started (Redis and the relay ahead of it), how long the
fan-out took, how many signals shared one event-loop turn (one Redis read), and how many
fan-outs sent during the loop rather than through the transports' buffers.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

ONSET_MS = 100.0  # a signal whose first client waited longer than this is behind a backlog


def _f(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _spread(values: list[float], digits: int = 1) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return _f(med, digits)
    return f"{_f(med, digits)} ({_f(min(values), digits)}-{_f(max(values), digits)})"


def _p(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _groups(results: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        groups[(r["scenario"]["name"], r["target"])].append(r)
    return groups


def _p99(r: dict[str, Any]) -> float:
    return float(r["report"]["p99_ms"] or 0.0)


def _cpu(r: dict[str, Any]) -> float:
    return float(r["gw_cpu_us_per_delivery"] or 0.0)


def _paired(runs: list[dict[str, Any]], refs: list[dict[str, Any]], metric: Any) -> list[float]:
    by_rep = {r.get("repetition", 0): r for r in refs}
    out = []
    for r in runs:
        ref = by_rep.get(r.get("repetition", 0))
        if ref is not None and metric(ref):
            out.append(metric(r) / metric(ref))
    return out


def spread_table(results: list[dict[str, Any]], reference: str = "node") -> str:
    head = (
        "| scenario | target | runs | p99 ms median (min-max) | CPU µs/delivery | "
        "deliveries/s | gw CPU-wait % | load avg | p99 ÷node: of medians | paired | "
        "CPU ÷node: of medians | paired |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    groups = _groups(results)
    rows = []
    for (scenario, target), runs in groups.items():
        refs = groups.get((scenario, reference), [])
        p99s, cpus = [_p99(r) for r in runs], [_cpu(r) for r in runs]
        cells = ["-", "-", "-", "-"]
        if refs and target != reference:
            ref_p99 = statistics.median(_p99(r) for r in refs)
            ref_cpu = statistics.median(_cpu(r) for r in refs)
            cells = [
                _f(statistics.median(p99s) / ref_p99, 2) if ref_p99 else "-",
                _spread(_paired(runs, refs, _p99), 2),
                _f(statistics.median(cpus) / ref_cpu, 2) if ref_cpu else "-",
                _spread(_paired(runs, refs, _cpu), 2),
            ]
        rows.append(
            f"| {scenario} | {target} | {len(runs)} | {_spread(p99s)} | {_spread(cpus, 2)} "
            f"| {_spread([r['deliveries_per_s'] for r in runs], 0)} "
            f"| {_spread([100 * r['gw_wait_util'] for r in runs], 0)} "
            f"| {_spread([r.get('load_average', 0.0) for r in runs])} | " + " | ".join(cells) + " |"
        )
    return "\n".join([head, *rows])


def timeline(r: dict[str, Any]) -> dict[str, float | None]:
    """From the load generator's per-signal first/last latencies: when a backlog formed."""
    rep = r["report"]
    first = [v for v in rep.get("first_ms") or [] if v is not None]
    last = [v for v in rep.get("last_ms") or [] if v is not None]
    rate = float(r["scenario"]["rate"])
    onset = next((i / rate for i, v in enumerate(first) if v > ONSET_MS), None)
    spans = [b - a for a, b in zip(first, last, strict=False)]
    return {
        "first_p50": _p(first, 0.5),
        "first_p99": _p(first, 0.99),
        "last_p99": _p(last, 0.99),
        "span_p99": _p(spans, 0.99),
        "onset_s": onset,
    }


def probe_summary(rows: list[list[float]] | None) -> dict[str, float | None]:
    """From fanout_probe.py's rows (seq, start age, end age, send_now, turn, batch)."""
    if not rows:
        return {}
    start = [row[1] for row in rows]
    took = [row[2] - row[1] for row in rows]
    per_turn: dict[float, int] = defaultdict(int)
    for row in rows:
        per_turn[row[4]] += 1
    turns = list(per_turn.values())
    return {
        "start_p50": _p(start, 0.5),
        "start_p99": _p(start, 0.99),
        "took_p50": _p(took, 0.5),
        "took_p99": _p(took, 0.99),
        "per_turn_mean": statistics.fmean(turns),
        "per_turn_max": float(max(turns)),
        "send_now_pct": 100.0 * sum(row[3] for row in rows) / len(rows),
        "coalesced_pct": 100.0 * sum(1 for row in rows if len(row) > 5 and row[5] > 1) / len(rows),
    }


def drivers_table(results: list[dict[str, Any]]) -> str:
    head = (
        "| scenario | target | rep | p99 ms | first client p50/p99 ms | last client p99 ms "
        "| backlog from s | loadgen CPU % | gw/loadgen CPU-wait % | fan-out start age p50/p99 ms "
        "| fan-out took p50/p99 ms | signals per loop turn mean/max | sent during loop % "
        "| in coalesced batches % |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    rows = []
    for r in results:
        t, p = timeline(r), probe_summary(r.get("probe"))
        probe_cells = (
            [
                f"{_f(p['start_p50'])}/{_f(p['start_p99'])}",
                f"{_f(p['took_p50'], 2)}/{_f(p['took_p99'], 2)}",
                f"{_f(p['per_turn_mean'])}/{_f(p['per_turn_max'], 0)}",
                _f(p["send_now_pct"], 0),
                _f(p["coalesced_pct"], 0),
            ]
            if p
            else ["-"] * 5
        )
        rows.append(
            f"| {r['scenario']['name']} | {r['target']} | {r.get('repetition', 0) + 1} "
            f"| {_f(_p99(r))} | {_f(t['first_p50'])}/{_f(t['first_p99'])} | {_f(t['last_p99'])} "
            f"| {_f(t['onset_s'])} | {_f(100 * r['loadgen_cpu_util'], 0)} "
            f"| {_f(100 * r['gw_wait_util'], 0)}/{_f(100 * r['loadgen_wait_util'], 0)} | "
            + " | ".join(probe_cells)
            + " |"
        )
    return "\n".join([head, *rows])
