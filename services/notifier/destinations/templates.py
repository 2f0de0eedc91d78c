"""Message text: a ``string.Template`` over a signal's fields, rendered so it never fails.

Placeholders (every value is text; a field the signal lacks renders as ""):

- ``$type`` / ``$side`` "BUY", ``$symbol`` "BTC-USD", ``$strategy`` "sma_cross",
  ``$timeframe`` "1m", ``$id``, ``$offset``
- ``$price`` "60,112.40" (the monitor's sentence format), ``$price_raw`` "60112.4"
- ``$reason`` the monitor's sentence "SMA 5 crossed above SMA 20 at 60,112.40", ``$why`` the
  same without its closing " at <price>" (the headline already says it)
- ``$time`` "2026-12-02 01:09:05 UTC" (the signal's ``ts``)
- ``$params`` "fast=5, slow=20", ``$indicators`` "sma_fast=60,100.12, sma_slow=60,050.00"
- ``$headline`` "BUY BTC-USD at 60,112.40", ``$context`` "sma_cross, 1m", and
  ``$summary`` "BUY BTC-USD at 60,112.40 (sma_cross, 1m): SMA 5 crossed above SMA 20",
  which leaves out the parts a signal does not have.

A destination passes an ``escape`` for its markup (Slack mrkdwn, Telegram HTML, ...); it
applies to the values only, so markup written in the template itself stays markup.
Templates are checked when the configuration loads (``check_template``): an unknown
placeholder is a start-up error, not a message with "$symbl" in it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from string import Template
from typing import Any, ClassVar, Final

from pydantic import field_validator

from notifier.destinations.base import DestinationConfig

#: What ``check_template`` accepts; ``signal_fields`` fills every one.
FIELDS: Final = frozenset(
    {
        "type",
        "side",
        "symbol",
        "strategy",
        "timeframe",
        "id",
        "offset",
        "price",
        "price_raw",
        "reason",
        "why",
        "time",
        "params",
        "indicators",
        "headline",
        "context",
        "summary",
    }
)
DEFAULT_TEXT: Final = "$summary"

# The monitor's format_price (monitor.strategies.base), which this service cannot import
# (its image holds common and notifier only); a unit test keeps the two the same.
PRICE_DECIMALS = 2
MAX_PRICE_DECIMALS = 12
# " at 60,112.40" closing a reason: the headline already carries the price.
_TRAILING_PRICE = re.compile(r"\s+at\s+-?[0-9][0-9,]*(?:\.[0-9]+)?\s*$")


def format_price(price: float) -> str:
    """60112.4 -> "60,112.40"; 0.4567 -> "0.4567"; 0.00001234 -> "0.00001234"."""
    decimals = PRICE_DECIMALS
    if 0.0 < abs(price) < 1.0:
        decimals = min(MAX_PRICE_DECIMALS, 3 - math.floor(math.log10(abs(price))))
    return f"{price:,.{decimals}f}"


def check_template(template: str) -> str:
    """The template if every placeholder is known, else ValueError saying which is not."""
    parsed = Template(template)
    if not parsed.is_valid():
        raise ValueError("a '$' that starts no placeholder (write '$$' for a literal '$')")
    unknown = sorted(set(parsed.get_identifiers()) - FIELDS)
    if unknown:
        raise ValueError(
            f"unknown placeholder(s) {', '.join('$' + u for u in unknown)};"
            f" known: {', '.join(sorted(FIELDS))}"
        )
    return template


def render(
    template: str,
    signal: Mapping[str, Any],
    escape: Callable[[str], str] = str,
) -> str:
    """The template filled from the signal; never raises on an odd signal or template."""
    values = {name: escape(value) for name, value in signal_fields(signal).items()}
    return Template(template).safe_substitute(values)


def signal_fields(signal: Mapping[str, Any]) -> dict[str, str]:
    """Every placeholder's text for this signal (see the module docstring)."""
    side = _text(signal.get("type"))
    symbol = _text(signal.get("symbol"))
    strategy = _text(signal.get("strategy"))
    timeframe = _text(signal.get("timeframe"))
    raw_price = signal.get("price")
    price = _price(raw_price)
    reason = _text(signal.get("reason"))
    why = _TRAILING_PRICE.sub("", reason).strip() or reason
    headline = " ".join(p for p in (side, symbol) if p)
    if price:
        headline = f"{headline} at {price}" if headline else price
    context = ", ".join(p for p in (strategy, timeframe) if p)
    summary = headline + (f" ({context})" if context else "") + (f": {why}" if why else "")
    return {
        "type": side,
        "side": side,
        "symbol": symbol,
        "strategy": strategy,
        "timeframe": timeframe,
        "id": _text(signal.get("id")),
        "offset": _text(signal.get("offset")),
        "price": price,
        "price_raw": _scalar(raw_price),
        "reason": reason,
        "why": why,
        "time": _time(signal.get("ts")),
        "params": _named(signal.get("params"), lambda v: f"{v:g}"),
        "indicators": _named(signal.get("indicators"), format_price),
        "headline": headline,
        "context": context,
        "summary": summary.strip(),
    }


def truncate(text: str, limit: int) -> str:
    """At most ``limit`` characters, with an ellipsis when cut (chat APIs refuse longer)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else _scalar(value)


def _scalar(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float | str):
        return str(value)
    return ""  # objects and lists have no one-line form worth showing


def _finite(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an int beyond float's range
            return None
        return number if math.isfinite(number) else None
    return None


def _price(value: object) -> str:
    number = _finite(value)
    return "" if number is None else format_price(number)


def _time(value: object) -> str:
    seconds = _finite(value)
    try:
        when = datetime.fromtimestamp(seconds, UTC) if seconds is not None else None
    except (OverflowError, OSError, ValueError):  # far outside the calendar
        when = None
    return "" if when is None else when.strftime("%Y-%m-%d %H:%M:%S UTC")


def _named(value: object, fmt: Callable[[float], str]) -> str:
    if not isinstance(value, Mapping):
        return ""
    parts = []
    for name, raw in value.items():
        number = _finite(raw)
        if isinstance(name, str) and number is not None:
            parts.append(f"{name}={fmt(number)}")
    return ", ".join(parts)


class TemplatedConfig(DestinationConfig):
    """A destination that sends text: its ``template`` is checked at load time."""

    #: The destination's readable default, used when the file gives no ``template``.
    default_template: ClassVar[str] = DEFAULT_TEXT

    @field_validator("template")
    @classmethod
    def _known_placeholders(cls, value: str | None) -> str | None:
        return None if value is None else check_template(value)

    def text(self, signal: Mapping[str, Any], escape: Callable[[str], str] = str) -> str:
        """The message for this signal; the default template when the given one renders
        to nothing (chat APIs refuse an empty message, and that would be permanent)."""
        rendered = render(self.template or self.default_template, signal, escape)
        if not rendered.strip():
            rendered = render(DEFAULT_TEXT, signal, escape)
        return rendered.strip() or escape("signal")
