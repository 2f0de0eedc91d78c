"""The load: a Node socket.io-client process (its clients) and a paced Redis publisher."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import redis
from procs import NODE_DIR, pinned

CHANNEL = "quantum_signals"


class LoadGen:
    """Talks to node/loadgen.js over stdin/stdout, one JSON object a line."""

    def __init__(self, urls: list[str], clients: int, core: int) -> None:
        self.proc = subprocess.Popen(
            [
                shutil.which("node") or "node",
                "--max-old-space-size=4096",
                str(NODE_DIR / "loadgen.js"),
                "--urls",
                ",".join(urls),
                "--clients",
                str(clients),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            preexec_fn=pinned(core),  # noqa: PLW1509 (affinity before exec)
        )
        self._lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self._lines.put(json.loads(line))
            except ValueError:
                continue

    def expect(self, event: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"load generator: no {event!r} within {timeout_s}s")
            try:
                msg = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            if msg.get("event") == event:
                return msg
            if msg.get("event") == "error":
                raise RuntimeError(f"load generator failed: {msg}")

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()

    def ask(self, command: str, event: str, timeout_s: float = 60.0) -> dict[str, Any]:
        self.send(command)
        return self.expect(event, timeout_s)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)


_LAST_OFFSET = [0, 0]


def next_offset() -> str:
    """A history-style offset ``<ms>-<n>`` of the publish time, always increasing: what the
    gateway measures a signal's age from (the overload policy), as with the real publisher."""
    ms = max(int(time.time() * 1000), _LAST_OFFSET[0])
    _LAST_OFFSET[1] = _LAST_OFFSET[1] + 1 if ms == _LAST_OFFSET[0] else 0
    _LAST_OFFSET[0] = ms
    return f"{ms}-{_LAST_OFFSET[1]}"


def signal_payload(seq: int, warmup: bool = False) -> bytes:
    """A signal the gateway accepts (full contract form) carrying seq and publish time."""
    return orjson.dumps(
        {
            "offset": next_offset(),
            "v": 1,
            "id": f"bench:{'w' if warmup else 's'}:{seq}",
            "type": "BUY" if seq % 2 == 0 else "SELL",
            "symbol": "BTC/USDT",
            "strategy": "bench",
            "price": 60000.0 + seq % 1000,
            "ts": time.time(),
            "seq": -1 if warmup else seq,
        }
    )


def publish_paced(
    client: redis.Redis,
    count: int,
    rate: float,
    tick: Callable[[], None] | None = None,
    warmup: bool = False,
) -> float:
    """Publish ``count`` signals at ``rate``/s on an absolute schedule; return seconds taken."""
    start = time.perf_counter()
    next_tick = start
    for seq in range(count):
        due = start + seq / rate
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        client.publish(CHANNEL, signal_payload(seq, warmup))
        if tick is not None and now >= next_tick:
            tick()
            next_tick = now + 0.25
    return time.perf_counter() - start
