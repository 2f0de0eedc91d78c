"""The gateway: wires settings, Redis, Socket.IO, the relay and the HTTP routes together."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import socketio
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from common.constants import NAMESPACE, bars_channel
from common.http import probe_router
from common.logging import get_logger
from common.redis import REDIS_ERRORS, Backoff, no_retry, redis_client, wait_for_redis
from gateway.clients.handlers import SocketHandlers
from gateway.clients.server import create_sio
from gateway.clients.sessions import AuthSessions
from gateway.delivery.bars import BarEmitter
from gateway.delivery.emitter import SignalEmitter
from gateway.delivery.history import History
from gateway.delivery.overload import OverloadState
from gateway.delivery.recovery import Backfill, ClientRecovery
from gateway.delivery.relay import Relay
from gateway.delivery.sse import SseHub, WithStreams
from gateway.edge.guard import SocketGuard
from gateway.edge.http_security import add_http_security
from gateway.edge.limits import EventGuard
from gateway.http.api import api_router
from gateway.http.contract import API_VERSION, contract_router
from gateway.http.signals import signal_routers
from gateway.http.stream import stream_router
from gateway.http.web import web_router
from gateway.metrics import BARS_LOOP, GatewayMetrics
from gateway.settings import GatewaySettings
from gateway.wire.compat import verify_library_seams
from gateway.wire.engine import EngineSessions, close_transport
from gateway.wire.routes import EngineRoutes

log = get_logger(__name__)

SUBSCRIBE_TIMEOUT_S = 10.0
HISTORY_STATS_INTERVAL_S = 5.0


class Gateway:
    def __init__(self, settings: GatewaySettings, registry: CollectorRegistry | None = None):
        verify_library_seams()  # refuse to start on a library that broke an assumption
        self.settings = settings
        self.metrics = GatewayMetrics(registry or CollectorRegistry())
        self.redis = redis_client(settings)
        self.sio = create_sio(settings, self.metrics)
        self.draining = False
        self.history = History(self.redis, settings.signal_channel)
        self.sse = SseHub(self.metrics, settings.sse_client_queue_max)
        emitter = SignalEmitter(
            self.sio,
            self.metrics,
            settings.max_message_bytes,
            streams=self.sse,
            overload=OverloadState.from_settings(settings, self.metrics),
        )
        self.backfill = Backfill(self.history, emitter, self.metrics)
        recovery = ClientRecovery(self.sio, self.history, emitter, self.metrics)
        self._catch_up = recovery.catch_up  # one catch-up for Socket.IO and SSE resumes
        # MAX_CONNECTIONS counts Engine.IO sessions and SSE streams together.
        self.connections = WithStreams(EngineSessions(self.sio), self.sse)
        sessions = AuthSessions(self.sio, settings, self.metrics)
        events = EventGuard.from_settings(settings, self.metrics)
        self.handlers = SocketHandlers(self.sio, self.metrics, recovery, sessions, events)
        self._relay_redis = redis_client(settings, retry=no_retry())
        self.relay = Relay(
            self._relay_redis,
            settings.signal_channel,
            emitter.handle,
            self.metrics,
            backoff=Backoff(max_s=settings.redis_backoff_max_s),
            on_subscribed=self.backfill,
            batch=emitter,
        )
        # Bars get their own subscription and loop: readiness does not wait for it.
        self._bars_redis = redis_client(settings, retry=no_retry())
        self.bars_relay = Relay(
            self._bars_redis,
            bars_channel(settings.signal_channel),
            BarEmitter(self.sio, self.metrics, settings.max_message_bytes).handle,
            self.metrics,
            backoff=Backoff(max_s=settings.redis_backoff_max_s),
            loop=BARS_LOOP,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self.api = self._build_api()
        self.app = SocketGuard(
            EngineRoutes.of(socketio.ASGIApp(self.sio, other_asgi_app=self.api)),
            sessions=self.connections,
            max_connections=settings.max_connections,
            max_body_bytes=settings.max_client_packet_bytes,
            metrics=self.metrics,
            transports=tuple(settings.transports),
        )

    def _build_api(self) -> FastAPI:
        docs = self.settings.docs_enabled  # API_DOCS: /docs, /redoc and both documents
        api = FastAPI(
            title="Quantum Signals gateway",
            version=API_VERSION,
            lifespan=self._lifespan,
            docs_url="/docs" if docs else None,
            redoc_url="/redoc" if docs else None,
            openapi_url="/openapi.json" if docs else None,
        )
        add_http_security(api, self.settings)
        if not self.settings.metrics_port:  # else __main__ serves them on METRICS_PORT
            api.include_router(probe_router(self.readiness, self.metrics.registry))
        # Before the other /api routes, so no path parameter there can shadow it.
        api.include_router(
            stream_router(self.settings, self.sse, self._catch_up, self.connections, self.metrics)
        )
        for router in signal_routers(self.settings, self.redis, self.metrics):
            api.include_router(router)
        api.include_router(api_router(self.settings, self.sio, self.metrics))
        api.include_router(
            web_router(
                self.redis,
                self.settings.signal_channel,
                auth_required=self.settings.auth_required,
                token_url=self.settings.page_token_url,
            )
        )
        if docs:
            api.include_router(contract_router(self.settings.signal_channel))
        return api

    @asynccontextmanager
    async def _lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    def readiness(self) -> dict[str, bool]:
        return {"relay_subscribed": self.relay.subscribed, "not_draining": not self.draining}

    async def start(self) -> None:
        # The Socket.IO manager connects lazily; fail start-up here instead of at first emit.
        await wait_for_redis(
            self.redis,
            self.settings.redis_startup_attempts,
            Backoff(max_s=self.settings.redis_backoff_max_s),
        )
        await self.backfill.prime()
        self._tasks = [
            asyncio.create_task(self.relay.run(), name="relay"),
            asyncio.create_task(self.bars_relay.run(), name="bars-relay"),
            asyncio.create_task(self._report_history(), name="history-stats"),
        ]
        await self.relay.wait_subscribed(SUBSCRIBE_TIMEOUT_S)
        log.info(
            "gateway_started",
            channel=self.settings.signal_channel,
            transports=self.settings.transports,
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.sio.shutdown()
        await self.redis.aclose()
        await self._relay_redis.aclose()
        await self._bars_redis.aclose()
        log.info("gateway_stopped")

    async def _report_history(self) -> None:
        while True:
            try:
                stats = await self.history.stats()
                await self.backfill.check_epoch()  # a FLUSHALL while idle is noticed too
            except REDIS_ERRORS:
                stats = None  # the relay reports Redis health; try again next round
            if stats is not None:
                self.metrics.history_length.set(stats.length)
                self.metrics.history_oldest_age.set(stats.oldest_age_s)
            await asyncio.sleep(HISTORY_STATS_INTERVAL_S)

    async def drain(self, stop_accepting: Callable[[], None] = lambda: None) -> None:
        """Fail readiness, stop accepting, then close clients in jittered batches.

        New connections are refused at the TCP level rather than by the Socket.IO connect
        handler: official clients stop retrying after a handler refusal, but keep retrying
        (and land on another replica) after a refused or closed connection.
        """
        self.draining = True
        self.metrics.draining.set(1)
        await asyncio.sleep(self.settings.drain_delay_s)
        stop_accepting()
        self.sse.end_all()  # an ended stream is retried by EventSource, with Last-Event-ID
        sids = [sid for sid, _ in self.sio.manager.get_participants(NAMESPACE, None)]
        log.info("drain_started", clients=len(sids))
        size = self.settings.drain_batch_size
        for start in range(0, len(sids), size):
            for sid in sids[start : start + size]:
                await close_transport(self.sio, sid)
            pause = self.settings.drain_batch_interval_s
            await asyncio.sleep(random.uniform(pause / 2, pause * 1.5))
        log.info("drain_finished", clients=len(sids))
