"""Market-data sources, one module each; ``create_source`` picks one by name."""

from __future__ import annotations

from monitor.settings import MonitorSettings
from monitor.sources.base import Bar, MarketSource


def create_source(settings: MonitorSettings) -> MarketSource:
    if settings.source == "sim":
        from monitor.sources.sim import SimulatedMarket

        return SimulatedMarket(
            settings.symbols, tick_interval_s=settings.tick_interval_s, seed=settings.sim_seed
        )
    raise ValueError(f"unknown SOURCE {settings.source!r}")


__all__ = ["Bar", "MarketSource", "create_source"]
