"""The backtest for programs (``--json``) and for a terminal (the summary table)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from monitor.backtest.engine import Report, Run
from monitor.backtest.trading import Trade

FILL_RULE = "next bar's open"


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def pct(value: float | None, signed: bool = True) -> str:
    if value is None:
        return "-"
    return f"{value * 100:+.2f} %" if signed else f"{value * 100:.1f} %"


def trade_dict(run: Run, trade: Trade) -> dict[str, Any]:
    return {
        "side": "long" if trade.side > 0 else "short",
        "entry_ts": run.bars[trade.entry_i].ts,
        "entry_price": trade.entry_price,
        "exit_ts": run.bars[trade.exit_i].ts,
        "exit_price": trade.exit_price,
        "return": trade.ret,
        "open": trade.open,
    }


def run_dict(run: Run) -> dict[str, Any]:
    return {
        **run.summary.as_dict(),
        "params": dict(run.strategy.params),
        "timeframe": run.timeframe,
        "first_bar_ts": run.bars[0].ts,
        "last_bar_ts": run.bars[-1].ts,
        "trade_list": [trade_dict(run, t) for t in run.result.trades],
        "signal_list": [
            {
                "bar_ts": s["bar_ts"],
                "type": s["type"],
                "price": s["price"],
                "reason": s.get("reason"),
                "action": action,
            }
            for s, action in zip(run.signals, run.result.actions, strict=True)
        ],
    }


def report_dict(report: Report, html_path: str | None) -> dict[str, Any]:
    options = report.options
    return {
        "file": str(options.file),
        "format": report.file_format,
        "bad_rows": report.bad_rows,
        "rule": options.rule,
        "fill": FILL_RULE,
        "fee_bps": options.fee_bps,
        "report": html_path,
        "strategy_errors": report.strategy_errors,
        "runs": [run_dict(run) for run in report.runs],
    }


#: The summary table's columns: heading, and the cell of one run.
COLUMNS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("strategy", lambda r: r["strategy"]),
    ("symbol", lambda r: r["symbol"]),
    ("bars", lambda r: str(r["bars"])),
    ("signals", lambda r: str(r["signals"])),
    ("trades", lambda r: f"{r['trades']}{'+1 open' if r['open_trade'] else ''}"),
    ("hit rate", lambda r: pct(r["hit_rate"], signed=False)),
    ("avg trade", lambda r: pct(r["avg_trade_return"])),
    ("total return", lambda r: pct(r["total_return"])),
    ("buy & hold", lambda r: pct(r["buy_and_hold"])),
    ("max drawdown", lambda r: pct(r["max_drawdown"], signed=False)),
    ("exposure", lambda r: pct(r["exposure"], signed=False)),
]


def summary_table(data: dict[str, Any]) -> str:
    rows = [[heading for heading, _ in COLUMNS]]
    rows += [[cell(run) for _, cell in COLUMNS] for run in data["runs"]]
    widths = [max(len(row[k]) for row in rows) for k in range(len(COLUMNS))]
    lines = [
        "  ".join(
            c.ljust(w) if k < 2 else c.rjust(w)
            for k, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    head = (
        f"{data['file']}: {data['rule']}, filled at the {data['fill']}, "
        f"fee {data['fee_bps']:g} bps per fill"
    )
    failed = [f"{n} failed on {c} bars" for n, c in data["strategy_errors"].items() if c]
    if failed:
        lines.append(f"\nwarning: {'; '.join(failed)} (logged as strategy_failed): no signal there")
    return "\n".join([head, "", *lines])
