"""What the destination tests share: a signal as the monitor publishes it, and its delivery."""

from __future__ import annotations

from typing import Any

from common.schema import make_signal
from notifier.destinations.base import Delivery

SIGNAL_ID = "BTC-USD:sma_cross:1700000000000"
ENTRY_ID = "1700000000123-0"


def sample_signal(**changes: Any) -> dict[str, Any]:
    signal = make_signal(
        signal_id=SIGNAL_ID,
        signal_type="BUY",
        price=60112.4,
        symbol="BTC-USD",
        strategy="sma_cross",
        ts=1700000000.0,
        timeframe="1m",
        params={"fast": 5, "slow": 20},
        indicators={"sma_fast": 60100.123, "sma_slow": 60050.0},
        reason="SMA 5 crossed above SMA 20 at 60,112.40",
        offset=f"k3x9q2ab:{ENTRY_ID}",
    )
    signal.update(changes)
    return signal


def sample_delivery(attempt: int = 1, **changes: Any) -> Delivery:
    signal = sample_signal(**changes)
    return Delivery(signal, str(signal.get("id") or ENTRY_ID), ENTRY_ID, attempt)


SUMMARY = "BUY BTC-USD at 60,112.40 (sma_cross, 1m): SMA 5 crossed above SMA 20"
