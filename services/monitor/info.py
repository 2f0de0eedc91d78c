"""What the monitor's market data is, for people: the hash ``monitor_info_key(channel)``.

The gateway's GET /api/info shows it as ``market``, so a page can say plainly that prices
are simulated or replayed. Written at start and with every lease renewal, and left to
expire (a few lease periods) once no monitor is running.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from common.constants import monitor_info_key
from monitor.settings import MonitorSettings
from monitor.sources import MarketSource, format_timeframe

#: Lease periods the hash outlives its last refresh.
TTL_LEASES = 3


def market_info(settings: MonitorSettings, source: MarketSource) -> dict[str, str]:
    # One timeframe for the hash: the first symbol's (every source here has one per run).
    timeframe = format_timeframe(source.timeframe_s(settings.symbols[0]))
    return {
        "source": settings.source,
        "simulated": "1" if settings.source == "sim" else "0",
        "timeframe": timeframe or "",
        "symbols": ",".join(settings.symbols),
        "strategies": ",".join(settings.strategies),
    }


async def write_info(
    client: aioredis.Redis, channel: str, info: dict[str, str], lease_ttl_s: float
) -> None:
    key = monitor_info_key(channel)
    pipe = client.pipeline(transaction=True)
    pipe.hset(key, mapping=info)  # type: ignore[arg-type]
    pipe.pexpire(key, int(lease_ttl_s * TTL_LEASES * 1000))
    await pipe.execute()
