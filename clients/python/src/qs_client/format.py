"""How the CLI prints signals: one readable line on a terminal, JSON lines otherwise."""

from __future__ import annotations

import json
import time
from typing import Any

from qs_client.models import Recovery, Signal

_GREEN, _RED, _DIM, _RESET = "\x1b[32m", "\x1b[31m", "\x1b[2m", "\x1b[0m"


def signal_line(signal: Signal, *, color: bool = False) -> str:
    """``12:00:01  BUY   BTC-USD   60,112.40  sma_cross  k3x9q2ab:17000-0``."""
    when = time.strftime("%H:%M:%S", time.localtime(signal.ts)) if signal.ts else "--:--:--"
    side = f"{signal.type:<4}"
    if color:
        side = f"{_GREEN if signal.type == 'BUY' else _RED}{side}{_RESET}"
    parts = [when, side, f"{signal.symbol or '-':<10}", f"{signal.price:>14,.2f}"]
    parts.append(f"{signal.strategy or '-':<12}")
    offset = signal.offset or ""
    parts.append(f"{_DIM}{offset}{_RESET}" if color and offset else offset)
    if signal.extra:
        parts.append(json.dumps(signal.extra, separators=(",", ":"), sort_keys=True))
    return "  ".join(parts).rstrip()


def recovery_line(notice: Recovery) -> str:
    if notice.complete:
        return f"resumed: {notice.recovered} missed signal(s) recovered (epoch {notice.epoch})"
    return (
        f"warning: resume incomplete ({notice.reason}); signals since {notice.since} "
        f"may be missing, {notice.recovered} recovered (epoch {notice.epoch})"
    )


def json_line(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)
