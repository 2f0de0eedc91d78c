"""The checks behind ``gateway.wire.compat``, one module per library; each drives the real
library objects (a stand-in would prove nothing about the library).

A check returns None when its assumption holds and raises ``AssertionError`` saying what
differs; its docstring says how it checks (docs/compatibility.md). Our own wire modules are
imported inside the checks, so ``python -m gateway.wire.compat`` still names the assumption
when an upgrade breaks one of their imports.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")
# Generous: a probe takes milliseconds, but start-up must not fail on a busy machine.
PROBE_TIMEOUT_S = 5.0
UNTIL_TIMEOUT_S = 2.0
# Probes log through this logger, not uvicorn's: a probe is not a client connection.
QUIET_LOG = logging.getLogger("gateway.wire.compat.probe")
QUIET_LOG.setLevel(logging.WARNING)


def require(ok: object, detail: str) -> None:
    """``assert`` that survives ``python -O``."""
    if not ok:
        raise AssertionError(detail)


def in_fresh_loop(make: Callable[[], Coroutine[Any, Any, T]], *, use_uvloop: bool = False) -> T:
    """Run a probe on an event loop of its own, in a thread: start-up may already be inside
    the gateway's loop, and a probe must never leave tasks or timers in it."""
    box: dict[str, Any] = {}

    def run() -> None:
        factory = uvloop.new_event_loop if use_uvloop else None
        started = time.monotonic()
        try:
            with asyncio.Runner(loop_factory=factory) as runner:
                box["value"] = runner.run(asyncio.wait_for(make(), PROBE_TIMEOUT_S))
            # Library code that swallows the deadline's cancellation returns "normally".
            if time.monotonic() - started >= PROBE_TIMEOUT_S:
                raise TimeoutError
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=run, name="compat-probe", daemon=True)
    thread.start()
    thread.join(PROBE_TIMEOUT_S + 1)
    if "error" in box:
        error: BaseException = box["error"]
        if isinstance(error, TimeoutError):
            raise AssertionError(f"probe did not finish within {PROBE_TIMEOUT_S} s") from error
        raise error
    require("value" in box, "probe thread did not finish")
    value: T = box["value"]
    return value


async def until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + UNTIL_TIMEOUT_S
    while not condition():
        require(time.monotonic() < deadline, f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


async def ended(task: asyncio.Future[T], what: str) -> T:
    """``task``'s result within UNTIL_TIMEOUT_S. Not ``wait_for``: it would cancel the task,
    and engine.io's WebSocket handler returns normally when cancelled, like a success."""
    await asyncio.wait({task}, timeout=UNTIL_TIMEOUT_S)
    if not task.done():
        task.cancel()
        require(False, f"timed out waiting for {what}")
    return task.result()
