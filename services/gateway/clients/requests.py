"""What a client asks for: its filter (subscribe, unsubscribe, connect ``auth``) and resume.

A filter request is a list of symbols or one symbol (the original form), or an object
``{"symbols": [...], "strategies": [...], "types": ["BUY" | "SELL"]}`` with any of the
three; each value is a list or one string. The filter model is gateway/delivery/filters.py.
"""

from __future__ import annotations

from typing import Any

from common.constants import OFFSET_FIELD
from common.offsets import Position, parse_position
from gateway.delivery.filters import SIDES, SignalFilter

MAX_SYMBOLS_PER_REQUEST = 200
MAX_SYMBOL_LENGTH = 64
#: The filter's dimensions, as a request and an ack spell them.
FILTER_KEYS = ("symbols", "strategies", "types")


class SymbolRequestError(ValueError):
    pass


def parse_symbols(data: Any, what: str = "symbol") -> list[str]:
    """Accept a list of symbols (or one symbol) from a client, or say what is wrong."""
    if isinstance(data, str):
        data = [data]
    if isinstance(data, dict):
        data = data.get("symbols")
    if not isinstance(data, list) or not all(isinstance(s, str) for s in data):
        raise SymbolRequestError(f"expected a list of {what} strings")
    if len(data) > MAX_SYMBOLS_PER_REQUEST:
        raise SymbolRequestError(f"at most {MAX_SYMBOLS_PER_REQUEST} {what}s per request")
    symbols = [s.strip() for s in data if s.strip()]
    if any(len(s) > MAX_SYMBOL_LENGTH for s in symbols):
        raise SymbolRequestError(f"{what}s are at most {MAX_SYMBOL_LENGTH} characters")
    return list(dict.fromkeys(symbols))


def parse_filter(data: Any) -> SignalFilter:
    """A subscribe/unsubscribe request: symbols (list or string) or an object of filters."""
    if not isinstance(data, dict):
        return SignalFilter(frozenset(parse_symbols(data)))
    if unknown := sorted(str(k) for k in data if k not in FILTER_KEYS):
        raise SymbolRequestError(
            f"unknown filter keys {unknown[:5]}: expected symbols, strategies, types"
        )
    return _dimensions(data)


def _dimensions(data: dict[Any, Any]) -> SignalFilter:
    """The three filter keys of ``data`` (absent or null: that dimension is not asked)."""

    def values(key: str, what: str) -> frozenset[str]:
        raw = data.get(key)
        if isinstance(raw, dict):
            raise SymbolRequestError(f"{key}: expected a list of {what} strings")
        return frozenset() if raw is None else frozenset(parse_symbols(raw, what))

    types = frozenset(t.upper() for t in values("types", "type"))
    if not types <= SIDES:
        raise SymbolRequestError("types must be BUY or SELL")
    return SignalFilter(values("symbols", "symbol"), values("strategies", "strategy"), types)


def parse_resume(auth: Any) -> tuple[Position | None, SignalFilter]:
    """Parse ``auth``: ``{"offset": "<last offset seen>", "symbols", "strategies", "types"}``.

    All optional. Raises only ``SymbolRequestError``, whatever the client sent: the connect
    handler turns it into a ``connect_error`` (tests/unit/gateway/test_resume_request.py
    holds it to that).
    """
    if not isinstance(auth, dict):
        return None, SignalFilter()
    raw_offset = auth.get(OFFSET_FIELD)
    position = parse_position(raw_offset)
    if raw_offset is not None and position is None:
        raise SymbolRequestError(
            f"'{OFFSET_FIELD}' must be a history position like 'k3x9q2ab:1700000000000-0'"
        )
    return position, _dimensions(auth)
