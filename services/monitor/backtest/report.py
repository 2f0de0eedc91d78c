"""The HTML report: one self-contained file (inline CSS and SVG, no script, no request).

Every figure is rendered from the same dictionary ``--json`` prints, and each metric cell
carries its exact value in ``data-value``, so the page and the JSON cannot disagree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any

from monitor.backtest.engine import Report, Run
from monitor.backtest.output import COLUMNS, pct, when
from monitor.backtest.svg import equity_chart, price_chart
from monitor.strategies.base import format_number, format_price

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;color:#111827;margin:24px auto;max-width:1040px;
padding:0 12px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 6px;border-top:1px solid #d1d5db;
padding-top:14px}h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;margin:6px 0 12px;font-variant-numeric:tabular-nums}
th,td{padding:3px 8px;border-bottom:1px solid #e5e7eb;text-align:right}
th:first-child,td:first-child,td.text,th.text{text-align:left}
.buy{color:#15803d;font-weight:600}.sell{color:#b91c1c;font-weight:600}
.note{color:#4b5563}.chart{width:100%;height:auto;display:block}
.metrics{display:flex;flex-wrap:wrap;gap:6px 18px;margin:4px 0 8px}
.metrics div{min-width:110px}.metrics b{display:block;font-size:16px}
details summary{cursor:pointer;color:#1d4ed8}
"""
#: The metrics shown above each symbol's charts: (JSON key, label, signed percent or not).
HEADLINE = [
    ("total_return", "total return", True),
    ("buy_and_hold", "buy & hold", True),
    ("max_drawdown", "max drawdown", False),
    ("hit_rate", "hit rate", False),
    ("exposure", "exposure", False),
]
FORMATS = {"binance": "Binance kline export", "replay": "replay CSV"}
#: Summary-table columns and the JSON key each one shows.
KEYS = [
    "strategy",
    "symbol",
    "bars",
    "signals",
    "trades",
    "hit_rate",
    "avg_trade_return",
    "total_return",
    "buy_and_hold",
    "max_drawdown",
    "exposure",
]


def _value(value: Any) -> str:
    # JSON, as --json prints it: the exact figure behind the rounded text.
    return escape(json.dumps(value))


def _cell(key: str, text: str, value: Any) -> str:
    return f'<td data-metric="{key}" data-value="{_value(value)}">{escape(text)}</td>'


def _summary(data: dict[str, Any]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h, _ in COLUMNS)
    rows = []
    for run in data["runs"]:
        cells = "".join(
            _cell(key, show(run), run[key]) for key, (_, show) in zip(KEYS, COLUMNS, strict=True)
        )
        rows.append(
            f'<tr data-run="{escape(run["strategy"])}:{escape(run["symbol"])}">{cells}</tr>'
        )
    return f'<table class="summary"><tr>{head}</tr>{"".join(rows)}</table>'


def _headline(run: dict[str, Any]) -> str:
    items = [
        f'<div>{label}<b data-metric="{key}" data-value="{_value(run[key])}">'
        f"{pct(run[key], signed)}</b></div>"
        for key, label, signed in HEADLINE
    ]
    trades = f"{run['trades']}" + (" + 1 open" if run["open_trade"] else "")
    items.append(
        f'<div>trades<b data-metric="trades" data-value="{run["trades"]}">{trades}</b></div>'
    )
    return f'<div class="metrics">{"".join(items)}</div>'


def _trades(run: dict[str, Any]) -> str:
    if not run["trade_list"]:
        return '<p class="note">No trade.</p>'
    head = "".join(f"<th>{h}</th>" for h in ("side", "entry", "price", "exit", "price", "return"))
    head = f"<tr>{head}</tr>"
    rows = [
        f'<tr class="trade"><td class="text">{t["side"]}</td><td>{when(t["entry_ts"])}</td>'
        f"<td>{format_price(t['entry_price'])}</td>"
        f"<td>{'open, marked at ' if t['open'] else ''}{when(t['exit_ts'])}</td>"
        f"<td>{format_price(t['exit_price'])}</td><td>{pct(t['return'])}</td></tr>"
        for t in run["trade_list"]
    ]
    return _folded(f"Trades ({len(rows)})", f"<table>{head}{''.join(rows)}</table>", len(rows))


