"""Signal strategies, one module each; ``build_strategy_book`` builds them per symbol.

Adding a strategy: one module with a frozen dataclass implementing ``Strategy``, one line
in ``_FACTORIES``. Its numeric dataclass fields are its parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, get_type_hints

from pydantic import TypeAdapter, ValidationError

from monitor.strategies.base import Strategy, Trigger
from monitor.strategies.bollinger import BollingerBreakout
from monitor.strategies.macd import MacdCross
from monitor.strategies.rsi import RsiReversal
from monitor.strategies.sma_cross import MaCross

_FACTORIES: dict[str, Callable[..., Strategy]] = {
    "sma_cross": partial(MaCross, kind="sma"),
    "ema_cross": partial(MaCross, fast=12, slow=26, kind="ema"),
    "rsi": RsiReversal,
    "macd_cross": MacdCross,
    "bollinger": BollingerBreakout,
}
#: Fields that identify a strategy rather than tune it.
_FIXED = {"name", "kind"}

AVAILABLE = tuple(_FACTORIES)
Params = Mapping[str, Mapping[str, float]]


def create_strategy(name: str, params: Mapping[str, float]) -> Strategy:
    """One strategy with ``params`` over its defaults; ValueError names what is wrong."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown strategy {name!r}; available: {', '.join(AVAILABLE)}")
    factory = _FACTORIES[name]
    cls: Any = factory.func if isinstance(factory, partial) else factory
    hints = get_type_hints(cls)
    allowed = {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.name not in _FIXED}
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"{name}: unknown parameters {unknown}; known: {sorted(allowed)}")
    checked: dict[str, Any] = {}
    for key, value in params.items():
        try:
            # Lax checks turn JSON's 5.0 into 5 for int fields but refuse 5.5 or "x".
            checked[key] = TypeAdapter(allowed[key]).validate_python(value)
        except ValidationError as exc:
            raise ValueError(f"{name}: {key}: {exc.errors()[0]['msg']}") from None
    try:
        return factory(**checked)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: {exc}") from None


def build_strategy_book(
    symbols: list[str],
    names: list[str],
    params: Params,
    symbol_params: Mapping[str, Params],
) -> dict[str, list[Strategy]]:
    """For each symbol, its configured strategies with per-symbol parameter overrides."""
    unknown = sorted({*params, *(n for p in symbol_params.values() for n in p)} - set(names))
    if unknown:
        raise ValueError(f"parameters given for strategies not in STRATEGIES: {unknown}")
    stray = sorted(set(symbol_params) - set(symbols))
    if stray:
        raise ValueError(f"SYMBOL_PARAMS names symbols not in SYMBOLS: {stray}")
    shared = {name: create_strategy(name, params.get(name, {})) for name in names}
    book: dict[str, list[Strategy]] = {}
    for symbol in symbols:
        overrides = symbol_params.get(symbol, {})
        book[symbol] = [
            create_strategy(n, {**params.get(n, {}), **overrides[n]})
            if n in overrides
            else shared[n]
            for n in names
        ]
    return book


__all__ = ["AVAILABLE", "Strategy", "Trigger", "build_strategy_book", "create_strategy"]
