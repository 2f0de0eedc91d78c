"""Signal strategies, one module each; ``create_strategies`` builds the configured set."""

from __future__ import annotations

from monitor.strategies.base import Strategy
from monitor.strategies.sma_cross import SmaCross


def create_strategies(names: list[str], fast: int, slow: int) -> list[Strategy]:
    available: dict[str, Strategy] = {"sma_cross": SmaCross(fast=fast, slow=slow)}
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"unknown strategies {unknown}; available: {sorted(available)}")
    return [available[n] for n in names]


__all__ = ["Strategy", "create_strategies"]