def _signals(run: dict[str, Any]) -> str:
    if not run["signal_list"]:
        return '<p class="note">No signal.</p>'
    head = (
        '<tr><th class="text">bar closed</th><th class="text">side</th><th>close</th>'
        '<th class="text">reason</th><th class="text">filled?</th></tr>'
    )
    rows = [
        f'<tr class="signal"><td class="text">{when(s["bar_ts"])}</td>'
        f'<td class="text {s["type"].lower()}">{s["type"]}</td><td>{format_price(s["price"])}</td>'
        f'<td class="text">{escape(s["reason"] or "")}</td><td class="text">{s["action"]}</td></tr>'
        for s in run["signal_list"]
    ]
    return _folded(f"Signals ({len(rows)})", f"<table>{head}{''.join(rows)}</table>", len(rows))


def _folded(title: str, body: str, count: int) -> str:
    # Short tables open, long ones folded: the charts stay in view.
    opened = " open" if count <= 12 else ""
    return f"<details{opened}><summary>{title}</summary>{body}</details>"


def _run_section(run: Run, data: dict[str, Any]) -> str:
    title = f"{run.symbol}, {run.strategy.name}"
    times, closes = [b.ts for b in run.bars], [b.close for b in run.bars]
    return (
        f'<section class="run" data-run="{escape(run.strategy.name)}:{escape(run.symbol)}">'
        f"<h3>{escape(run.symbol)}</h3>{_headline(data)}"
        f"{price_chart(run.bars, run.signals, run.result.trades, f'{title}: price and signals')}"
        '<p class="note">Close (line), high-low range (grey), BUY ▲ / SELL ▼ at the signal bar'
        "'s close; tinted: a position held (green long, red short).</p>"
        f"{equity_chart(times, run.result.equity, closes, f'{title}: equity')}"
        '<p class="note">Equity (blue) against buy and hold (grey, dashed), % from the start.</p>'
        f"{_trades(data)}{_signals(data)}</section>"
    )


def _params(params: dict[str, float]) -> str:
    return ", ".join(f"{k} {format_number(v)}" for k, v in params.items())


def render(report: Report, data: dict[str, Any]) -> str:
    runs: Sequence[Run] = report.runs
    sections = []
    for name in report.options.strategies:
        pairs = [(r, d) for r, d in zip(runs, data["runs"], strict=True) if r.strategy.name == name]
        body = "".join(_run_section(r, d) for r, d in pairs)
        params = _params(pairs[0][1]["params"]) if pairs else ""
        sections.append(
            f'<section class="strategy" id="{escape(name)}">'
            f"<h2>{escape(name)} ({params})</h2>{body}</section>"
        )
    first = min(r.bars[0].ts for r in runs)
    last = max(r.bars[-1].ts for r in runs)
    skipped = f", {data['bad_rows']} bad rows skipped" if data["bad_rows"] else ""
    intro = (
        f'<p class="note">{escape(data["file"])} ({FORMATS[data["format"]]}'
        f"{skipped}), "
        f"bars closing {when(first)} to {when(last)}. Signals from the live monitor's strategy "
        f"code and runner. Rule: {data['rule']}, each signal filled at the {data['fill']}, "
        f"fee {data['fee_bps']:g} bps of each fill; one symbol at a time with the whole account. "
        "Past signals on this data only: not a forecast.</p>"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Backtest: {escape(report.options.file.name)}</title>"
        f"<style>{STYLE}</style></head>"
        f"<body><h1>Backtest of {escape(report.options.file.name)}</h1>{intro}"
        f"{_summary(data)}{''.join(sections)}</body></html>"
    )
