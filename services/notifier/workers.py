"""The delivery workers of the destinations this replica holds: started on a lease, stopped
in the background when it goes, so a slow receiver never holds up the lease loop (which
must keep renewing the other leases)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from common.logging import get_logger
from common.redis import REDIS_ERRORS
from notifier.delivery import DestinationWorker

log = get_logger(__name__)

#: Longest a Redis step of a stop (the hand-back) may take.
REDIS_STEP_TIMEOUT_S = 2.0


class WorkerPool:
    def __init__(
        self,
        make: Callable[[str], DestinationWorker],
        on_stopped: Callable[[str], None] = lambda name: None,
    ) -> None:
        self._make = make
        self._on_stopped = on_stopped
        self.running: dict[str, tuple[DestinationWorker, asyncio.Task[None]]] = {}
        #: Stops under way, by destination: a worker started again waits for its
        #: predecessor, so two never deliver one destination from this replica.
        self.stopping: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str) -> None:
        worker = self._make(name)
        previous = self.stopping.get(name)
        task = asyncio.create_task(self._run(worker, previous), name=f"deliver:{name}")
        self.running[name] = (worker, task)

    def retake(self, name: str) -> None:
        """The lease on ``name`` was lost and regained at once (its key had gone: a Redis
        restart without persistence): the worker goes on with the message in flight, then
        claims again. Stopping it would cut off a delivery the receiver may have taken."""
        found = self.running.get(name)
        if found is None:
            self.start(name)
        else:
            found[0].retake = True

    @staticmethod
    async def _run(worker: DestinationWorker, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # not gather: a cancel here must not cancel it
        await worker.run()

    def stop(self, name: str, graceful_s: float) -> None:
        """Stop ``name``'s worker in the background (see ``_stop``)."""
        found = self.running.pop(name, None)
        if found is None:
            return
        task = asyncio.create_task(self._stop(name, *found, graceful_s), name=f"stop:{name}")
        self.stopping[name] = task
        task.add_done_callback(lambda t: self._forget(name, t))

    def _forget(self, name: str, task: asyncio.Task[None]) -> None:
        if self.stopping.get(name) is task:
            del self.stopping[name]

    async def stop_all(self, graceful_s: float) -> None:
        for name in list(self.running):
            self.stop(name, graceful_s)
        await asyncio.gather(*self.stopping.values(), return_exceptions=True)

    async def _stop(
        self, name: str, worker: DestinationWorker, task: asyncio.Task[None], graceful_s: float
    ) -> None:
        """Stop after the attempt in flight (within ``graceful_s``, else cancel it), then
        hand the entries read but not settled to the next holder."""
        worker.stopping.set()
        if graceful_s > 0:
            await asyncio.wait([task], timeout=graceful_s)
        if not task.done():
            task.cancel()
            log.warning("delivery_cancelled", destination=name)
        await asyncio.gather(task, return_exceptions=True)
        self._on_stopped(name)
        try:
            handed = await asyncio.wait_for(worker.consumer.hand_back(), REDIS_STEP_TIMEOUT_S)
        except REDIS_ERRORS as exc:
            log.warning("hand_back_failed", destination=name, error=repr(exc))
        else:
            if handed:
                log.info("entries_handed_back", destination=name, entries=handed)
