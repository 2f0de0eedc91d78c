"""The signal API's routers, built from settings: publish (POST), history and bars (GET)."""

from __future__ import annotations

import redis.asyncio as aioredis
from fastapi import APIRouter

from common.publish import SignalPublisher
from gateway.clients.auth import TokenVerifier
from gateway.http.bars import bars_router
from gateway.http.history import history_router
from gateway.http.publish import publish_router
from gateway.http.publish_auth import PublishAuth
from gateway.http.scores import scores_router
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings


def signal_routers(
    settings: GatewaySettings, redis: aioredis.Redis, metrics: GatewayMetrics
) -> list[APIRouter]:
    verifier = TokenVerifier(settings) if settings.auth_enabled else None
    publisher = SignalPublisher.configured(redis, settings.signal_channel, settings)
    auth = PublishAuth(settings, verifier)
    return [
        publish_router(settings, publisher, auth, metrics),
        history_router(settings, redis, verifier, metrics),
        scores_router(settings, redis, verifier, metrics),
        bars_router(settings, redis, verifier, metrics),
    ]
