"""Market-data sources, one module each; ``create_source`` picks one by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.settings import MonitorSettings
from monitor.sources.base import Bar, ErrorReport, MarketSource, format_timeframe

if TYPE_CHECKING:
    from monitor.metrics import MonitorMetrics


def create_source(
    settings: MonitorSettings, report: ErrorReport, metrics: MonitorMetrics | None = None
) -> MarketSource:
    # Imported lazily: the exchange source pulls in ccxt, which the others never need.
    if settings.source == "sim":
        from monitor.sources.sim import SimulatedMarket

        return SimulatedMarket(settings.tick_interval_s, settings.sim_seed, settings.sim_volatility)
    if settings.source == "replay":
        from monitor.sources.replay import ReplaySource

        return ReplaySource(settings.replay_file, settings.replay_speed, report)
    if settings.source == "exchange" and settings.exchange_stream:
        from monitor.sources.exchange_stream import StreamingExchangeSource

        return StreamingExchangeSource(
            exchange_id=settings.exchange_id,
            timeframe=settings.exchange_timeframe,
            poll_interval_s=settings.exchange_poll_interval_s,
            timeout_s=settings.exchange_timeout_s,
            stale_s=settings.exchange_stream_stale_s,
            url=settings.exchange_url,
            stream_url=settings.exchange_stream_url,
            options=settings.exchange_options,
            metrics=metrics,
            backoff_max_s=settings.source_backoff_max_s,
        )
    if settings.source == "exchange":
        from monitor.sources.exchange import ExchangeSource

        return ExchangeSource(
            exchange_id=settings.exchange_id,
            timeframe=settings.exchange_timeframe,
            poll_interval_s=settings.exchange_poll_interval_s,
            timeout_s=settings.exchange_timeout_s,
            url=settings.exchange_url,
            options=settings.exchange_options,
        )
    raise ValueError(f"unknown SOURCE {settings.source!r}")


__all__ = ["Bar", "ErrorReport", "MarketSource", "create_source", "format_timeframe"]
