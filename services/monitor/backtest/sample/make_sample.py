"""Writes BTCUSDT-1h-generated.csv: GENERATED hourly bars in Binance's kline export format.

Not market data. A seeded random walk whose drift changes regime every few days (so trends
and ranges both occur), scaled to look like BTC/USDT in March 2024 (start 61,000 USDT,
about 0.6 % per hour). Columns as data.binance.vision's spot klines: open time, open, high,
low, close, volume, close time (ms), quote volume, trades, taker buy base and quote volume,
ignore. Run ``python services/monitor/backtest/sample/make_sample.py`` to rebuild it
byte for byte.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

SEED = 20240301
BARS = 500
START_MS = 1_709_251_200_000  # 2024-03-01 00:00 UTC
HOUR_MS = 3_600_000
START_PRICE = 61_000.0
SIGMA = 0.006  # per-hour sigma of the log return
REGIME_HOURS = (24, 120)  # how long a drift lasts
DRIFTS = (-0.0008, -0.0003, 0.0, 0.0003, 0.0008)
OUT = Path(__file__).with_name("BTCUSDT-1h-generated.csv")


def rows(rng: random.Random) -> list[str]:
    out = []
    price = START_PRICE
    drift, left = 0.0, 0
    for i in range(BARS):
        if left == 0:
            drift, left = rng.choice(DRIFTS), rng.randint(*REGIME_HOURS)
        left -= 1
        close = price * math.exp(drift + rng.gauss(0.0, SIGMA))
        high = max(price, close) * math.exp(abs(rng.gauss(0.0, SIGMA / 2)))
        low = min(price, close) * math.exp(-abs(rng.gauss(0.0, SIGMA / 2)))
        o, h, lo, c = (round(x, 2) for x in (price, high, low, close))
        volume = round(rng.lognormvariate(math.log(900.0), 0.45), 5)
        taker = round(volume * rng.uniform(0.38, 0.62), 5)
        typical = (h + lo + c) / 3
        opened = START_MS + i * HOUR_MS
        out.append(
            f"{opened},{o:.8f},{h:.8f},{lo:.8f},{c:.8f},{volume:.8f},{opened + HOUR_MS - 1},"
            f"{volume * typical:.8f},{rng.randint(40_000, 160_000)},{taker:.8f},"
            f"{taker * typical:.8f},0"
        )
        price = c
    return out


if __name__ == "__main__":
    OUT.write_text("\n".join(rows(random.Random(SEED))) + "\n")
