"""A service process's life: stop signals, start-up that a signal cancels, one clean exit.

A stop request (SIGTERM from Kubernetes, Ctrl-C) can come at any moment, also while the
service still waits for Redis; it then ends start-up at once with exit code 0 instead of
finishing the retries. After start-up the same request starts the service's drain.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import structlog

from common.cli import EXIT_FAILURE, EXIT_OK

T = TypeVar("T")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StartupCancelled(Exception):
    """A stop was requested before the service had started."""


class StopSignals:
    """SIGTERM and SIGINT on the running loop: the first sets ``stopped``, later ones call
    ``on_repeat`` (the gateway uses it to cut its drain short)."""

    def __init__(self, log: structlog.stdlib.BoundLogger) -> None:
        self.log = log
        self.stopped = asyncio.Event()
        self.on_repeat: Callable[[], None] = lambda: None
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self._received, signum)

    def _received(self, signum: int) -> None:
        if self.stopped.is_set():
            self.on_repeat()
            return
        self.log.info("shutdown_requested", signal=signal.Signals(signum).name)
        self.stopped.set()


async def serve_until_stopped(
    tasks: list[asyncio.Task[Any]],
    stop: asyncio.Event,
    shutdown: Callable[[list[asyncio.Task[Any]]], Awaitable[None]],
) -> None:
    """Run a service's loops until ``stop``, then ``shutdown(tasks)``.

    The loops never end on their own: one that does is a bug, so its exception is raised
    here (after the shutdown) rather than left in a task nobody awaits.
    """
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    try:
        for task in done - {stopper}:
            task.result()
    finally:
        stopper.cancel()
        await shutdown(tasks)


async def unless_stopped(step: Awaitable[T], stop: asyncio.Event) -> T:
    """Await ``step``; if ``stop`` is set first, cancel it and raise ``StartupCancelled``."""
    task = asyncio.ensure_future(step)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        interrupted = not task.done()
        if interrupted:
            task.cancel()
            # Let it close what it opened before the caller goes on.
            await asyncio.wait((task,))
    if interrupted:
        raise StartupCancelled
    return task.result()


def startup_failed(
    log: structlog.stdlib.BoundLogger, reason: str, error: BaseException, exit_code: int
) -> int:
    """The one line a service ends with when it cannot start; returns its exit code."""
    log.error("startup_failed", reason=reason, error=str(error), exit_code=exit_code)
    return exit_code


def run_service(
    serve: Callable[[], Coroutine[Any, Any, int]],
    log: structlog.stdlib.BoundLogger,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> NoReturn:
    """Run ``serve`` to its exit code; an unexpected error is logged (one JSON line with
    its traceback when JSON logging is on) and exits 1."""
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            code = runner.run(serve())
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were installed
        code = EXIT_OK
    except Exception:
        log.exception("service_crashed", exit_code=EXIT_FAILURE)
        code = EXIT_FAILURE
    raise SystemExit(code)
