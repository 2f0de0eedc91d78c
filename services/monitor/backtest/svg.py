"""Inline SVG charts for the report: the price with the signals on it, the equity curve.

Hand-written (a few polylines and markers) rather than a plotting library: the report must
be one self-contained file, and nothing new gets installed for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

from monitor.backtest.trading import Trade
from monitor.sources.base import Bar
from monitor.strategies.base import format_price

WIDTH, HEIGHT = 1000, 280
LEFT, RIGHT, TOP, BOTTOM = 80, 16, 14, 28
BUY_COLOUR, SELL_COLOUR = "#15803d", "#b91c1c"
LINE_COLOUR, GRID_COLOUR = "#1f2937", "#e5e7eb"
Y_TICKS = 5
X_TICKS = 6


@dataclass(frozen=True)
class Frame:
    """Maps bar index and value to pixels inside the plot area."""

    n: int
    low: float
    high: float
    height: int = HEIGHT

    def x(self, i: float) -> float:
        span = max(self.n - 1, 1)
        return LEFT + (WIDTH - LEFT - RIGHT) * i / span

    def y(self, value: float) -> float:
        span = (self.high - self.low) or 1.0
        return TOP + (self.height - TOP - BOTTOM) * (self.high - value) / span


def _padded(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    pad = (high - low) * 0.05 or abs(high) * 0.01 or 1.0
    return low - pad, high + pad


def _polyline(frame: Frame, values: Sequence[float], colour: str, extra: str = "") -> str:
    points = " ".join(f"{frame.x(i):.1f},{frame.y(v):.1f}" for i, v in enumerate(values))
    return f'<polyline fill="none" stroke="{colour}" stroke-width="1.4" {extra}points="{points}"/>'


def _time_label(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def nice_ticks(low: float, high: float, count: int = Y_TICKS) -> list[float]:
    """Round values (1, 2 or 5 times a power of ten apart) between ``low`` and ``high``."""
    span = high - low
    if not span > 0:
        return [low]
    raw = span / (count - 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    return [first + k * step for k in range(int((high - first) / step) + 1)]


def _axes(frame: Frame, times: Sequence[float], label: Any) -> list[str]:
    """Horizontal grid lines with value labels, and time labels along the bottom (UTC)."""
    parts = []
    for value in nice_ticks(frame.low, frame.high):
        y = frame.y(value)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID_COLOUR}"/><text x="{LEFT - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end">{escape(label(value))}</text>'
        )
    for k in range(X_TICKS):
        i = round((len(times) - 1) * k / (X_TICKS - 1))
        anchor = "start" if k == 0 else "end" if k == X_TICKS - 1 else "middle"
        parts.append(
            f'<text x="{frame.x(i):.1f}" y="{frame.height - 8}" text-anchor="{anchor}">'
            f"{_time_label(times[i])}</text>"
        )
    return parts


def _svg(kind: str, title: str, body: list[str], height: int = HEIGHT) -> str:
    return (
        f'<svg class="chart {kind}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="11" '
        f'fill="#374151"><title>{escape(title)}</title>{"".join(body)}</svg>'
    )


def _holding_bands(frame: Frame, trades: Sequence[Trade]) -> list[str]:
    """A tint behind the bars a position was held: green for long, red for short."""
    bands = []
    for t in trades:
        colour = BUY_COLOUR if t.side > 0 else SELL_COLOUR
        x0, x1 = frame.x(t.entry_i - 0.5), frame.x(t.exit_i)
        bands.append(
            f'<rect class="held" x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 1):.1f}" '
            f'height="{frame.height - TOP - BOTTOM}" fill="{colour}" fill-opacity="0.07"/>'
        )
    return bands


def _marker(x: float, y: float, side: str, tip: str) -> str:
    """A triangle under the close for a BUY (pointing up), over it for a SELL."""
    if side == "BUY":
        points, colour = (
            f"{x:.1f},{y + 4:.1f} {x - 5:.1f},{y + 13:.1f} {x + 5:.1f},{y + 13:.1f}",
            BUY_COLOUR,
        )
    else:
        points, colour = (
            f"{x:.1f},{y - 4:.1f} {x - 5:.1f},{y - 13:.1f} {x + 5:.1f},{y - 13:.1f}",
            SELL_COLOUR,
        )
    return (
        f'<polygon class="marker {side.lower()}" points="{points}" fill="{colour}">'
        f"<title>{escape(tip)}</title></polygon>"
    )


def price_chart(
    bars: Sequence[Bar], signals: Sequence[dict[str, Any]], trades: Sequence[Trade], title: str
) -> str:
    closes = [b.close for b in bars]
    frame = Frame(len(bars), *_padded([b.low for b in bars] + [b.high for b in bars]))
    index = {round(b.ts * 1000): i for i, b in enumerate(bars)}
    body = [*_holding_bands(frame, trades), *_axes(frame, [b.ts for b in bars], format_price)]
    # The high-low range as a faint band, the close as the line.
    band = [f"{frame.x(i):.1f},{frame.y(b.high):.1f}" for i, b in enumerate(bars)]
    band += [f"{frame.x(i):.1f},{frame.y(b.low):.1f}" for i, b in reversed(list(enumerate(bars)))]
    body.append(f'<polygon points="{" ".join(band)}" fill="{LINE_COLOUR}" fill-opacity="0.08"/>')
    body.append(_polyline(frame, closes, LINE_COLOUR, 'class="close" '))
    for s in signals:
        i = index[round(s["bar_ts"] * 1000)]
        tip = f"{s['type']} {_time_label(s['bar_ts'])} UTC: {s.get('reason', '')}"
        body.append(_marker(frame.x(i), frame.y(closes[i]), s["type"], tip))
    return _svg("price", title, body)


def equity_chart(
    times: Sequence[float], equity: Sequence[float], closes: Sequence[float], title: str
) -> str:
    """The strategy's equity and buy-and-hold (dashed), both as % change from the start."""
    mine = [(e - 1.0) * 100 for e in equity]
    hold = [(c / closes[0] - 1.0) * 100 for c in closes] if closes and closes[0] else []
    frame = Frame(len(mine), *_padded([0.0, *mine, *hold]), height=220)
    body = _axes(frame, times, lambda v: f"{v:+g} %")
    zero = frame.y(0.0)
    body.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{zero:.1f}" y2="{zero:.1f}" stroke="#9ca3af"/>'
    )
    if hold:
        body.append(_polyline(frame, hold, "#9ca3af", 'class="hold" stroke-dasharray="4 3" '))
    body.append(_polyline(frame, mine, "#2563eb", 'class="equity" '))
    return _svg("equity", title, body, height=220)
