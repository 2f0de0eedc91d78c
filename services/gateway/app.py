"""The gateway: wires settings, Redis, Socket.IO, the relay and the HTTP routes together."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import socketio
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from common.http import probe_router
from common.logging import get_logger
from common.redis import Backoff, create_redis, wait_for_redis
from gateway.api import api_router
from gateway.fanout import SignalFanout
from gateway.metrics import GatewayMetrics
from gateway.relay import Relay
from gateway.settings import GatewaySettings
from gateway.sockets import NAMESPACE, create_sio, register_handlers
from gateway.web import web_router

log = get_logger(__name__)

SUBSCRIBE_TIMEOUT_S = 10.0


class Gateway:
    def __init__(self, settings: GatewaySettings, registry: CollectorRegistry | None = None):
        self.settings = settings
        self.metrics = GatewayMetrics(registry or CollectorRegistry())
        self.redis = create_redis(str(settings.redis_url))
        self.sio = create_sio(settings)
        self.draining = False
        register_handlers(self.sio, self.metrics, lambda: self.draining)
        fanout = SignalFanout(self.sio, self.metrics, settings.max_message_bytes)
        self.relay = Relay(
            self.redis,
            settings.signal_channel,
            fanout.handle,
            self.metrics,
            Backoff(max_s=settings.redis_backoff_max_s),
        )
        self._relay_task: asyncio.Task[None] | None = None
        self.app = socketio.ASGIApp(self.sio, other_asgi_app=self._build_api())

    def _build_api(self) -> FastAPI:
        api = FastAPI(title="Quantum Signals gateway", lifespan=self._lifespan)
        api.include_router(probe_router(self.readiness, self.metrics.registry))
        api.include_router(api_router(self))
        api.include_router(web_router())
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
        self._relay_task = asyncio.create_task(self.relay.run(), name="relay")
        await self.relay.wait_subscribed(SUBSCRIBE_TIMEOUT_S)
        log.info(
            "gateway_started",
            channel=self.settings.signal_channel,
            transports=self.settings.transports,
        )

    async def stop(self) -> None:
        if self._relay_task is not None:
            self._relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relay_task
        await self.sio.shutdown()
        await self.redis.aclose()
        log.info("gateway_stopped")

    async def drain(self) -> None:
        """Fail readiness, then close clients in jittered batches so they reconnect elsewhere."""
        self.draining = True
        self.metrics.draining.set(1)
        sids = [sid for sid, _ in self.sio.manager.get_participants(NAMESPACE, None)]
        log.info("drain_started", clients=len(sids))
        size = self.settings.drain_batch_size
        for start in range(0, len(sids), size):
            for sid in sids[start : start + size]:
                await self._close_transport(sid)
            pause = self.settings.drain_batch_interval_s
            await asyncio.sleep(random.uniform(pause / 2, pause * 1.5))
        log.info("drain_finished", clients=len(sids))

    async def _close_transport(self, sid: str) -> None:
        # Closing the Engine.IO transport (not a Socket.IO disconnect) makes official
        # clients treat it as a lost connection and reconnect on their own.
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, NAMESPACE)
        if eio_sid is not None:
            await self.sio.eio.disconnect(eio_sid)
