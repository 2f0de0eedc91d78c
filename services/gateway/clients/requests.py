"""What a client asks for: symbol lists and the resume request in its connect ``auth``."""

from __future__ import annotations

from typing import Any

from common.constants import OFFSET_FIELD
from common.offsets import Position, parse_position

MAX_SYMBOLS_PER_REQUEST = 200
MAX_SYMBOL_LENGTH = 64


class SymbolRequestError(ValueError):
    pass


def parse_symbols(data: Any) -> list[str]:
    """Accept a list of symbols (or one symbol) from a client, or say what is wrong."""
    if isinstance(data, str):
        data = [data]
    if isinstance(data, dict):
        data = data.get("symbols")
    if not isinstance(data, list) or not all(isinstance(s, str) for s in data):
        raise SymbolRequestError("expected a list of symbol strings")
    if len(data) > MAX_SYMBOLS_PER_REQUEST:
        raise SymbolRequestError(f"at most {MAX_SYMBOLS_PER_REQUEST} symbols per request")
    symbols = [s.strip() for s in data if s.strip()]
    if any(len(s) > MAX_SYMBOL_LENGTH for s in symbols):
        raise SymbolRequestError(f"symbols are at most {MAX_SYMBOL_LENGTH} characters")
    return list(dict.fromkeys(symbols))


def parse_resume(auth: Any) -> tuple[Position | None, list[str]]:
    """Parse ``auth``: ``{"offset": "<last offset seen>", "symbols": [...]}``, both optional.

    Raises only ``SymbolRequestError``, whatever the client sent: the connect handler turns
    it into a ``connect_error`` (tests/unit/gateway/test_resume_request.py holds it to that).
    """
    if not isinstance(auth, dict):
        return None, []
    raw_offset = auth.get(OFFSET_FIELD)
    position = parse_position(raw_offset)
    if raw_offset is not None and position is None:
        raise SymbolRequestError(
            f"'{OFFSET_FIELD}' must be a history position like 'k3x9q2ab:1700000000000-0'"
        )
    symbols = parse_symbols(auth["symbols"]) if auth.get("symbols") is not None else []
    return position, symbols
