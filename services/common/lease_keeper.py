"""The lease loop every replica runs (the monitor's symbols, the notifier's destinations).

One cycle per renew interval (``LeaseManager.cycle``). Redis outages are backed off, capped,
shown in ``qs_redis_connected{loop}`` and logged once; once the leases have gone unrenewed
for their whole TTL this replica drops them locally, since another may already hold them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from common.leases import LeaseChanges, LeaseManager
from common.logging import get_logger
from common.metrics import RedisLoopMetrics
from common.redis import REDIS_ERRORS, Backoff, raise_if_cancelling

log = get_logger(__name__)

#: One lease cycle (a few scripts) gets this long before it counts as an outage.
LEASE_STEP_TIMEOUT_S = 2.0


class LeaseKeeper:
    def __init__(
        self,
        leases: LeaseManager,
        metrics: RedisLoopMetrics,
        *,
        loop: str,
        noun: str,
        ttl_s: float,
        renew_s: float,
        backoff_max_s: float,
        on_changes: Callable[[LeaseChanges], Awaitable[None]],
        on_expired: Callable[[set[str]], None],
    ) -> None:
        self._leases = leases
        self._metrics = metrics
        self._loop = loop
        self._noun = noun  # "symbols", "destinations": the key of the log line's list
        self._ttl_s = ttl_s
        self._renew_s = renew_s
        self._backoff = Backoff(max_s=backoff_max_s)
        self._on_changes = on_changes
        self._on_expired = on_expired
        self._connected = False
        #: When the last cycle succeeded (monotonic), None before the first.
        self.ok_at: float | None = None

    def current(self) -> bool:
        """The leases were renewed within their TTL: what this replica holds is its own."""
        return self.ok_at is not None and time.monotonic() - self.ok_at < self._ttl_s

    async def run(self) -> None:
        while True:
            try:
                changes = await asyncio.wait_for(self._leases.cycle(), LEASE_STEP_TIMEOUT_S)
            except REDIS_ERRORS as exc:
                raise_if_cancelling()
                self._unreachable(exc)
                await asyncio.sleep(min(self._backoff.next_delay(), self._renew_s))
                continue
            if not self._connected:
                self._connected = True
                self._metrics.up(self._loop)
            self._backoff.reset()
            self.ok_at = time.monotonic()
            await self._on_changes(changes)
            await asyncio.sleep(self._renew_s)

    def _unreachable(self, exc: BaseException) -> None:
        if self._connected:
            self._connected = False
            self._metrics.down(self._loop)
            log.warning("leases_unreachable", error=repr(exc))
        if not self.current() and self._leases.owned:
            lost = self._leases.drop_all()
            log.warning("leases_expired_locally", **{self._noun: sorted(lost)})
            self._on_expired(lost)
