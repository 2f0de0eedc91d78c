"""The notifier process: destination leases, one delivery worker per leased destination,
lag statistics, and the probe/metrics server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from functools import partial

import uvicorn
from prometheus_client import CollectorRegistry

from common.constants import notifier_lease_key, notifier_replicas_key
from common.http import ManagedServer, probe_app
from common.lease_keeper import LeaseKeeper
from common.leases import RENEW_FRACTION, LeaseChanges, LeaseManager
from common.lifecycle import serve_until_stopped, unless_stopped
from common.logging import get_logger
from common.redis import (
    REDIS_ERRORS,
    Backoff,
    no_retry,
    raise_if_cancelling,
    redis_client,
    wait_for_redis,
)
from notifier.config import NotifierConfig
from notifier.consumer import StreamConsumer
from notifier.deadletters import DeadLetters
from notifier.delivery import DestinationWorker
from notifier.destinations.base import Destination
from notifier.health import LoopHealth
from notifier.metrics import DELIVERY_LOOP, LEASE_LOOP, STATS_LOOP, NotifierMetrics
from notifier.settings import NotifierSettings
from notifier.stats import LagStats, namesakes
from notifier.workers import WorkerPool

log = get_logger(__name__)

REDIS_STEP_TIMEOUT_S = 2.0
STATS_INTERVAL_S = 5.0
#: Share of SHUTDOWN_GRACE_S the in-flight deliveries get to finish on SIGTERM.
DRAIN_FRACTION = 0.5
#: Socket timeout of the stream client: above a blocking read's wait (consumer.BLOCK_MS).
STREAM_SOCKET_TIMEOUT_S = 5.0


class Notifier:
    def __init__(
        self,
        settings: NotifierSettings,
        config: NotifierConfig,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.metrics = NotifierMetrics(registry or CollectorRegistry(), config.names())
        self.redis = redis_client(settings)
        # No silent command retries on the stream client: a read redis-py resent after a
        # lost reply could assign entries that never reach us. The loop reconnects itself
        # and reads its own pending entries again.
        self.stream_redis = redis_client(
            settings, retry=no_retry(), socket_timeout=STREAM_SOCKET_TIMEOUT_S
        )
        self.dead_letters = DeadLetters(
            self.stream_redis, settings.signal_channel, settings.notifier_dead_letters_maxlen
        )
        channel = settings.signal_channel
        self.replica_id = f"{settings.notifier_consumer}:{os.getpid()}:{secrets.token_hex(3)}"
        self.leases = LeaseManager(
            self.redis,
            config.names(),
            self.replica_id,
            settings.notifier_lease_ttl_s,
            lease_key=partial(notifier_lease_key, channel),
            replicas_key=notifier_replicas_key(channel),
        )
        self.stats = LagStats(self.redis, channel, config.names(), self.dead_letters, self.metrics)
        self.health = LoopHealth(self.metrics.redis, DELIVERY_LOOP)
        self.destinations: dict[str, Destination] = {}
        self.workers = WorkerPool(self._worker, self.health.forget)
        # Kept across lease changes: a consumer remembers its last settled entry, from which
        # a group that Redis lost is recreated.
        self.consumers: dict[str, StreamConsumer] = {}
        self.lease_keeper = LeaseKeeper(
            self.leases,
            self.metrics.redis,
            loop=LEASE_LOOP,
            noun="destinations",
            ttl_s=settings.notifier_lease_ttl_s,
            renew_s=settings.notifier_lease_ttl_s * RENEW_FRACTION,
            backoff_max_s=settings.redis_backoff_max_s,
            on_changes=self._apply,
            on_expired=self._leases_expired,
        )
        self._started = time.monotonic()
        self._namesakes_told = False
        self.http = ManagedServer(
            uvicorn.Config(
                probe_app(self.readiness, self.metrics.registry, "Quantum Signals notifier"),
                host=settings.host,
                # Only the probes and /metrics: METRICS_PORT moves them all (like the monitor).
                port=settings.metrics_port or settings.port,
                log_config=None,
                access_log=False,
                lifespan="off",
                # A scraper holding a keep-alive connection must not hold up the exit.
                timeout_graceful_shutdown=max(1, int(settings.shutdown_grace_s / 4)),
            )
        )

    @property
    def lease_renew_s(self) -> float:
        return self.settings.notifier_lease_ttl_s * RENEW_FRACTION

    def readiness(self) -> dict[str, bool]:
        # Owning no destination is fine (others may deliver them all); what matters is
        # that this replica talks to Redis, so it delivers its share or stands by.
        return {"redis_connected": self.lease_keeper.current(), "config_loaded": True}

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop``; a stop while Redis is still awaited raises StartupCancelled."""
        await unless_stopped(
            wait_for_redis(
                self.redis,
                self.settings.redis_startup_attempts,
                Backoff(max_s=self.settings.redis_backoff_max_s),
            ),
            stop,
        )
        self.destinations = {d.name: d.build() for d in self.config.destinations}
        tasks = [
            asyncio.create_task(self.http.serve(), name="http"),
            asyncio.create_task(self.lease_keeper.run(), name="leases"),
            asyncio.create_task(self._stats_loop(), name="stats"),
        ]
        log.info(
            "notifier_started",
            destinations=self.config.names(),
            replica=self.replica_id,
            consumer=self.settings.notifier_consumer,
            lease_ttl_s=self.settings.notifier_lease_ttl_s,
        )
        if not self.destinations:
            log.warning("no_destinations", config=str(self.settings.notifier_config))
        await serve_until_stopped(tasks, stop, self._shutdown)

    def _leases_expired(self, lost: set[str]) -> None:
        # Another replica may deliver these destinations now.
        for name in lost:
            self.workers.stop(name, graceful_s=0)
        self.metrics.destinations_owned.set(0)

    async def _apply(self, changes: LeaseChanges) -> None:
        # Lost: someone else holds it now, stop at once. Released (a fair share for a new
        # replica): finish the message in flight first; the next holder waits for it.
        regained = changes.lost & changes.acquired
        for name in changes.lost - regained:
            self.workers.stop(name, graceful_s=0)
        for name in changes.released:
            self.workers.stop(name, graceful_s=self._drain_s())
        for name in changes.acquired - regained:
            self.workers.start(name)
        for name in regained:
            self.workers.retake(name)
        if changes.acquired or changes.lost or changes.released:
            log.info(
                "leases_changed",
                acquired=sorted(changes.acquired - regained),
                lost=sorted(changes.lost - regained),
                regained=sorted(regained),
                released=sorted(changes.released),
                held=sorted(self.leases.owned),
                replicas=self.leases.replicas,
            )
        self.metrics.destinations_owned.set(len(self.leases.owned))

    def _drain_s(self) -> float:
        return self.settings.shutdown_grace_s * DRAIN_FRACTION

    def _consumer(self, name: str) -> StreamConsumer:
        if name not in self.consumers:
            self.consumers[name] = StreamConsumer(
                self.stream_redis,
                self.settings.signal_channel,
                name,
                self.settings.notifier_consumer,
                claim_idle_ms=self.settings.notifier_claim_idle_ms,
                count=self.settings.notifier_read_count,
            )
        return self.consumers[name]

    def _worker(self, name: str) -> DestinationWorker:
        return DestinationWorker(
            self.destinations[name],
            self._consumer(name),
            self.dead_letters,
            self.metrics,
            self.health,
            redis_backoff_max_s=self.settings.redis_backoff_max_s,
            max_entry_bytes=self.settings.max_message_bytes,
        )

    async def _stats_loop(self) -> None:
        connected = False
        while True:
            try:
                await asyncio.wait_for(self.stats.refresh(), REDIS_STEP_TIMEOUT_S * 2)
            except REDIS_ERRORS as exc:
                raise_if_cancelling()
                if connected:
                    connected = False
                    self.metrics.redis.down(STATS_LOOP)
                    log.warning("stats_unreachable", error=repr(exc))
            except Exception as exc:
                # Odd data in Redis must not end the process (this task ending is fatal).
                log.error("stats_failed", error=repr(exc))
            else:
                if not connected:
                    connected = True
                    self.metrics.redis.up(STATS_LOOP)
                await self._check_consumer_name()
            await asyncio.sleep(STATS_INTERVAL_S)

    async def _check_consumer_name(self) -> None:
        # Only after a lease TTL: a pod restarted under the same name still finds its
        # previous life in the replica set until that entry expires.
        ttl_s = self.settings.notifier_lease_ttl_s
        if self._namesakes_told or time.monotonic() - self._started < ttl_s:
            return
        with contextlib.suppress(*REDIS_ERRORS, ValueError):
            twins = await namesakes(
                self.redis,
                notifier_replicas_key(self.settings.signal_channel),
                self.settings.notifier_consumer,
                self.replica_id,
            )
            if twins:
                self._namesakes_told = True
                log.error(
                    "consumer_name_shared",
                    consumer=self.settings.notifier_consumer,
                    others=twins,
                    fix="give every replica its own NOTIFIER_CONSUMER",
                )

    async def _shutdown(self, tasks: list[asyncio.Task[None]]) -> None:
        _, lease_loop, stats_loop = tasks
        lease_loop.cancel()
        stats_loop.cancel()
        # In parallel: every destination's in-flight attempt gets the same bound.
        await self.workers.stop_all(self._drain_s())
        released = sorted(self.leases.owned)
        try:
            await asyncio.wait_for(self.leases.release(), REDIS_STEP_TIMEOUT_S)
        except REDIS_ERRORS as exc:
            log.warning("lease_release_failed", error=repr(exc))
        else:
            log.info("leases_released", destinations=released)
        self.metrics.destinations_owned.set(0)
        self.http.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        for destination in self.destinations.values():
            with contextlib.suppress(Exception):
                await destination.aclose()
        await self.redis.aclose()
        await self.stream_redis.aclose()
        log.info("notifier_stopped", **self.summary())

    def summary(self) -> dict[str, float]:
        m = self.metrics
        return {
            "delivered": _outcome(m, "delivered"),
            "failed_attempts": _outcome(m, "failed"),
            "dead_lettered": _outcome(m, "dead_lettered"),
            "filtered": _outcome(m, "filtered"),
            "retries": m.total("qs_notifier_retries_total"),
        }


def _outcome(metrics: NotifierMetrics, outcome: str) -> float:
    return sum(
        s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == "qs_notifier_deliveries_total" and s.labels.get("outcome") == outcome
    )
