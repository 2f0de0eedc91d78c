"""Bars from a file: the replay source's CSV, or Binance's kline export.

The replay format (``timestamp,symbol,open,...``, sources/replay.py) is read by the replay
source's own ``load_bars``, with its validation. Binance's exports (data.binance.vision,
``BTCUSDT-1h-2024-03.csv``) have no symbol column and, for spot, no header: twelve columns,
open time first and close time seventh, in milliseconds (microseconds in spot files since
2025). The symbol is the file name up to its first ``-``. Each row goes through the replay
source's ``parse_row``, so both formats refuse the same bad bars.
"""

from __future__ import annotations

import csv
from pathlib import Path

from common.logging import get_logger
from monitor.sources.base import Bar, ErrorReport
from monitor.sources.replay import BadRow, load_bars, parse_row

log = get_logger(__name__)

#: Binance kline columns, as in its futures files' header (spot files have none).
BINANCE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
# Binance timestamps: milliseconds, or microseconds (spot since 2025); seconds never.
MICROSECONDS_FROM = 10**14


class DataError(ValueError):
    """The file cannot be read as bars at all (missing, empty, an unknown format)."""


def detect_format(path: Path) -> str:
    """``replay`` or ``binance``, from the first line."""
    try:
        with path.open(newline="") as handle:
            first = next(csv.reader(handle), [])
    except OSError as exc:
        raise DataError(f"{path}: {exc.strerror or exc}") from None
    names = {cell.strip().lower() for cell in first}
    if {"timestamp", "symbol"} <= names:
        return "replay"
    if len(first) == len(BINANCE_COLUMNS) and ("open_time" in names or first[0].strip().isdigit()):
        return "binance"
    raise DataError(
        f"{path}: not a replay CSV (header timestamp,symbol,open,high,low,close,volume)"
        " nor a Binance kline export (12 columns, open time first)"
    )


def binance_close_ts(close_time: str) -> float:
    """A kline's close time (the last millisecond of the bar) as the bar's close, Unix s."""
    raw = int(close_time)
    if raw >= MICROSECONDS_FROM:
        return (raw + 1) / 1_000_000
    return (raw + 1) / 1000


def load_binance(path: Path, report: ErrorReport) -> dict[str, list[Bar]]:
    symbol = path.name.split("-", 1)[0].split(".", 1)[0]
    bars: list[Bar] = []
    with path.open(newline="") as handle:
        for line, cells in enumerate(csv.reader(handle), start=1):
            if line == 1 and cells and cells[0].strip() == "open_time":
                continue
            where = f"{path}:{line}"
            try:
                if len(cells) != len(BINANCE_COLUMNS):
                    raise BadRow(f"{len(cells)} columns, expected {len(BINANCE_COLUMNS)}")
                row = dict(zip(BINANCE_COLUMNS, cells, strict=True))
                ts = binance_close_ts(row["close_time"])
                bar = parse_row({**row, "symbol": symbol, "timestamp": str(ts)})
                if bars and bar.ts <= bars[-1].ts:
                    raise BadRow(f"out of order: {bar.ts} after {bars[-1].ts}")
            except (BadRow, ValueError) as exc:
                log.warning("replay_bad_row", where=where, symbol=symbol, error=str(exc))
                report(symbol, "bad_row")
                continue
            bars.append(bar)
    return {symbol: bars} if bars else {}


def load_file(path: Path, report: ErrorReport) -> dict[str, list[Bar]]:
    """Good bars per symbol, oldest first; bad rows are logged, reported and skipped."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if detect_format(path) == "binance":
        return load_binance(path, report)
    try:
        return load_bars(path, report)
    except ValueError as exc:  # missing columns
        raise DataError(str(exc)) from None
