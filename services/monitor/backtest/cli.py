"""``python -m monitor backtest``: the command line (exit 2 on any usage error, common.cli)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from common.cli import EXIT_OK, EXIT_USAGE
from common.logging import configure_logging
from monitor.backtest.data import DataError
from monitor.backtest.engine import NoBars, Options, run_backtest
from monitor.backtest.output import report_dict, summary_table
from monitor.backtest.report import render
from monitor.strategies import AVAILABLE

PROG = "python -m monitor backtest"
DEFAULT_OUT = Path("backtest-report.html")
MAX_FEE_BPS = 1000.0  # 10 % a fill: beyond that it is a typo, not a fee
EPILOG = """\
Runs the live monitor's strategy code over the file's bars and writes an HTML report.
Trading rule (docs/monitor.md, "Backtests"): long on BUY and flat on SELL (--short: short
on SELL), filled at the next bar's open, the fee charged on every fill.
Files: the replay CSV (timestamp,symbol,open,high,low,close,volume) or a Binance kline
export (BTCUSDT-1h-2024-03.csv; the symbol is the name up to the first '-').
Exit codes: 0 done, 2 bad argument or unreadable file."""


def _fee(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and 0 <= value <= MAX_FEE_BPS):
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_FEE_BPS:g}, got {text}")
    return value


def _params(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise argparse.ArgumentTypeError('expected {"strategy": {"param": value}}')
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Backtest the monitor's strategies over a file of OHLCV bars.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument("--source", choices=["replay"], default="replay", help="data source (replay)")
    p.add_argument("--file", type=Path, required=True, help="CSV of bars")
    p.add_argument(
        "--strategy",
        action="append",
        choices=AVAILABLE,
        required=True,
        metavar="NAME",
        help=f"strategy to test, one of {', '.join(AVAILABLE)}; repeat for several",
    )
    p.add_argument(
        "--symbol",
        action="append",
        default=[],
        help="only this symbol; repeat for several (default: all in the file)",
    )
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"HTML report (default {DEFAULT_OUT})"
    )
    p.add_argument(
        "--fee-bps", type=_fee, default=10.0, help="fee per fill, basis points (default 10)"
    )
    p.add_argument("--short", action="store_true", help="go short on SELL instead of flat")
    p.add_argument(
        "--params",
        type=_params,
        default={},
        help='strategy parameters as STRATEGY_PARAMS: {"sma_cross": {"fast": 10}}',
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON, no table")
    return p


def main(argv: list[str]) -> int:
    p = parser()
    args = p.parse_args(argv)
    if len(set(args.strategy)) != len(args.strategy):
        p.error("--strategy: each strategy once")
    configure_logging("warning", "auto", service="monitor")  # stderr: stdout stays the result
    options = Options(
        file=args.file,
        strategies=args.strategy,
        symbols=list(dict.fromkeys(args.symbol)),
        fee_bps=args.fee_bps,
        short=args.short,
        params=args.params,
    )
    try:
        report = run_backtest(options)
    except (DataError, NoBars, ValueError) as exc:
        p.exit(EXIT_USAGE, f"{PROG}: error: {exc}\n")
    data = report_dict(report, str(args.out))
    try:
        args.out.write_text(render(report, data), encoding="utf-8")
    except OSError as exc:
        p.exit(EXIT_USAGE, f"{PROG}: error: --out {args.out}: {exc.strerror or exc}\n")
    if args.json:
        print(json.dumps(data, indent=2, allow_nan=False))
    else:
        print(summary_table(data))
        print(f"\nreport: {args.out}")
    return EXIT_OK
