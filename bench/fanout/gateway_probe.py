"""The gateway (``python -m gateway``) with tracemalloc on, dumping on SIGUSR1.

Each SIGUSR1 writes, into ``$QS_PROBE_DIR``, ``snap-N.pickle`` (a tracemalloc snapshot)
and ``objects-N.json`` (asyncio tasks by coroutine, gc-tracked objects by type, timers
scheduled on the loop). bench/memory_per_conn.py takes one before the clients connect and
one after, and prints the difference per connection. Benchmark use only: tracemalloc
doubles the gateway's memory and slows it down.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import json
import os
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

OUT = Path(os.environ.get("QS_PROBE_DIR", "."))
COUNT = [0]


def coroutine_name(task: asyncio.Task[object]) -> str:
    coro = task.get_coro()
    return getattr(coro, "__qualname__", type(coro).__name__)


def dump(_signum: int, _frame: FrameType | None) -> None:
    COUNT[0] += 1
    n = COUNT[0]
    gc.collect()
    tracemalloc.take_snapshot().dump(str(OUT / f"snap-{n}.pickle"))
    tasks = collections.Counter(coroutine_name(t) for t in asyncio.all_tasks())
    types = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
    loop = asyncio.get_running_loop()
    scheduled = getattr(loop, "_scheduled", None)  # None under uvloop (C timers)
    facts = {
        "tasks": dict(tasks),
        "types": dict(types.most_common(200)),
        "timers": None if scheduled is None else len(scheduled),
    }
    (OUT / f"objects-{n}.json").write_text(json.dumps(facts))


def main() -> None:
    tracemalloc.start(8)
    signal.signal(signal.SIGUSR1, dump)
    from gateway.__main__ import main as gateway_main

    sys.argv = ["gateway"]
    gateway_main()


if __name__ == "__main__":
    main()
