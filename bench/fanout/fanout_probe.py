"""The gateway (``python -m gateway``) with a timer on every local fan-out, dumping on SIGUSR2.

For each benchmark signal (one with a ``seq``) it records when its fan-out started and ended
relative to the signal's publish time ``ts``, whether the manager sent during the loop or
left frames to the transports' buffers (the ``BACKLOG_GAP_S`` rule), and how many signals
ran in the same event-loop turn (Redis messages parsed from one read). SIGUSR2 writes
``fanout-<pid>.json`` into ``$QS_PROBE_DIR``. Benchmark use only (run.py --probe): about
1 µs per fan-out, not per delivery.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

OUT = Path(os.environ.get("QS_PROBE_DIR", "."))
#: seq, start age ms, end age ms, sent during the loop, loop turn, signals in its fan-out
ROWS: list[tuple[int, float, float, int, int, int]] = []
TURN = {"id": 0, "marked": False}


def _next_turn() -> None:
    TURN["id"] += 1
    TURN["marked"] = False


def dump(_signum: int, _frame: FrameType | None) -> None:
    path = OUT / f"fanout-{os.getpid()}.json"
    fields = ["seq", "start_age_ms", "end_age_ms", "send_now", "turn", "batch"]
    path.write_text(json.dumps({"fields": fields, "rows": ROWS}))
    ROWS.clear()


def install() -> None:
    from gateway.wire import manager as wire_manager

    original = wire_manager.FanoutManager.emit

    async def emit(self: Any, event: str, data: Any, *args: Any, **kwargs: Any) -> None:
        seq = data.get("seq") if isinstance(data, dict) else None
        if not isinstance(seq, int) or seq < 0:
            await original(self, event, data, *args, **kwargs)
            return
        _mark_turn()
        start = time.time()
        send_now = time.monotonic() - self._fanout_ended > wire_manager.BACKLOG_GAP_S
        await original(self, event, data, *args, **kwargs)
        ts = float(data.get("ts", start))
        end = time.time()
        ROWS.append((seq, (start - ts) * 1e3, (end - ts) * 1e3, int(send_now), TURN["id"], 1))

    original_batch = wire_manager.FanoutManager.emit_batch

    def emit_batch(self: Any, event: str, items: list[Any], *args: Any) -> Any:
        _mark_turn()
        start = time.time()
        done = original_batch(self, event, items, *args)
        end = time.time()
        for data, _rooms, _key in items:
            seq, ts = data.get("seq"), float(data.get("ts", start))
            if isinstance(seq, int) and seq >= 0:
                row = (seq, (start - ts) * 1e3, (end - ts) * 1e3, 0, TURN["id"], len(items))
                ROWS.append(row)
        return done

    wire_manager.FanoutManager.emit = emit  # type: ignore[method-assign]
    wire_manager.FanoutManager.emit_batch = emit_batch  # type: ignore[method-assign]


def _mark_turn() -> None:
    if not TURN["marked"]:  # a callback at the end of this loop turn closes it
        TURN["marked"] = True
        asyncio.get_running_loop().call_soon(_next_turn)


def main() -> None:
    signal.signal(signal.SIGUSR2, dump)
    install()
    from gateway.__main__ import main as gateway_main

    sys.argv = ["gateway"]
    gateway_main()


if __name__ == "__main__":
    main()
