"""Replays OHLCV bars from a CSV file, at the original pace or faster.

Columns (header required, any order): ``timestamp,symbol,open,high,low,close,volume``.
``timestamp`` is the bar's close time, Unix seconds or ISO-8601 (UTC if no offset);
``volume`` may be empty.
The file is read once at start-up. A bad row (unparsable, out of order for its symbol,
negative price, high/low not bracketing open/close) is logged with file:line, counted as
a source error and skipped; it never stops the worker.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import math
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from common.logging import get_logger
from monitor.sources.base import Bar, ErrorReport

log = get_logger(__name__)

COLUMNS = ("timestamp", "symbol", "open", "high", "low", "close", "volume")


class BadRow(ValueError):
    pass


def parse_timestamp(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRow(f"timestamp {text!r} is neither Unix seconds nor ISO-8601") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def parse_row(row: dict[str, str | None]) -> Bar:
    try:
        symbol = (row["symbol"] or "").strip()
        ts = parse_timestamp(row["timestamp"] or "")
        o, h, low, c = (float(row[k] or "nan") for k in ("open", "high", "low", "close"))
        v = float(row.get("volume") or 0.0)  # volume is optional: empty means unknown
    except (TypeError, ValueError) as exc:
        raise BadRow(str(exc)) from None
    if not symbol:
        raise BadRow("empty symbol")
    if not all(math.isfinite(x) for x in (ts, o, h, low, c, v)):
        raise BadRow("non-numeric or non-finite value")
    if min(o, h, low, c) < 0 or v < 0:
        raise BadRow("negative price or volume")
    if not low <= min(o, c) <= max(o, c) <= h:
        raise BadRow("high/low do not bracket open/close")
    return Bar(symbol, ts, o, h, low, c, v)


def load_bars(path: Path, report: ErrorReport) -> dict[str, list[Bar]]:
    """Good bars per symbol in file order; bad rows are reported and skipped."""
    bars: dict[str, list[Bar]] = {}
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = set(COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            try:
                bar = parse_row(row)
                previous = bars.get(bar.symbol)
                if previous and bar.ts <= previous[-1].ts:
                    raise BadRow(f"out of order: {bar.ts} after {previous[-1].ts}")
            except BadRow as exc:
                symbol = (row.get("symbol") or "?").strip() or "?"
                log.warning("replay_bad_row", where=where, symbol=symbol, error=str(exc))
                report(symbol, "bad_row")
                continue
            bars.setdefault(bar.symbol, []).append(bar)
    return bars


def usual_gap(bars: list[Bar]) -> float | None:
    """The most common interval between consecutive bars, in seconds (a file has gaps)."""
    gaps = Counter(round(b.ts - a.ts, 3) for a, b in itertools.pairwise(bars))
    return gaps.most_common(1)[0][0] if gaps else None


class ReplaySource:
    name = "replay"

    def __init__(self, path: Path, speed: float, report: ErrorReport) -> None:
        self._path = path
        self._speed = speed
        self._bars = load_bars(path, report)
        self._timeframes = {
            symbol: gap for symbol, bars in self._bars.items() if (gap := usual_gap(bars))
        }

    async def history(self, symbol: str, bars: int) -> list[Bar]:
        # The replayed file is the whole history: strategies warm up on its first bars.
        return []

    async def stream(self, symbol: str, last: Bar | None) -> AsyncIterator[Bar]:
        previous = last.ts if last else None
        for bar in self._bars.get(symbol, []):
            if last is not None and bar.ts <= last.ts:
                continue  # already processed before a restart or by the previous owner
            if previous is not None:
                await asyncio.sleep((bar.ts - previous) / self._speed if self._speed else 0)
            previous = bar.ts
            yield bar
        log.info("replay_finished", symbol=symbol, file=str(self._path))

    def timeframe_s(self, symbol: str) -> float | None:
        return self._timeframes.get(symbol)

    async def aclose(self) -> None:
        return None
